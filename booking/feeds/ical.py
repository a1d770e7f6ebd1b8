"""iCalendar (RFC 5545) serializer for the booking feeds and invitation emails.

Pure Python on purpose: the web layer turns bookings into ``FeedEvent``s, and
everything that decides whether Google, Outlook, Apple, Thunderbird, Nextcloud
or DAVx5 read the feed correctly lives here, where it can be unit-tested
byte by byte.  See ``shared/notes/ical-feeds.md`` for the client bugs each
rule below guards against.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import (
    Calendar,
    Component,
    Event,
    FreeBusy,
    Timezone,
    TimezoneDaylight,
    TimezoneStandard,
    vCalAddress,
    vDDDTypes,
    vDuration,
    vInt,
    vPeriod,
    vRecur,
    vText,
    vUri,
    vUTCOffset,
)
from icalendar.parser import Contentline
from icalendar.parser_tools import to_unicode

__all__ = [
    "CalendarMeta",
    "FeedEvent",
    "feed_etag",
    "render_calendar",
    "render_freebusy",
]

# icalendar folds before the 75th octet: a line of at most 74 octets stays whole
FOLD_LIMIT = 75
METHODS = frozenset({"PUBLISH", "REQUEST", "CANCEL"})
STATUSES = frozenset({"CONFIRMED", "TENTATIVE", "CANCELLED"})

# VTIMEZONEs only need to be right for the dates we serve; starting in 2000
# keeps out historic rules (Shanghai's 1986-91 DST) that validators and some
# Outlook versions trip over.
_VTIMEZONE_FIRST_DATE = date(2000, 1, 1)


@dataclass(frozen=True)
class CalendarMeta:
    """Calendar-level properties; clients read the X-WR-* twins, RFC 7986 readers the rest."""

    name: str
    tzid: str
    prodid: str = "-//Station Booking//Station Booking//ZH"
    color: str | None = None
    description: str | None = None
    refresh: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class FeedEvent:
    """One booking as subscribers see it; ``uid`` must be stable across renders and edits."""

    uid: str
    start: datetime | date
    end: datetime | date
    summary: str
    status: str
    sequence: int
    last_modified: datetime
    location: str | None = None
    description: str | None = None
    url: str | None = None
    organizer: tuple[str, str] | None = None
    attendees: tuple[tuple[str, str], ...] = ()


def feed_etag(body: bytes) -> str:
    """Strong ETag for conditional GET; valid because renders are byte-identical."""
    return hashlib.sha256(body).hexdigest()


# Characters that some parsers take for a line break: written as the TEXT newline escape, so
# no title can inject a line (a property) into a feed.
_LINE_BREAKS = str.maketrans({"\u0085": "\n", "\u2028": "\n", "\u2029": "\n"})


def escape_text(value: str) -> str:
    """RFC 5545 §3.3.11 TEXT: backslash first, then ; , and every line break as \\n.

    icalendar's own escaping (7.3.2) turns a literal backslash-N into a newline before it
    escapes, so "D:\\NAS" would read back as "D:", a line break and "AS".
    """
    value = value.replace("\r\n", "\n").replace("\r", "\n").translate(_LINE_BREAKS)
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


class Text(vText):
    """A TEXT value escaped exactly (see escape_text)."""

    def to_ical(self) -> bytes:
        return escape_text(str(self)).encode(self.encoding)


def _to_ical(component: Component) -> bytes:
    """``component.to_ical()``, byte for byte, in about half the time.

    icalendar builds a ``Contentline`` (and an empty ``Parameters``) for every
    property and folds every line character by character: two thirds of a
    1,000-event feed's render. This walks the same tree in the same order
    (``sorted_keys``, subcomponents depth first), serialises each value with its
    own ``to_ical()`` and each distinct parameter set once, and folds only the
    lines that need it, through icalendar's own folding. The tests compare it with
    ``to_ical()`` on every kind of feed and on lines around the folding limit.
    """
    lines: list[str] = []
    stack: list[tuple[Component, bool]] = [(component, False)]
    while stack:
        current, is_end = stack.pop()
        if is_end:
            lines.append(f"END:{current.name}")
            continue
        lines.append(f"BEGIN:{current.name}")
        for name in current.sorted_keys():
            values = current[name]
            for value in values if isinstance(values, list) else (values,):
                lines.append(_content_line(name, value))
        stack.append((current, True))
        stack.extend((sub, False) for sub in reversed(current.subcomponents))
    return "\r\n".join(_folded(line) for line in lines).encode() + b"\r\n"


def _content_line(name: str, value: Any) -> str:
    """What ``Contentline.from_parts(name, value.params, value)`` makes, unfolded."""
    raw = value.to_ical() if hasattr(value, "to_ical") else Text(value).to_ical()
    text = to_unicode(raw)
    params = getattr(value, "params", None)
    if params:
        rendered = _parameters(params)
        if rendered:
            return f"{name};{rendered}:{text}"
    return f"{name}:{text}"


_PARAMETERS: dict[tuple[Any, ...], str] = {}


def _parameters(params: Any) -> str:
    items = tuple(sorted(params.items()))
    if not all(isinstance(v, str) for _, v in items):
        return str(to_unicode(params.to_ical(sorted=True)))
    key = (type(params), *items)
    found = _PARAMETERS.get(key)
    if found is None:
        found = _PARAMETERS[key] = str(to_unicode(params.to_ical(sorted=True)))
    return found


def _folded(line: str) -> str:
    # icalendar folds before the 75th octet, so a line of at most 74 octets stays whole
    if len(line) < FOLD_LIMIT and (line.isascii() or len(line.encode()) < FOLD_LIMIT):
        return line
    return str(Contentline(line).to_ical().decode())


def render_calendar(meta: CalendarMeta, events: Iterable[FeedEvent], *, method: str = "PUBLISH") -> bytes:
    """Render a feed (PUBLISH) or an iTIP invitation (REQUEST/CANCEL) deterministically.

    Same input, same bytes: no "now", no generated UIDs, stable event order,
    so the body's hash can serve as a strong ETag.
    """
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"unsupported METHOD {method!r}; use one of {sorted(METHODS)}")
    zone = _zone(meta.tzid)
    prepared = sorted(
        ((_sort_key(ev, zone), ev.uid, ev) for ev in events),
        key=lambda item: (item[0], item[1]),
    )
    uids = [uid for _, uid, _ in prepared]
    if len(set(uids)) != len(uids):
        raise ValueError("duplicate UID in one calendar; clients would merge or drop events")

    built = [_event(ev, zone, method) for _, _, ev in prepared]
    cal = _calendar(meta, method)
    if any(timed for _, timed in built):
        tzid = _emitted_tzid(meta.tzid)
        if tzid is not None:  # UTC-like zones are written with "Z" and need none
            cal.add_component(_vtimezone(tzid))  # before the events that use it
    for component, _ in built:
        cal.add_component(component)
    return _to_ical(cal)


def render_freebusy(
    meta: CalendarMeta,
    *,
    uid: str,
    stamp: datetime,
    start: datetime,
    end: datetime,
    busy: Iterable[tuple[datetime, datetime]],
) -> bytes:
    """Render a VFREEBUSY that only says when the room is taken, never by whom.

    Periods are clipped to [start, end), merged and written in UTC so no
    VTIMEZONE is needed; FBTYPE=BUSY is explicit because Thunderbird shows
    "No information" without it.
    """
    stamp_utc = _utc(stamp, "stamp")
    start_utc = _utc(start, "start")
    end_utc = _utc(end, "end")
    if end_utc <= start_utc:
        raise ValueError("free/busy window must end after it starts")
    periods = _merge_periods([(_utc(s, "busy start"), _utc(e, "busy end")) for s, e in busy], start_utc, end_utc)

    cal = Calendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", meta.prodid)
    cal.add("NAME", Text(meta.name))
    cal.add("X-WR-CALNAME", Text(meta.name))
    _refresh(cal, meta)
    fb = FreeBusy()  # not FreeBusy.new(): it would invent a UID and DTSTAMP=now
    fb.add("UID", uid)
    fb.add("DTSTAMP", stamp_utc)
    fb.add("DTSTART", start_utc)
    fb.add("DTEND", end_utc)
    for period_start, period_end in periods:
        fb.add("FREEBUSY", vPeriod((period_start, period_end)), parameters={"FBTYPE": "BUSY"})
    cal.add_component(fb)
    return _to_ical(cal)


def _calendar(meta: CalendarMeta, method: str) -> Calendar:
    """Calendar() rather than Calendar.new(), which would add a random UID."""
    _zone(meta.tzid)  # unknown zones fail here, not silently in a client
    cal = Calendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", meta.prodid)
    cal.add("CALSCALE", "GREGORIAN")
    if method != "PUBLISH":
        # Subscription feeds and downloads carry no METHOD: RFC 5546 §3.2.1 would have PUBLISH
        # name an ORGANIZER, and a feed is not a scheduling message (RFC 5545 §3.7.2 lets METHOD
        # be left out). Only invitations and their cancellations, which are iTIP, say it.
        cal.add("METHOD", method)
    # icalendar does not type NAME or X-* as TEXT, so escape them explicitly.
    cal.add("NAME", Text(meta.name))
    cal.add("X-WR-CALNAME", Text(meta.name))
    cal.add("X-WR-TIMEZONE", Text(meta.tzid))
    if meta.description:
        cal.add("DESCRIPTION", Text(meta.description))
        cal.add("X-WR-CALDESC", Text(meta.description))
    if meta.color:
        if not (meta.color.isascii() and meta.color.isalpha()):
            raise ValueError(f"COLOR must be a CSS3 colour name, got {meta.color!r}")
        cal.add("COLOR", meta.color.lower())
    _refresh(cal, meta)
    return cal


def _refresh(cal: Calendar, meta: CalendarMeta) -> None:
    """How often subscribers should poll (RFC 7986 REFRESH-INTERVAL, and Outlook's X-PUBLISHED-TTL)."""
    if meta.refresh <= timedelta(0):
        raise ValueError("refresh interval must be positive")
    # REFRESH-INTERVAL needs VALUE=DURATION (RFC 7986); a bare timedelta in an
    # X- property would serialize as "1:00:00", which clients ignore.
    cal.add("REFRESH-INTERVAL", vDuration(meta.refresh), parameters={"VALUE": "DURATION"})
    cal.add("X-PUBLISHED-TTL", vDuration(meta.refresh))


def _event(ev: FeedEvent, zone: ZoneInfo, method: str) -> tuple[Event, bool]:
    """Build one VEVENT; returns whether it uses the calendar's TZID."""
    status = ev.status.upper()
    if status not in STATUSES:
        raise ValueError(f"{ev.uid}: STATUS must be one of {sorted(STATUSES)}, got {ev.status!r}")
    if method == "CANCEL":
        # RFC 5546: a CANCEL carries STATUS:CANCELLED, whatever the booking said.
        status = "CANCELLED"
    elif method == "REQUEST" and status == "CANCELLED":
        raise ValueError(f"{ev.uid}: send a cancellation with method='CANCEL', not REQUEST")
    if not isinstance(ev.sequence, int) or ev.sequence < 0:
        raise ValueError(f"{ev.uid}: SEQUENCE must be a non-negative integer")
    if not ev.uid:
        raise ValueError("every event needs a stable UID")
    if method != "PUBLISH" and ev.organizer is None:
        raise ValueError(f"{ev.uid}: iTIP {method} needs an ORGANIZER")

    start, end, timed = _span(ev, zone)
    stamp = vDDDTypes(_utc(ev.last_modified, f"{ev.uid}: last_modified"))

    # Event() rather than Event.new(), which would fill in DTSTAMP=now.  Typed
    # values are assigned directly: Component.add() re-infers every type and
    # costs a quarter of the render time on a 1,000-event feed.
    event = Event()
    event["UID"] = Text(ev.uid)
    event["DTSTAMP"] = stamp
    event["LAST-MODIFIED"] = stamp
    event["SEQUENCE"] = vInt(ev.sequence)
    event["DTSTART"] = vDDDTypes(start)
    event["DTEND"] = vDDDTypes(end)
    event["SUMMARY"] = Text(ev.summary)
    event["STATUS"] = Text(status)
    if ev.location:
        event["LOCATION"] = Text(ev.location)
    if ev.description:
        event["DESCRIPTION"] = Text(ev.description)
    if ev.url:
        event["URL"] = vUri(ev.url)
    # Feeds never carry people: PUBLISH must not have ATTENDEE (RFC 5546
    # §3.2.1), and the public room feed must not leak e-mail addresses.
    if method != "PUBLISH":
        if ev.organizer is not None:
            event["ORGANIZER"] = _address(*ev.organizer)
        if ev.attendees:
            event["ATTENDEE"] = [
                _address(
                    email,
                    name,
                    ROLE="REQ-PARTICIPANT",
                    PARTSTAT="NEEDS-ACTION",
                    # no RSVP=TRUE: no reply is ever read, so none is asked for
                )
                for email, name in ev.attendees
            ]
    return event, timed


def _span(ev: FeedEvent, zone: ZoneInfo) -> tuple[date, date, bool]:
    """Validate start/end and move timed ones into the calendar zone (never floating)."""
    if isinstance(ev.start, datetime) or isinstance(ev.end, datetime):
        if not (isinstance(ev.start, datetime) and isinstance(ev.end, datetime)):
            raise ValueError(f"{ev.uid}: start and end must both be datetimes or both dates")
        start = _local(_aware(ev.start, f"{ev.uid}: start"), zone)
        end = _local(_aware(ev.end, f"{ev.uid}: end"), zone)
        if (start.tzinfo is UTC) != (end.tzinfo is UTC):
            # recurring_ical_events moves a UTC start into DTEND's zone and loses the fold.
            start, end = start.astimezone(UTC), end.astimezone(UTC)
        timed = True
    else:
        start, end = ev.start, ev.end
        timed = False
    if end <= start:
        raise ValueError(f"{ev.uid}: end must be after start (whole-day events take the exclusive end date)")
    return start, end, timed


def _local(value: datetime, zone: ZoneInfo) -> datetime:
    """Wall time in the calendar zone, or UTC inside the repeated hour of a fall-back.

    A TZID time names the *first* occurrence of a repeated wall time (RFC 5545
    §3.3.5), so the second 02:30 of the night Berlin falls back would be read
    an hour early, and ical.js picks the second occurrence even for the first;
    instants in that hour alone are written with "Z" instead.
    """
    local = value.astimezone(zone)
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        return value.astimezone(UTC)
    return local


def _sort_key(ev: FeedEvent, zone: ZoneInfo) -> datetime:
    """A UTC instant for both kinds of start, so timed and whole-day events sort together."""
    start = ev.start
    if isinstance(start, datetime):
        return _utc(start, f"{ev.uid}: start")
    return datetime(start.year, start.month, start.day, tzinfo=zone).astimezone(UTC)


def _address(email: str, name: str, **params: str) -> vCalAddress:
    """mailto: address with CN; quotes and line breaks cannot appear in a parameter value."""
    email = email.strip()
    if not email or any(c in email for c in '\r\n:;,<>" '):
        raise ValueError(f"invalid e-mail address {email!r}")
    address = vCalAddress(f"mailto:{email}")
    cn = " ".join(name.replace('"', "'").split())
    if cn:
        address.params["CN"] = cn
    for key, value in params.items():
        address.params[key] = value
    return address


def _aware(value: datetime, what: str) -> datetime:
    """Naive datetimes would become floating times, shown at the same clock time in every zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} is a naive datetime; pass an aware one")
    return value


def _utc(value: datetime, what: str) -> datetime:
    """DTSTAMP, LAST-MODIFIED and free/busy must be UTC; drop microseconds so renders compare equal."""
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime")
    return _aware(value, what).astimezone(UTC).replace(microsecond=0)


def _merge_periods(
    periods: list[tuple[datetime, datetime]], lower: datetime, upper: datetime
) -> list[tuple[datetime, datetime]]:
    """Clip to the window and merge overlaps: RFC 5545 wants sorted, non-overlapping periods."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(periods):
        start, end = max(start, lower), min(end, upper)
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@functools.cache
def _zone(tzid: str) -> ZoneInfo:
    """Resolve an IANA name once; unknown names are a configuration error."""
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tzid!r}") from exc


