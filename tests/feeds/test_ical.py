"""The iCalendar serializer: byte-level rules, and four parsers agreeing with a hand-written expectation."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from booking.feeds.ical import CalendarMeta, FeedEvent, feed_etag, render_calendar, render_freebusy
from tests.conftest import require
from tests.feeds.parsers import (
    check_bytes,
    node_available,
    parse_with_all,
    parse_with_node,
    parse_with_python,
)

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = UTC
HOST = "station.example"
WINDOW = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
EDITED = datetime(2026, 3, 1, 16, 30, 15, 123456, tzinfo=SH)  # = 08:30:15Z

LONG_TITLE = "外滩金融品巷零距离党群服务站共享会议室季度合规培训与反洗钱专题研讨会（第三期）"
TRICKY_TEXT = '党建活动, 第2场; 主题："初心"\n请带身份证 🎉🇨🇳'

META = CalendarMeta(
    name="共享会议室 · 外滩金融品巷·零距离党群服务站",
    tzid="Asia/Shanghai",
    color="steelblue",
    description="外滩金融品巷·零距离党群服务站, 共享会议室; 预订日历",
)


def booking(n: int, start: datetime | date, end: datetime | date, **kw: object) -> FeedEvent:
    fields: dict[str, object] = {
        "summary": f"会议 {n}",
        "status": "CONFIRMED",
        "sequence": 0,
        "last_modified": EDITED,
        "location": "3F 共享会议室",
        "url": f"https://{HOST}/bookings/{n}",
    }
    fields.update(kw)
    return FeedEvent(uid=f"booking-{n}@{HOST}", start=start, end=end, **fields)  # type: ignore[arg-type]


EVENTS: tuple[FeedEvent, ...] = (
    booking(
        101,
        datetime(2026, 4, 15, 14, 0, tzinfo=SH),
        datetime(2026, 4, 15, 16, 0, tzinfo=SH),
        summary=LONG_TITLE,
        description=LONG_TITLE * 3,
    ),
    booking(
        102,
        datetime(2026, 4, 16, 9, 30, tzinfo=SH),
        datetime(2026, 4, 16, 11, 0, tzinfo=SH),
        summary=TRICKY_TEXT,
        location="3F, 东区; 靠窗\n(近电梯)",
        description=TRICKY_TEXT,
    ),
    # Whole-day exhibition 9–11 March 2027: the caller passes the exclusive end.
    booking(103, date(2027, 3, 9), date(2027, 3, 12), summary="党史图片展"),
    # 23:00–01:00 Shanghai, given in UTC: must come out as TZID=Asia/Shanghai.
    booking(
        104, datetime(2026, 12, 31, 15, 0, tzinfo=UTC), datetime(2026, 12, 31, 17, 0, tzinfo=UTC), summary="跨年值班"
    ),
    booking(
        105,
        datetime(2026, 5, 20, 19, 0, tzinfo=SH),
        datetime(2026, 5, 20, 21, 0, tzinfo=SH),
        summary="待审批: 青年读书会",
        status="TENTATIVE",
    ),
    # Given in Berlin summer time (02:00 CEST = 00:00Z = 08:00 Shanghai).
    booking(
        106,
        datetime(2026, 6, 1, 2, 0, tzinfo=BERLIN),
        datetime(2026, 6, 1, 3, 0, tzinfo=BERLIN),
        summary="改期三次的例会",
        sequence=3,
    ),
    # A weekly series: each occurrence is its own booking with its own UID.
    *(
        booking(
            200 + week,
            datetime(2026, 9, 1 + 7 * week, 10, 0, tzinfo=SH),
            datetime(2026, 9, 1 + 7 * week, 11, 30, tzinfo=SH),
            summary="每周二 党小组学习",
        )
        for week in range(4)
    ),
)

# Written by hand from the fixtures above (not from the serializer), sorted by (start, uid).
EXPECTED = [
    (f"booking-101@{HOST}", "2026-04-15T06:00:00Z", "2026-04-15T08:00:00Z", LONG_TITLE, "CONFIRMED"),
    (f"booking-102@{HOST}", "2026-04-16T01:30:00Z", "2026-04-16T03:00:00Z", TRICKY_TEXT, "CONFIRMED"),
    (f"booking-105@{HOST}", "2026-05-20T11:00:00Z", "2026-05-20T13:00:00Z", "待审批: 青年读书会", "TENTATIVE"),
    (f"booking-106@{HOST}", "2026-06-01T00:00:00Z", "2026-06-01T01:00:00Z", "改期三次的例会", "CONFIRMED"),
    (f"booking-200@{HOST}", "2026-09-01T02:00:00Z", "2026-09-01T03:30:00Z", "每周二 党小组学习", "CONFIRMED"),
    (f"booking-201@{HOST}", "2026-09-08T02:00:00Z", "2026-09-08T03:30:00Z", "每周二 党小组学习", "CONFIRMED"),
    (f"booking-202@{HOST}", "2026-09-15T02:00:00Z", "2026-09-15T03:30:00Z", "每周二 党小组学习", "CONFIRMED"),
    (f"booking-203@{HOST}", "2026-09-22T02:00:00Z", "2026-09-22T03:30:00Z", "每周二 党小组学习", "CONFIRMED"),
    (f"booking-104@{HOST}", "2026-12-31T15:00:00Z", "2026-12-31T17:00:00Z", "跨年值班", "CONFIRMED"),
    (f"booking-103@{HOST}", "2027-03-09", "2027-03-12", "党史图片展", "CONFIRMED"),
]

BERLIN_META = CalendarMeta(name="Raum Berlin", tzid="Europe/Berlin")
BERLIN_EVENTS = (
    booking(301, datetime(2026, 1, 15, 9, 0, tzinfo=BERLIN), datetime(2026, 1, 15, 10, 0, tzinfo=BERLIN)),
    booking(302, datetime(2026, 7, 15, 9, 0, tzinfo=BERLIN), datetime(2026, 7, 15, 10, 0, tzinfo=BERLIN)),
    # Across the spring-forward night (02:00 CET -> 03:00 CEST on 29 March 2026).
    booking(303, datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN), datetime(2026, 3, 29, 4, 0, tzinfo=BERLIN)),
    # Across the fall-back night (03:00 CEST -> 02:00 CET on 25 October 2026).
    booking(304, datetime(2026, 10, 25, 1, 0, tzinfo=BERLIN), datetime(2026, 10, 25, 4, 0, tzinfo=BERLIN)),
    booking(305, datetime(2027, 3, 15, 18, 0, tzinfo=SH), datetime(2027, 3, 15, 19, 0, tzinfo=SH)),
)
BERLIN_EXPECTED = [
    (f"booking-301@{HOST}", "2026-01-15T08:00:00Z", "2026-01-15T09:00:00Z", "会议 301", "CONFIRMED"),
    (f"booking-303@{HOST}", "2026-03-29T00:30:00Z", "2026-03-29T02:00:00Z", "会议 303", "CONFIRMED"),
    (f"booking-302@{HOST}", "2026-07-15T07:00:00Z", "2026-07-15T08:00:00Z", "会议 302", "CONFIRMED"),
    (f"booking-304@{HOST}", "2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z", "会议 304", "CONFIRMED"),
    (f"booking-305@{HOST}", "2027-03-15T10:00:00Z", "2027-03-15T11:00:00Z", "会议 305", "CONFIRMED"),
]

ORGANIZER = ("zhang.san@station.example", "张三")
ATTENDEES = (("li.si@example.com", "李四"), ("wang.wu@example.com", "王五, 财务部"))


@pytest.fixture(scope="module")
def feed() -> bytes:
    return render_calendar(META, EVENTS)


def unfolded(ics: bytes) -> str:
    return re.sub(rb"\r\n[ \t]", b"", ics).decode("utf-8")


def vevents(ics: bytes) -> list[str]:
    return re.findall(r"BEGIN:VEVENT\r\n(.*?)END:VEVENT\r\n", unfolded(ics), flags=re.S)


# --- byte-level rules --------------------------------------------------------


def test_feed_passes_every_byte_rule(feed: bytes) -> None:
    check_bytes(feed)


def test_crlf_only_and_short_utf8_lines(feed: bytes) -> None:
    assert b"\n" not in feed.replace(b"\r\n", b"")
    physical = feed.split(b"\r\n")
    assert physical[-1] == b""
    for line in physical[:-1]:
        assert len(line) <= 75
        line.decode("utf-8")


def test_long_chinese_title_is_folded_on_character_boundaries(feed: bytes) -> None:
    assert len(f"SUMMARY:{LONG_TITLE}".encode()) > 75
    physical = feed.split(b"\r\n")
    first = physical.index(next(line for line in physical if line.startswith(b"SUMMARY:\xe5\xa4\x96\xe6\xbb\xa9")))
    folded = [physical[first]]
    for line in physical[first + 1 :]:
        if not line.startswith(b" "):
            break
        folded.append(line)
    assert len(folded) > 1, "a >75-octet SUMMARY must be folded"
    pieces = [line.decode("utf-8") for line in folded]  # each piece is valid UTF-8 on its own
    assert pieces[0] + "".join(piece[1:] for piece in pieces[1:]) == f"SUMMARY:{LONG_TITLE}"
    assert all(len(line) <= 75 for line in folded)


def test_text_is_escaped(feed: bytes) -> None:
    text = unfolded(feed)
    assert 'SUMMARY:党建活动\\, 第2场\\; 主题："初心"\\n请带身份证 🎉🇨🇳\r\n' in text
    assert "LOCATION:3F\\, 东区\\; 靠窗\\n(近电梯)\r\n" in text


def test_uids_unique_and_never_invented(feed: bytes) -> None:
    uids = re.findall(r"^UID:(.*)\r$", unfolded(feed), flags=re.M)
    assert sorted(uids) == sorted(ev.uid for ev in EVENTS)  # no calendar-level UID either


def test_dtstamp_and_last_modified_come_from_last_modified_in_utc(feed: bytes) -> None:
    text = unfolded(feed)
    stamps = re.findall(r"^DTSTAMP(.*)\r$", text, flags=re.M)
    modified = re.findall(r"^LAST-MODIFIED(.*)\r$", text, flags=re.M)
    assert stamps == [":20260301T083015Z"] * len(EVENTS)
    assert modified == stamps


def test_exactly_one_sequence_per_event(feed: bytes) -> None:
    for body in vevents(feed):
        assert len(re.findall(r"^SEQUENCE:", body, flags=re.M)) == 1
    (seq3,) = [body for body in vevents(feed) if f"UID:booking-106@{HOST}" in body]
    assert "SEQUENCE:3\r\n" in seq3


def test_times_rendered_in_calendar_zone_and_whole_days_exclusive(feed: bytes) -> None:
    text = unfolded(feed)
    # Given in UTC, crossing midnight in Shanghai.
    assert "DTSTART;TZID=Asia/Shanghai:20261231T230000\r\nDTEND;TZID=Asia/Shanghai:20270101T010000\r\n" in text
    # Given in Berlin time.
    assert "DTSTART;TZID=Asia/Shanghai:20260601T080000\r\n" in text
    assert "DTSTART;VALUE=DATE:20270309\r\nDTEND;VALUE=DATE:20270312\r\n" in text
    for body in vevents(feed):
        assert not re.search(r"^DT(START|END):\d{8}T\d{6}\r$", body, flags=re.M), "floating time"


def test_every_tzid_has_its_vtimezone(feed: bytes) -> None:
    cal = Calendar.from_ical(feed)
    assert cal.get_missing_tzids() == set()
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Asia/Shanghai"]


def test_shanghai_vtimezone_is_one_standard_block(feed: bytes) -> None:
    (vtz,) = Calendar.from_ical(feed).walk("VTIMEZONE")
    assert len(vtz.standard) == 1
    assert vtz.daylight == []
    assert "COMMENT" not in vtz
    assert all("COMMENT" not in sub and "RDATE" not in sub for sub in vtz.subcomponents)
    (std,) = vtz.standard
    assert std.TZOFFSETFROM == std.TZOFFSETTO == timedelta(hours=8)
    assert b"\r\nTZOFFSETTO:+0800\r\n" in feed


def test_berlin_vtimezone_has_dst_and_no_comment() -> None:
    ics = render_calendar(BERLIN_META, BERLIN_EVENTS)
    check_bytes(ics)
    (vtz,) = Calendar.from_ical(ics).walk("VTIMEZONE")
    assert vtz["TZID"] == "Europe/Berlin"
    assert vtz.daylight
    assert vtz.standard
    assert "COMMENT" not in vtz
    offsets = {sub.TZOFFSETTO for sub in vtz.subcomponents}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}


def test_two_renders_are_byte_identical_whatever_the_input_order(feed: bytes) -> None:
    again = render_calendar(META, reversed(EVENTS))
    assert again == feed
    assert feed_etag(again) == feed_etag(feed)
    starts = re.findall(r"^UID:(.*)\r$", unfolded(feed), flags=re.M)
    assert starts == [row[0] for row in EXPECTED]


def test_calendar_properties(feed: bytes) -> None:
    text = unfolded(feed)
    for line in (
        "VERSION:2.0",
        "PRODID:-//Station Booking//Station Booking//ZH",
        f"NAME:{META.name}",
        f"X-WR-CALNAME:{META.name}",
        "X-WR-TIMEZONE:Asia/Shanghai",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
        "COLOR:steelblue",
        "DESCRIPTION:外滩金融品巷·零距离党群服务站\\, 共享会议室\\; 预订日历",
    ):
        assert f"\r\n{line}\r\n" in text, line
    cal = Calendar.from_ical(feed)
    assert cal.calendar_name == META.name
    assert cal.refresh_interval == timedelta(hours=1)
    assert "\r\nMETHOD:" not in text  # a subscription, not an iTIP message (RFC 5546 §3.2.1)


def test_refresh_interval_other_values() -> None:
    ics = render_calendar(replace(META, refresh=timedelta(minutes=30), color=None), EVENTS[:1])
    assert b"\r\nX-PUBLISHED-TTL:PT30M\r\n" in ics
    assert b"\r\nREFRESH-INTERVAL;VALUE=DURATION:PT30M\r\n" in ics
    assert b"COLOR" not in ics
    check_bytes(ics)


def test_no_people_under_publish() -> None:
    events = [replace(ev, organizer=ORGANIZER, attendees=ATTENDEES) for ev in EVENTS]
    ics = render_calendar(META, events)
    assert b"ATTENDEE" not in ics
    assert b"ORGANIZER" not in ics
    assert b"mailto:" not in ics
    check_bytes(ics)


def test_request_carries_organizer_and_attendees() -> None:
    ics = render_calendar(META, [replace(EVENTS[0], organizer=ORGANIZER, attendees=ATTENDEES)], method="REQUEST")
    check_bytes(ics)
    text = unfolded(ics)
    assert "\r\nMETHOD:REQUEST\r\n" in text
    assert "ORGANIZER;CN=张三:mailto:zhang.san@station.example\r\n" in text
    assert "ATTENDEE;CN=李四;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT:mailto:li.si@example.com\r\n" in text
    assert "RSVP" not in text  # no reply is ever read, so none is asked for
    assert 'ATTENDEE;CN="王五, 财务部";PARTSTAT=NEEDS-ACTION' in text
    (event,) = Calendar.from_ical(ics).walk("VEVENT")
    assert [str(a) for a in event.attendees] == ["mailto:li.si@example.com", "mailto:wang.wu@example.com"]
    assert event.attendees[1].params["CN"] == "王五, 财务部"


def test_cancel_forces_status_cancelled() -> None:
    cancelled = replace(EVENTS[0], organizer=ORGANIZER, attendees=ATTENDEES, sequence=4)
    ics = render_calendar(META, [cancelled], method="CANCEL")
    check_bytes(ics)
    assert b"\r\nMETHOD:CANCEL\r\n" in ics
    assert b"\r\nSTATUS:CANCELLED\r\n" in ics
    assert b"\r\nSEQUENCE:4\r\n" in ics
    assert f"UID:{cancelled.uid}".encode() in ics


def test_cancel_check_catches_missing_status() -> None:
    ics = render_calendar(META, [replace(EVENTS[0], organizer=ORGANIZER)], method="CANCEL")
    broken = ics.replace(b"STATUS:CANCELLED", b"STATUS:CONFIRMED")
    with pytest.raises(AssertionError, match="CANCEL"):
        check_bytes(broken)


@pytest.mark.parametrize(
    ("method", "event", "message"),
    [
        ("REQUEST", replace(EVENTS[0], organizer=ORGANIZER, status="CANCELLED"), "CANCEL"),
        ("REQUEST", EVENTS[0], "ORGANIZER"),
        ("PUBLISH-ALL", EVENTS[0], "METHOD"),
    ],
)
def test_itip_misuse_is_rejected(method: str, event: FeedEvent, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_calendar(META, [event], method=method)


def test_whole_day_and_utc_only_calendars() -> None:
    only_days = render_calendar(META, [EVENTS[2]])
    check_bytes(only_days)
    assert b"VTIMEZONE" not in only_days  # no TZID used, none needed

    utc_meta = replace(META, tzid="UTC")
    ics = render_calendar(utc_meta, EVENTS)
    check_bytes(ics)
    assert b"VTIMEZONE" not in ics
    assert b"TZID=" not in ics
    assert b"\r\nDTSTART:20261231T150000Z\r\n" in ics
    assert parse_with_python(ics, WINDOW)["icalendar"] == EXPECTED


def test_empty_calendar() -> None:
    ics = render_calendar(META, [])
    check_bytes(ics)
    assert Calendar.from_ical(ics).walk("VEVENT") == []


# --- validation ---------------------------------------------------------------

NAIVE = datetime(2026, 4, 15, 14, 0)  # noqa: DTZ001 - naive on purpose


@pytest.mark.parametrize(
    "event",
    [
        replace(EVENTS[0], start=NAIVE),
        replace(EVENTS[0], end=NAIVE + timedelta(hours=2)),
        replace(EVENTS[0], last_modified=datetime(2026, 3, 1, 8, 0)),  # noqa: DTZ001
    ],
    ids=["start", "end", "last_modified"],
)
def test_naive_datetimes_raise(event: FeedEvent) -> None:
    with pytest.raises(ValueError, match="naive"):
        render_calendar(META, [event])


def test_naive_freebusy_raises() -> None:
    aware = datetime(2026, 4, 15, tzinfo=SH)
    with pytest.raises(ValueError, match="naive"):
        render_freebusy(
            META,
            uid="fb@x",
            stamp=EDITED,
            start=aware,
            end=aware + timedelta(days=1),
            busy=[(NAIVE, NAIVE + timedelta(hours=1))],
        )
    with pytest.raises(ValueError, match="naive"):
        render_freebusy(META, uid="fb@x", stamp=NAIVE, start=aware, end=aware + timedelta(days=1), busy=[])


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (replace(EVENTS[0], end=EVENTS[0].start), "after start"),
        (replace(EVENTS[2], end=date(2027, 3, 9)), "exclusive"),
        (replace(EVENTS[0], end=date(2026, 4, 16)), "both"),
        (replace(EVENTS[0], status="DONE"), "STATUS"),
        (replace(EVENTS[0], sequence=-1), "SEQUENCE"),
    ],
)
def test_invalid_events_raise(event: FeedEvent, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_calendar(META, [event])


def test_invalid_calendar_raises() -> None:
    with pytest.raises(ValueError, match="duplicate UID"):
        render_calendar(META, [EVENTS[0], EVENTS[0]])
    with pytest.raises(ValueError, match="time zone"):
        render_calendar(replace(META, tzid="Asia/Nowhere"), EVENTS)
    with pytest.raises(ValueError, match="COLOR"):
        render_calendar(replace(META, color="#4682b4"), EVENTS)


# --- free/busy ----------------------------------------------------------------


def test_freebusy_periods_are_utc_busy_merged_and_clipped() -> None:
    week = datetime(2026, 9, 7, tzinfo=SH)
    busy = [
        (datetime(2026, 9, 8, 10, 0, tzinfo=SH), datetime(2026, 9, 8, 11, 30, tzinfo=SH)),
        (datetime(2026, 9, 8, 11, 0, tzinfo=SH), datetime(2026, 9, 8, 12, 0, tzinfo=SH)),  # overlaps
        (datetime(2026, 9, 6, 20, 0, tzinfo=SH), datetime(2026, 9, 7, 1, 0, tzinfo=SH)),  # clipped
        (datetime(2026, 9, 20, 9, 0, tzinfo=SH), datetime(2026, 9, 20, 10, 0, tzinfo=SH)),  # outside
        (datetime(2026, 9, 9, 1, 0, tzinfo=UTC), datetime(2026, 9, 9, 2, 0, tzinfo=UTC)),
    ]
    kwargs = {"uid": f"freebusy-room-7@{HOST}", "stamp": EDITED, "start": week, "end": week + timedelta(days=7)}
    ics = render_freebusy(META, busy=busy, **kwargs)  # type: ignore[arg-type]
    check_bytes(ics)
    assert ics == render_freebusy(META, busy=reversed(busy), **kwargs)  # type: ignore[arg-type]
    text = unfolded(ics)
    assert re.findall(r"^FREEBUSY.*\r$", text, flags=re.M) == [
        "FREEBUSY;FBTYPE=BUSY;VALUE=PERIOD:20260906T160000Z/20260906T170000Z\r",
        "FREEBUSY;FBTYPE=BUSY;VALUE=PERIOD:20260908T020000Z/20260908T040000Z\r",
        "FREEBUSY;FBTYPE=BUSY;VALUE=PERIOD:20260909T010000Z/20260909T020000Z\r",
    ]
    for line in (
        "DTSTART:20260906T160000Z",
        "DTEND:20260913T160000Z",
        "DTSTAMP:20260301T083015Z",
        f"UID:freebusy-room-7@{HOST}",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
    ):
        assert f"\r\n{line}\r\n" in text, line
    assert "METHOD" not in text  # a subscription, not an iTIP message: no ORGANIZER is owed
    (fb,) = Calendar.from_ical(ics).walk("VFREEBUSY")
    assert len(fb["FREEBUSY"]) == 3


def test_freebusy_check_catches_missing_fbtype() -> None:
    week = datetime(2026, 9, 7, tzinfo=SH)
    ics = render_freebusy(
        META,
        uid="fb@x",
        stamp=EDITED,
        start=week,
        end=week + timedelta(days=7),
        busy=[(week, week + timedelta(hours=1))],
    )
    with pytest.raises(AssertionError, match="FBTYPE"):
        check_bytes(ics.replace(b"FBTYPE=BUSY;", b""))


# --- cross-parser agreement ----------------------------------------------------


def test_python_parsers_read_the_expected_events(feed: bytes) -> None:
    assert parse_with_python(feed, WINDOW) == {"icalendar": EXPECTED, "recurring_ical_events": EXPECTED}


def test_all_parsers_read_the_expected_events(feed: bytes) -> None:
    readings = parse_with_all(feed, WINDOW)
    assert set(readings) == {"icalendar", "recurring_ical_events", "icaljs", "nodeical"}
    for parser, rows in readings.items():
        assert rows == EXPECTED, parser


def test_all_parsers_read_berlin_across_dst() -> None:
    ics = render_calendar(BERLIN_META, BERLIN_EVENTS)
    for parser, rows in parse_with_all(ics, WINDOW).items():
        assert rows == BERLIN_EXPECTED, parser


def test_all_parsers_read_an_invitation() -> None:
    invitation = replace(EVENTS[3], organizer=ORGANIZER, attendees=ATTENDEES)
    ics = render_calendar(META, [invitation], method="REQUEST")
    for parser, rows in parse_with_all(ics, WINDOW).items():
        assert rows == [EXPECTED[8]], parser


def _without_vtimezone(ics: bytes) -> bytes:
    return re.sub(rb"BEGIN:VTIMEZONE\r\n.*?END:VTIMEZONE\r\n", b"", ics, flags=re.S)


def test_harness_catches_a_missing_vtimezone(feed: bytes) -> None:
    broken = _without_vtimezone(feed)
    with pytest.raises(AssertionError, match="TZID without VTIMEZONE"):
        check_bytes(broken)
    require(node_available(), "Node.js and `npm ci` in tests/feeds/node for the ical.js leg")
    # ical.js (Thunderbird, Nextcloud) turns an unknown TZID into floating time.
    assert parse_with_node(broken)["icaljs"] != EXPECTED


def test_harness_catches_a_wrong_vtimezone(feed: bytes) -> None:
    wrong = feed.replace(b"TZOFFSETFROM:+0800", b"TZOFFSETFROM:+0900").replace(b"TZOFFSETTO:+0800", b"TZOFFSETTO:+0900")
    check_bytes(wrong)  # bytes look fine; only a parser that honours the VTIMEZONE can tell
    icaljs = parse_with_node(wrong)["icaljs"]
    timed = [row for row in EXPECTED if "T" in row[1]]
    assert all(row not in icaljs for row in timed)


# --- VTIMEZONE correctness beyond Shanghai ---------------------------------------

DST_ZONES = [
    "Europe/Berlin",
    "Europe/London",
    "Europe/Dublin",  # tzdata's negative DST
    "America/New_York",  # rule change in 2007
    "America/Sao_Paulo",  # DST abolished in 2019
    "Australia/Sydney",  # southern hemisphere
    "Pacific/Auckland",
    "Asia/Tehran",  # irregular dates, abolished in 2022
]


def _utc_transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Offset changes found by an hourly scan: independent of the serializer's own search."""
    found, instant = [], start
    previous = instant.astimezone(zone).utcoffset()
    while instant < end:
        instant += timedelta(hours=1)
        offset = instant.astimezone(zone).utcoffset()
        if offset != previous:
            found.append(instant)
            previous = offset
    return found


