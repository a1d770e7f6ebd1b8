"""Reusable checks for any iCalendar body we serve (rendered directly or fetched over HTTP).

``check_bytes`` asserts the byte-level rules that calendar clients depend on;
``parse_with_all`` shows how four independent parsers read a feed, normalised
so they can be compared with one hand-written expectation.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import recurring_ical_events
from icalendar import Calendar

from tests.conftest import require

NODE_DIR = Path(__file__).parent / "node"
PARSE_MJS = NODE_DIR / "parse.mjs"
NODE_SKIP_REASON = "Node.js and `npm ci` in tests/feeds/node (ical.js and node-ical, for the cross-parser check)"

# One normalised event: (uid, start, end, summary, status); start/end are
# "YYYY-MM-DDTHH:MM:SSZ" for timed events and "YYYY-MM-DD" for whole days.
Row = tuple[str, str, str, str, str | None]

_DURATION = re.compile(r"^P(?:\d+W|(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)$")
_UTC_DATETIME = re.compile(r"^\d{8}T\d{6}Z$")
_LOCAL_DATETIME = re.compile(r"^\d{8}T\d{6}$")
_DATE = re.compile(r"^\d{8}$")
_TIME_PROPS = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE", "DUE")


def normalise_time(value: date | datetime) -> str:
    """UTC ISO for instants, plain ISO for dates; floating times are marked so they never match."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%dT%H:%M:%S(floating)")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def sort_rows(rows: list[Row]) -> list[Row]:
    """Sort by (start, uid), the order the serializer writes and parse.mjs prints."""
    return sorted(rows, key=lambda row: (row[1], row[0]))


def _row(component: Calendar) -> Row:
    status = component.get("STATUS")
    return (
        str(component["UID"]),
        normalise_time(component.start),
        normalise_time(component.end),
        str(component.get("SUMMARY", "")),
        None if status is None else str(status),
    )


def parse_with_python(ics: bytes, window: tuple[datetime, datetime]) -> dict[str, list[Row]]:
    """The two Python readings: icalendar itself and recurring_ical_events over ``window``."""
    cal = Calendar.from_ical(ics)
    return {
        "icalendar": sort_rows([_row(ev) for ev in cal.walk("VEVENT")]),
        "recurring_ical_events": sort_rows([_row(ev) for ev in recurring_ical_events.of(cal).between(*window)]),
    }


def node_available() -> bool:
    """Node.js on PATH and the harness's packages installed with `npm ci`."""
    modules = NODE_DIR / "node_modules"
    return shutil.which("node") is not None and (modules / "ical.js").is_dir() and (modules / "node-ical").is_dir()


def parse_with_node(ics: bytes) -> dict[str, list[Row]]:
    """ical.js (Thunderbird/Nextcloud) and node-ical, via tests/feeds/node/parse.mjs."""
    require(node_available(), NODE_SKIP_REASON)
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(PARSE_MJS)],
        input=ics,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    data = json.loads(done.stdout)
    return {
        "icaljs": sort_rows([tuple(row) for row in data["icaljs"]]),
        "nodeical": sort_rows([tuple(row) for row in data["nodeical"]]),
    }


def parse_with_all(ics: bytes, window: tuple[datetime, datetime]) -> dict[str, list[tuple]]:
    """Normalised rows per parser: "icalendar", "recurring_ical_events", "icaljs", "nodeical".

    Skips the calling test when Node.js or the npm packages are missing.
    """
    return {**parse_with_python(ics, window), **parse_with_node(ics)}


def _content_lines(ics: bytes) -> Iterator[tuple[tuple[str, ...], str, dict[str, str], str]]:
    """Yield (component path, NAME, params, value) from unfolded lines; a minimal RFC 5545 reader."""
    text = re.sub(rb"\r\n[ \t]", b"", ics).decode("utf-8")
    path: list[str] = []
    for line in text.split("\r\n"):
        if not line:
            continue
        head, value = _split_value(line)
        name, *raw_params = _split_params(head)
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, val = raw.partition("=")
            params[key.upper()] = val.strip('"')
        name = name.upper()
        if name == "BEGIN":
            path.append(value.upper())
            continue
        if name == "END":
            assert path, f"END:{value} without BEGIN"
            assert path[-1] == value.upper(), f"unbalanced END:{value}"
            path.pop()
            continue
        yield tuple(path), name, params, value
    assert not path, f"unterminated components {path}"