@functools.cache
def _vtimezone(tzid: str) -> Timezone:
    """Compact, RFC-correct VTIMEZONE from 2000 on, built from the tz database.

    Not ``Timezone.from_tzid``: besides the COMMENT and the historic rules
    (Shanghai's 1986-91 DST) its default carries, icalendar 7.3 writes a
    DAYLIGHT onset in the *new* wall time (03:00 instead of 02:00 for Berlin),
    which ical.js (Thunderbird, Nextcloud) then applies an hour late.  Here a
    yearly pattern becomes one RRULE (what Outlook and Google emit) and
    anything irregular a list of RDATEs; a zone without transitions (Shanghai)
    is a single STANDARD block.  Cached because the scan is slow.
    """
    zone = _zone(tzid)
    first = datetime(_VTIMEZONE_FIRST_DATE.year, 1, 1, tzinfo=UTC)
    state = _tz_state(first, zone)
    vtz = Timezone()
    vtz.add("TZID", tzid)
    observances = [
        _observance(state[1] > timedelta(0), state[0], state[0], state[2], first.replace(tzinfo=None), None, None)
    ]
    groups: dict[tuple[bool, timedelta, timedelta, str], list[datetime]] = {}
    for onset_utc, before, after in _transitions(zone, first, _VTIMEZONE_SCAN_END):
        # DAYLIGHT when the clock goes forward: tzdata's negative DST (Dublin's
        # winter "GMT") would otherwise turn up as DAYLIGHT, which clients misread.
        key = (after[0] > before[0], before[0], after[0], after[2])
        groups.setdefault(key, []).append(onset_utc)
    last_year = _VTIMEZONE_SCAN_END.year - 1
    for (is_dst, offset_from, offset_to, name), onsets in groups.items():
        runs = _yearly_runs([(utc + offset_from).replace(tzinfo=None) for utc in onsets])
        if runs is None:  # irregular: list every onset
            local = [(utc + offset_from).replace(tzinfo=None) for utc in onsets]
            observances.append(_observance(is_dst, offset_from, offset_to, name, local[0], None, local[1:]))
            continue
        for local_onsets, byday in runs:
            rule: dict[str, object] | None = {
                "FREQ": "YEARLY",
                "BYMONTH": local_onsets[0].month,
                "BYDAY": byday,
            }
            if len(local_onsets) == 1 and local_onsets[0].year < last_year:
                rule = None  # a one-off change: DTSTART alone says it
            elif local_onsets[-1].year < last_year:  # the rule stopped; RFC wants UNTIL in UTC
                rule["UNTIL"] = (local_onsets[-1] - offset_from).replace(tzinfo=UTC) + _UNTIL_SLACK
            observances.append(_observance(is_dst, offset_from, offset_to, name, local_onsets[0], rule, None))
    for observance in sorted(observances, key=lambda sub: sub.DTSTART):
        vtz.add_component(observance)
    return vtz