@pytest.mark.parametrize("tzid", ["Asia/Shanghai", *DST_ZONES])
def test_vtimezone_matches_tz_database_2000_to_2037(tzid: str) -> None:
    zone = ZoneInfo(tzid)
    ics = render_calendar(
        CalendarMeta(name=tzid, tzid=tzid),
        [booking(1, datetime(2026, 1, 1, 12, tzinfo=zone), datetime(2026, 1, 1, 13, tzinfo=zone))],
    )
    check_bytes(ics)
    (vtz,) = Calendar.from_ical(ics).walk("VTIMEZONE")
    assert "COMMENT" not in ics.decode()
    from_vtimezone = vtz.to_tz(lookup_tzid=False)  # read our VTIMEZONE, not the tz database
    instant = datetime(2000, 1, 2, tzinfo=UTC)
    near = timedelta(hours=3)
    while instant < datetime(2037, 12, 1, tzinfo=UTC):
        offset = instant.astimezone(zone).utcoffset()
        # Skip the hours around a change: converting UTC to a repeated wall time is
        # ambiguous for dateutil's reader, whatever the VTIMEZONE says.
        if (instant - near).astimezone(zone).utcoffset() == offset == (instant + near).astimezone(zone).utcoffset():
            assert instant.astimezone(from_vtimezone).utcoffset() == offset, instant
        instant += timedelta(hours=53)  # walks through every hour of the day over the years