def _split_value(line: str) -> tuple[str, str]:
    """Split at the first colon outside a quoted parameter value."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[:index], line[index + 1 :]
    raise AssertionError(f"content line without a colon: {line!r}")


def _split_params(head: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in head:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _check_physical_lines(ics: bytes) -> None:
    assert ics.startswith(b"BEGIN:VCALENDAR\r\n"), "must start with BEGIN:VCALENDAR"
    assert ics.endswith(b"END:VCALENDAR\r\n"), "must end with END:VCALENDAR and CRLF"
    assert b"\n" not in ics.replace(b"\r\n", b""), "bare LF: every line must end in CRLF"
    assert b"\r" not in ics.replace(b"\r\n", b""), "bare CR outside a CRLF"
    for number, line in enumerate(ics.split(b"\r\n")[:-1], start=1):
        assert len(line) <= 75, f"line {number} is {len(line)} octets (> 75): {line!r}"
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:  # a fold split a multi-byte character
            raise AssertionError(f"line {number} is not UTF-8 on its own: {line!r}") from exc


def check_bytes(ics: bytes) -> None:
    """Assert every byte-level rule from shared/notes/ical-feeds.md on a rendered calendar."""
    _check_physical_lines(ics)
    lines = list(_content_lines(ics))

    cal_props = {name: (params, value) for path, name, params, value in lines if path == ("VCALENDAR",)}
    assert cal_props.get("VERSION", ({}, ""))[1] == "2.0", "VERSION:2.0 missing"
    assert "PRODID" in cal_props, "PRODID missing"
    method = cal_props.get("METHOD", ({}, "PUBLISH"))[1].upper()
    if "X-PUBLISHED-TTL" in cal_props:
        ttl = cal_props["X-PUBLISHED-TTL"][1]
        assert _DURATION.match(ttl), f"X-PUBLISHED-TTL must be an ISO duration, got {ttl!r}"
    if "REFRESH-INTERVAL" in cal_props:
        params, value = cal_props["REFRESH-INTERVAL"]
        assert params.get("VALUE") == "DURATION", "REFRESH-INTERVAL needs VALUE=DURATION"
        assert _DURATION.match(value), f"REFRESH-INTERVAL must be an ISO duration, got {value!r}"

    # Property checks on the raw lines of events and free/busy components.
    for path, name, params, value in lines:
        if path[-1:] not in (("VEVENT",), ("VFREEBUSY",)):
            continue
        if name in ("DTSTAMP", "LAST-MODIFIED", "CREATED"):
            assert "TZID" not in params, f"{name} must be UTC, got {params}"
            assert _UTC_DATETIME.match(value), f"{name} must be UTC with Z, got {value!r}"
        if name in _TIME_PROPS:
            for item in value.split(","):
                if params.get("VALUE") == "DATE":
                    assert _DATE.match(item), f"{name};VALUE=DATE with {item!r}"
                elif "TZID" in params:
                    assert _LOCAL_DATETIME.match(item), f"{name};TZID with {item!r}"
                else:
                    assert _UTC_DATETIME.match(item), f"floating {name}:{item} (no TZID, no Z)"
        if name == "FREEBUSY":
            assert params.get("FBTYPE") == "BUSY", f"FREEBUSY without FBTYPE=BUSY: {params}"
            for period in value.split(","):
                start, _, end = period.partition("/")
                assert _UTC_DATETIME.match(start), f"FREEBUSY start not UTC: {period}"
                assert _UTC_DATETIME.match(end) or _DURATION.match(end), f"FREEBUSY end not UTC: {period}"

    # Group VEVENT properties by component occurrence (BEGIN..END) for counts.
    per_event = _properties_per_component(ics, "VEVENT")
    uids: list[str] = []
    for props in per_event:
        names = [name for name, _, _ in props]
        assert names.count("UID") == 1, f"VEVENT needs exactly one UID: {names}"
        assert names.count("DTSTAMP") == 1, f"VEVENT needs exactly one DTSTAMP: {names}"
        assert names.count("SEQUENCE") <= 1, f"more than one SEQUENCE: {names}"
        uids.append(next(value for name, _, value in props if name == "UID"))
        status = next((value for name, _, value in props if name == "STATUS"), None)
        if method == "PUBLISH":
            assert "ATTENDEE" not in names, "ATTENDEE under METHOD:PUBLISH"
        if method == "CANCEL":
            assert status == "CANCELLED", f"METHOD:CANCEL event with STATUS {status}"
    assert len(uids) == len(set(uids)), f"duplicate UIDs: {uids}"

    for props in _properties_per_component(ics, "VTIMEZONE", children=True):
        names = [name for name, _, _ in props]
        assert "COMMENT" not in names, "COMMENT in VTIMEZONE"
        tzid = next(value for name, _, value in props if name == "TZID")
        if tzid == "Asia/Shanghai":
            assert names.count("BEGIN:STANDARD") == 1, "Shanghai: exactly one STANDARD"
            assert "BEGIN:DAYLIGHT" not in names, "Shanghai has had no DST since 1991"

    # Parse back: icalendar must read it without errors and find every VTIMEZONE.
    cal = Calendar.from_ical(ics)
    assert cal.get_missing_tzids() == set(), f"TZID without VTIMEZONE: {cal.get_missing_tzids()}"
    for component in cal.walk():
        assert not component.errors, f"{component.name}: {component.errors}"
    for event in cal.walk("VEVENT"):
        assert event.end > event.start, f"{event['UID']}: DTEND must be after DTSTART"


def _properties_per_component(
    ics: bytes, component: str, *, children: bool = False
) -> list[list[tuple[str, dict[str, str], str]]]:
    """Properties of each occurrence of ``component``; with ``children``, nested BEGIN lines too."""
    text = re.sub(rb"\r\n[ \t]", b"", ics).decode("utf-8")
    result: list[list[tuple[str, dict[str, str], str]]] = []
    depth = 0
    current: list[tuple[str, dict[str, str], str]] = []
    for line in text.split("\r\n"):
        if not line:
            continue
        head, value = _split_value(line)
        name = _split_params(head)[0].upper()
        if name == "BEGIN" and value.upper() == component and depth == 0:
            depth, current = 1, []
            continue
        if depth == 0:
            continue
        if name == "BEGIN":
            depth += 1
            if children:
                current.append((f"BEGIN:{value.upper()}", {}, ""))
            continue
        if name == "END":
            depth -= 1
            if depth == 0:
                result.append(current)
            continue
        if depth == 1 or children:
            current.append((name, {}, value))
    return result