_VTIMEZONE_SCAN_END = datetime(2038, 1, 1, tzinfo=UTC)
# RFC 5545 wants a VTIMEZONE UNTIL in UTC, but some readers (icalendar's own
# to_tz(), for one) compare it with the local onset and drop the last change.
# A day of slack keeps the last onset in for both readings; the next one is a
# year away.
_UNTIL_SLACK = timedelta(days=1)
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_TzState = tuple[timedelta, timedelta, str]


def _tz_state(instant: datetime, zone: ZoneInfo) -> _TzState:
    local = instant.astimezone(zone)
    return (local.utcoffset() or timedelta(0), local.dst() or timedelta(0), local.tzname() or "")


def _transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, _TzState, _TzState]]:
    """(UTC instant, state before, state after) for every change, found daily then by bisection."""
    found = []
    day = timedelta(days=1)
    previous_instant, previous = start, _tz_state(start, zone)
    instant = start + day
    while instant <= end:
        current = _tz_state(instant, zone)
        if current != previous:
            low, high = previous_instant, instant  # state(low) == previous, state(high) != previous
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                middle = middle.replace(second=0, microsecond=0)
                if middle <= low:
                    break
                if _tz_state(middle, zone) == previous:
                    low = middle
                else:
                    high = middle
            found.append((high, previous, _tz_state(high, zone)))
        previous_instant, previous = instant, current
        instant += day
    return found