@pytest.mark.parametrize("tzid", DST_ZONES)
def test_icaljs_reads_times_next_to_every_dst_change(tzid: str) -> None:
    """The hour after spring-forward is where an onset written in the wrong wall time shows."""
    zone = ZoneInfo(tzid)
    changes = _utc_transitions(zone, datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
    events, expected = [], []
    for n, change in enumerate(changes):
        for m, delta in enumerate((timedelta(minutes=-90), timedelta(minutes=30), timedelta(hours=2))):
            start = change + delta
            uid_n = 1000 + 10 * n + m
            events.append(booking(uid_n, start.astimezone(zone), (start + timedelta(hours=1)).astimezone(zone)))
            expected.append(
                (
                    f"booking-{uid_n}@{HOST}",
                    start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    f"会议 {uid_n}",
                    "CONFIRMED",
                )
            )
    if not events:
        events.append(booking(1, datetime(2026, 6, 1, 12, tzinfo=zone), datetime(2026, 6, 1, 13, tzinfo=zone)))
        expected.append(
            (
                f"booking-1@{HOST}",
                datetime(2026, 6, 1, 12, tzinfo=zone).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                datetime(2026, 6, 1, 13, tzinfo=zone).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "会议 1",
                "CONFIRMED",
            )
        )
    ics = render_calendar(CalendarMeta(name=tzid, tzid=tzid), events)
    check_bytes(ics)
    expected.sort(key=lambda row: (row[1], row[0]))
    # Times in the repeated hour of a fall-back are written in UTC (a TZID time is
    # ambiguous there, and ical.js resolves it to the second run). But
    # recurring_ical_events pipes UTC through
    # x-wr-timezone, which re-localises to X-WR-TIMEZONE and loses the fold: it
    # reads them an hour early. Known consumer limitation; the others get it right.
    repeated = {ev.uid for ev in events if _second_pass(ev.start, zone) or _second_pass(ev.end, zone)}
    assert not changes or repeated, "fixture should cover the repeated hour"
    for parser, rows in parse_with_all(ics, WINDOW).items():
        if parser == "recurring_ical_events":
            assert [r for r in rows if r[0] not in repeated] == [r for r in expected if r[0] not in repeated]
        else:
            assert rows == expected, parser


def _second_pass(value: datetime | date, zone: ZoneInfo) -> bool:
    """An instant in the second run of a repeated wall-clock hour."""
    assert isinstance(value, datetime)
    local = value.astimezone(zone)
    return bool(local.fold) and local.replace(fold=0).utcoffset() != local.utcoffset()


@pytest.mark.parametrize("octets", [1, 73, 74, 75, 76, 149, 150, 151])
@pytest.mark.parametrize("char", ["a", "\\", "中", "é", "🎉", ",", "^"])
def test_serializer_is_icalendars_to_ical_byte_for_byte(octets: int, char: str) -> None:
    """ical._to_ical folds only lines over 74 octets; around that limit and its multiples the bytes are to_ical()'s."""
    from icalendar import Event

    from booking.feeds import ical

    cal = Calendar()
    cal.add("prodid", "-//test//")
    event = Event()
    width = 2 if char in ",\\" else len(char.encode())  # "," and "\\" are escaped in TEXT: two octets
    room = max(octets - len("SUMMARY:"), width)
    event.add("summary", "x" * (room - width) + char)  # a line of `octets` octets ending in `char`
    event.add("location", char * octets)
    event.add("description", char * octets + "\n" + char)
    cal.add_component(event)
    if 9 < octets < 75:
        assert any(len(line) == octets for line in cal.to_ical().split(b"\r\n"))
    assert ical._to_ical(cal) == cal.to_ical()


def test_serializer_short_cut_on_a_whole_feed(feed: bytes) -> None:
    from booking.feeds import ical

    parsed = Calendar.from_ical(feed)
    assert ical._to_ical(parsed) == parsed.to_ical()
    assert feed == parsed.to_ical()  # the rendered feed is exactly what icalendar itself would write


# Titles people type that have broken calendars: backslashes (Windows paths, \N that icalendar
# 7.3.2 turns into a newline), TEXT's own escapes, every kind of line break, emoji, a long title.
TORTURE = [
    ("D:\\NAS\\备份", "D:\\NAS\\备份"),
    ("C:\\new", "C:\\new"),
    ("\\\\", "\\\\"),
    ("\\,", "\\,"),
    ("\\;", "\\;"),
    ("a,b;c", "a,b;c"),
    ("第一行\r\n第二行\r第三行\n第四行", "第一行\n第二行\n第三行\n第四行"),
    ("一\u2028二\u2029三\u0085四", "一\n二\n三\n四"),
    ("🎉🇨🇳 庆祝 👩‍💻", "🎉🇨🇳 庆祝 👩‍💻"),
    ("长" * 200, "长" * 200),
]


def test_every_parser_reads_every_torture_title_exactly() -> None:
    events = [
        booking(
            500 + n,
            datetime(2026, 5, 1 + n, 9, 0, tzinfo=SH),
            datetime(2026, 5, 1 + n, 10, 0, tzinfo=SH),
            summary=title,
        )
        for n, (title, _) in enumerate(TORTURE)
    ]
    ics = render_calendar(META, events)
    check_bytes(ics)
    # no line of the body starts with anything but a property or a fold: nothing was injected
    for line in ics.decode().split("\r\n"):
        assert line == "" or line.startswith(" ") or re.match(r"^[A-Z-]+[;:]", line), line
    expected = {f"booking-{500 + n}@{HOST}": read for n, (_, read) in enumerate(TORTURE)}
    for parser, rows in parse_with_all(ics, WINDOW).items():
        read = {row[0]: row[3] for row in rows}
        if parser == "nodeical":
            # node-ical (0.26.1, and 0.27.2 the newest) unescapes \n before \\, so it reads the
            # correct "C:\\new" as "C:\" and a line break: its bug, the other three read it right.
            # Pinned here, so a fixed node-ical shows up as this assertion failing.
            assert read.pop(f"booking-{500}@{HOST}") == "D:\\\nAS\\备份"
            assert read.pop(f"booking-{501}@{HOST}") == "C:\\\new"
            assert read == {uid: text for uid, text in expected.items() if uid in read}
            assert len(read) == len(TORTURE) - 2
            continue
        assert read == expected, parser