def _yearly_runs(onsets: list[datetime]) -> list[tuple[list[datetime], str]] | None:
    """Split local onsets into runs of "nth/last weekday of a month at a fixed time", one per year.

    Returns None when the pattern is irregular (more than four runs, or more
    one-off years than rules), so the caller falls back to RDATEs.
    """
    runs: list[tuple[list[datetime], set[str]]] = []
    for onset in onsets:
        days_in_month = (onset.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        weekday = _WEEKDAYS[onset.weekday()]
        candidates = {f"{(onset.day - 1) // 7 + 1}{weekday}"}
        if onset.day + 7 > days_in_month.day:
            candidates.add(f"-1{weekday}")
        if runs:
            previous_onsets, previous_candidates = runs[-1]
            last = previous_onsets[-1]
            common = previous_candidates & candidates
            if common and onset.year == last.year + 1 and (onset.month, onset.time()) == (last.month, last.time()):
                previous_onsets.append(onset)
                runs[-1] = (previous_onsets, common)
                continue
        runs.append(([onset], candidates))
    one_offs = sum(len(run) == 1 for run, _ in runs)
    if len(runs) > 4 or one_offs > len(runs) - one_offs:
        return None
    # Prefer "last Sunday" over "5th Sunday" when both still fit.
    return [(run, min(days, key=lambda d: (not d.startswith("-"), d))) for run, days in runs]


def _observance(
    is_dst: bool,
    offset_from: timedelta,
    offset_to: timedelta,
    name: str,
    start: datetime,
    rule: dict[str, object] | None,
    rdates: list[datetime] | None,
) -> TimezoneStandard | TimezoneDaylight:
    """One STANDARD/DAYLIGHT block; DTSTART is local time in TZOFFSETFROM, as RFC 5545 says."""
    sub = TimezoneDaylight() if is_dst else TimezoneStandard()
    sub.add("DTSTART", start)
    sub.add("TZOFFSETFROM", vUTCOffset(offset_from))
    sub.add("TZOFFSETTO", vUTCOffset(offset_to))
    if name:
        sub.add("TZNAME", name)
    if rule:
        sub.add("RRULE", vRecur(rule))
    # One RDATE per line: ical.js 2.2 (Thunderbird, Nextcloud) reads only the
    # first value of a comma-separated RDATE in a VTIMEZONE.
    for rdate in rdates or ():
        sub.add("RDATE", rdate)
    return sub


@functools.cache
def _emitted_tzid(tzid: str) -> str | None:
    """The TZID icalendar will write for datetimes in this zone (None when it writes "Z").

    Asked once per zone instead of scanning the finished calendar with
    get_missing_tzids(), which costs ~15% of a large render.
    """
    sample = vDDDTypes(datetime(2026, 1, 1, tzinfo=_zone(tzid)))
    return None if sample.params.get("TZID") is None else str(sample.params["TZID"])
