"""The feeds over HTTP: what every calendar app reads, and how polling is answered.

Fixed clock: `now` is Monday 30 November 2026, 09:00 in Shanghai; the application's clock
(`booking.clock`) is stopped there for every test of this module, so the feed window too.
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import event
from werkzeug.serving import make_server

from booking import clock
from booking.auth import services as auth_services
from booking.auth.models import User
from booking.bookings import services
from booking.bookings.models import Booking
from booking.extensions import db
from booking.feeds import views
from booking.feeds.cache import feed_cache
from booking.spaces.models import Space
from tests.conftest import PASSWORD, shanghai
from tests.feeds.parsers import check_bytes, parse_with_all

HOST = "station.test"
WIDE = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
LONG_TITLE = "外滩金融集聚带成员单位青年联谊会季度工作交流暨党建共建签约仪式筹备会议"  # > 75 octets in UTF-8
TRICKY_TITLE = "Budget, Q1; review\nsecond line"


@pytest.fixture(autouse=True)
def fixed_clock(now: datetime) -> None:
    """Every test here asks for `now`, so the conftest's clock fixture stops the clock there."""


def uid(booking: Booking) -> str:
    return f"booking-{booking.id}@{HOST}"


def login(client: FlaskClient, user: User) -> None:
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.status_code


def new_token(client: FlaskClient) -> str:
    """Create or replace the URL as the account page does: POST, then the redirect's page shows it."""
    response = client.post("/account/feed-token")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/account#calendar-feed")
    page = client.get("/account")
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    found = re.findall(r"/feeds/([A-Za-z0-9_-]{20,})\.ics", page.get_data(as_text=True))
    assert found, "the account page shows its owner's calendar URL"
    return found[0]


def token_for(user: User, language: str = "zh_Hans_CN") -> str:
    """A feed token for the user, who reads Chinese (the station's default) unless told otherwise."""
    user.language = language
    token = user.new_feed_token()
    db.session.commit()
    return token


def bump(booking: Booking, at: datetime, **changes: Any) -> None:
    """An edit without a service (no move service yet): new times, SEQUENCE up, watermarks moved."""
    for key, value in changes.items():
        setattr(booking, key, value)
    booking.revision += 1
    booking.updated_at = at
    services.touch_watermarks(db.session, booking, at)
    db.session.commit()


def z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def night(make_space: Any) -> Space:
    """Open round the clock, so a booking can cross midnight."""
    return make_space(
        slug="night-room",
        name_zh="通宵工作室",
        name_en="Night studio",
        color="midnightblue",
        opening_hours={str(d): [["00:00", "24:00"]] for d in range(7)},
        max_duration_minutes=600,
    )


@pytest.fixture
def scene(app: Flask, member: User, staff: User, space: Any, book: Any, night: Space, now: datetime) -> dict[str, Any]:
    """Every case the notes list, booked by `member` through the service."""
    meeting = space("meeting-room", max_future_bookings=None)
    exhibition = space("exhibition")
    long = book(meeting, member, shanghai(2026, 12, 1, 10), title=LONG_TITLE)
    tricky = book(meeting, member, shanghai(2026, 12, 2, 14), title=TRICKY_TITLE)
    pending = book(meeting, member, shanghai(2026, 12, 3, 9), shanghai(2026, 12, 3, 13), title="长会 pending")
    show = book(
        exhibition,
        member,
        shanghai(2026, 12, 10),
        shanghai(2026, 12, 13),  # 10 to 12 December
        title="金融史图片展",
        title_public=True,
    )
    services.approve(db.session, services.context(staff, now=now), show.id)
    late = book(night, member, shanghai(2026, 12, 4, 22), shanghai(2026, 12, 5, 2), title="夜间发布")
    doomed = book(meeting, member, shanghai(2026, 12, 7, 10), title="将被取消")
    moved = book(meeting, member, shanghai(2026, 12, 8, 10), title="将被改期")
    refused = book(meeting, member, shanghai(2026, 12, 9, 9), shanghai(2026, 12, 9, 13), title="被拒绝")
    services.reject(db.session, services.context(staff, now=now), refused.id, "维修")
    assert pending.status == "pending"
    assert show.status == "confirmed"
    assert refused.status == "rejected"
    return {
        "meeting": meeting,
        "exhibition": exhibition,
        "night": night,
        "long": long,
        "tricky": tricky,
        "pending": pending,
        "show": show,
        "late": late,
        "doomed": doomed,
        "moved": moved,
        "refused": refused,
    }


def fetch(client: FlaskClient, url: str, **headers: str) -> Any:
    return client.get(url, headers=headers)


def assert_parsers(ics: bytes, expected: list[tuple[Any, ...]]) -> None:
    check_bytes(ics)
    readings = parse_with_all(ics, WIDE)
    for parser, rows in readings.items():
        assert rows == expected, f"{parser} reads the feed differently"


# --- cross-parser: the bytes every client reads ---------------------------------------


def test_personal_feed_reads_the_same_in_every_parser(
    client: FlaskClient, scene: dict[str, Any], member: User, staff: User, now: datetime
) -> None:
    token = token_for(member)
    s = scene
    expected = [
        (uid(s["long"]), "2026-12-01T02:00:00Z", "2026-12-01T03:00:00Z", LONG_TITLE, "CONFIRMED"),
        (uid(s["tricky"]), "2026-12-02T06:00:00Z", "2026-12-02T07:00:00Z", TRICKY_TITLE, "CONFIRMED"),
        (uid(s["pending"]), "2026-12-03T01:00:00Z", "2026-12-03T05:00:00Z", "长会 pending", "TENTATIVE"),
        (uid(s["late"]), "2026-12-04T14:00:00Z", "2026-12-04T18:00:00Z", "夜间发布", "CONFIRMED"),
        (uid(s["doomed"]), "2026-12-07T02:00:00Z", "2026-12-07T03:00:00Z", "将被取消", "CONFIRMED"),
        (uid(s["moved"]), "2026-12-08T02:00:00Z", "2026-12-08T03:00:00Z", "将被改期", "CONFIRMED"),
        (uid(s["show"]), "2026-12-10", "2026-12-13", "金融史图片展", "CONFIRMED"),
    ]
    first = fetch(client, f"/feeds/{token}.ics")
    assert first.status_code == 200
    assert_parsers(first.data, expected)
    assert b"DTSTART;VALUE=DATE:20261210\r\n" in first.data
    assert b"DTEND;VALUE=DATE:20261213\r\n" in first.data
    assert b"DTSTART;TZID=Asia/Shanghai:20261204T220000\r\n" in first.data
    assert b"DTEND;TZID=Asia/Shanghai:20261205T020000\r\n" in first.data
    assert str(Calendar.from_ical(first.data)["X-WR-CALNAME"]) == "我的预约 · 外滩金融品巷·零距离党群服务站"

    # cancelled after being in the feed: it leaves; moved: new times, SEQUENCE up
    later = now + timedelta(hours=1)
    services.cancel(db.session, services.context(member, now=later), s["doomed"].id)
    bump(s["moved"], later + timedelta(minutes=1), start_at=shanghai(2026, 12, 8, 15), end_at=shanghai(2026, 12, 8, 16))
    second = fetch(client, f"/feeds/{token}.ics")
    assert second.status_code == 200
    expected = [row for row in expected if row[0] not in (uid(s["doomed"]), uid(s["moved"]))]
    expected.insert(4, (uid(s["moved"]), "2026-12-08T07:00:00Z", "2026-12-08T08:00:00Z", "将被改期", "CONFIRMED"))
    assert_parsers(second.data, expected)
    moved = next(e for e in Calendar.from_ical(second.data).walk("VEVENT") if str(e["UID"]) == uid(s["moved"]))
    assert int(moved["SEQUENCE"]) == 1
    assert moved["LAST-MODIFIED"].dt == (later + timedelta(minutes=1)).replace(microsecond=0)
    assert uid(s["refused"]).encode() not in second.data


def test_public_space_feed_reads_the_same_in_every_parser(
    client: FlaskClient, scene: dict[str, Any], member: User
) -> None:
    s = scene
    meeting = fetch(client, "/feeds/spaces/meeting-room.ics")
    assert meeting.status_code == 200
    assert_parsers(
        meeting.data,
        [
            (uid(s["long"]), "2026-12-01T02:00:00Z", "2026-12-01T03:00:00Z", "已预订", "CONFIRMED"),
            (uid(s["tricky"]), "2026-12-02T06:00:00Z", "2026-12-02T07:00:00Z", "已预订", "CONFIRMED"),
            (uid(s["pending"]), "2026-12-03T01:00:00Z", "2026-12-03T05:00:00Z", "已预订", "TENTATIVE"),
            (uid(s["doomed"]), "2026-12-07T02:00:00Z", "2026-12-07T03:00:00Z", "已预订", "CONFIRMED"),
            (uid(s["moved"]), "2026-12-08T02:00:00Z", "2026-12-08T03:00:00Z", "已预订", "CONFIRMED"),
        ],
    )
    assert str(Calendar.from_ical(meeting.data)["X-WR-CALNAME"]) == "共享会议室 · 外滩金融品巷·零距离党群服务站"
    assert b"COLOR:steelblue\r\n" in meeting.data
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in meeting.data
    assert b"X-PUBLISHED-TTL:PT1H\r\n" in meeting.data
    assert b"X-WR-TIMEZONE:Asia/Shanghai\r\n" in meeting.data

    # the exhibition's title is public; whole days stay dates
    exhibition = fetch(client, "/feeds/spaces/exhibition.ics")
    assert_parsers(exhibition.data, [(uid(s["show"]), "2026-12-10", "2026-12-13", "金融史图片展", "CONFIRMED")])
    assert b"BEGIN:VTIMEZONE" not in exhibition.data  # only dates: no TZID to explain

    night = fetch(client, "/feeds/spaces/night-room.ics")
    assert_parsers(
        night.data, [(uid(s["late"]), "2026-12-04T14:00:00Z", "2026-12-04T18:00:00Z", "已预订", "CONFIRMED")]
    )


def test_public_feed_leaks_no_requester_data(client: FlaskClient, scene: dict[str, Any], member: User) -> None:
    org = member.organisation
    assert org is not None
    for slug in ("meeting-room", "exhibition", "night-room"):
        for url in (f"/feeds/spaces/{slug}.ics", f"/feeds/spaces/{slug}/freebusy.ics"):
            body = fetch(client, url).data
            for secret in (member.email, member.display_name, org.name_zh, org.name_en, LONG_TITLE, "将被改期"):
                assert secret.encode() not in body, (url, secret)
            assert b"ATTENDEE" not in body
            assert b"ORGANIZER" not in body
            assert b"Budget" not in body


def test_public_feed_links_open_for_a_visitor(client: FlaskClient, scene: dict[str, Any]) -> None:
    """Each event's URL in a public feed is a page anyone may open (the space's week), never a
    booking's own page, which only its requester and staff can see."""
    body = fetch(client, "/feeds/spaces/meeting-room.ics").data
    urls = {str(ev["URL"]) for ev in Calendar.from_ical(body).walk("VEVENT")}
    assert len(urls) == 1
    (url,) = urls
    assert url.endswith("/spaces/meeting-room")
    assert client.get("/spaces/meeting-room").status_code == 200  # not logged in


def test_staff_feed_has_every_booking_with_requester_and_unit(
    client: FlaskClient, scene: dict[str, Any], member: User, staff: User, make_user: Any, book: Any, space: Any
) -> None:
    other = make_user(display_name="赵六")
    seat = book(space("reading-room"), other, shanghai(2026, 12, 1, 10), units=2, title="阅读")
    body = fetch(client, f"/feeds/{token_for(staff)}.ics").data
    check_bytes(body)
    cal = Calendar.from_ical(body)
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert uid(seat) in events
    assert uid(scene["long"]) in events
    assert uid(scene["refused"]) not in events
    description = str(events[uid(scene["long"])]["DESCRIPTION"])
    assert member.display_name in description
    assert member.organisation is not None
    assert member.organisation.name_zh in description
    assert "赵六" in str(events[uid(seat)]["DESCRIPTION"])
    assert "全部预约" in str(cal["X-WR-CALNAME"])

    # a member's feed has only their own bookings
    mine = Calendar.from_ical(fetch(client, f"/feeds/{token_for(other)}.ics").data)
    assert [str(e["UID"]) for e in mine.walk("VEVENT")] == [uid(seat)]


def test_a_renamed_member_is_renamed_in_the_staff_feed_at_once(
    client: FlaskClient, scene: dict[str, Any], member: User, staff: User, now: datetime
) -> None:
    url = f"/feeds/{token_for(staff)}.ics"
    clock.freeze(now + timedelta(minutes=1))
    first = fetch(client, url)
    assert member.display_name.encode() in first.data
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]

    clock.freeze(now + timedelta(minutes=2))
    auth_services.update_account(
        db.session,
        member,
        display_name="新名字 🌱",
        organisation_id=member.organisation_id,
        language=member.language,
    )
    clock.freeze(now + timedelta(minutes=3))
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        again = fetch(client, url, **headers)
        assert again.status_code == 200, headers
        assert "新名字 🌱".encode() in again.data
        assert again.headers["ETag"] != etag


def test_freebusy(client: FlaskClient, scene: dict[str, Any], member: User, book: Any, space: Any) -> None:
    response = fetch(client, "/feeds/spaces/meeting-room/freebusy.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    check_bytes(response.data)
    fb = Calendar.from_ical(response.data).walk("VFREEBUSY")[0]
    assert str(fb["UID"]).startswith("freebusy-space-")
    busy = re.findall(rb"FREEBUSY;FBTYPE=BUSY;VALUE=PERIOD:([^\r]+)", response.data)
    assert busy == [
        b"20261201T020000Z/20261201T030000Z",
        b"20261202T060000Z/20261202T070000Z",
        b"20261203T010000Z/20261203T050000Z",  # pending holds too
        b"20261207T020000Z/20261207T030000Z",
        b"20261208T020000Z/20261208T030000Z",
    ]  # the rejected one of 9 December holds nothing
    assert b"TZID" not in response.data

    # seats: busy only when none is left
    reading = space("reading-room", max_units_per_booking=20)
    book(reading, member, shanghai(2026, 12, 1, 10), shanghai(2026, 12, 1, 12), units=15)
    book(reading, member, shanghai(2026, 12, 1, 11), shanghai(2026, 12, 1, 13), units=5)
    body = fetch(client, "/feeds/spaces/reading-room/freebusy.ics").data
    check_bytes(body)
    busy = re.findall(rb"FREEBUSY;FBTYPE=BUSY;VALUE=PERIOD:([^\r]+)", body)
    assert busy == [b"20261201T030000Z/20261201T040000Z"]


# --- HTTP: headers, conditional GET, tokens ------------------------------------------


def test_headers_head_and_accept(client: FlaskClient, scene: dict[str, Any], member: User) -> None:
    token = token_for(member)
    for url, private in (("/feeds/spaces/meeting-room.ics", False), (f"/feeds/{token}.ics", True)):
        get = fetch(client, url, Accept="text/calendar")
        assert get.status_code == 200
        assert get.headers["Content-Type"] == "text/calendar; charset=utf-8"
        etag, weak = get.get_etag()
        assert etag
        assert not weak
        assert not get.headers["ETag"].startswith("W/")
        assert get.last_modified is not None
        head = client.head(url)
        assert head.status_code == 200
        assert head.data == b""
        assert head.headers["ETag"] == get.headers["ETag"]
        assert head.headers["Content-Type"] == "text/calendar; charset=utf-8"
        if private:
            assert "private" in get.headers["Cache-Control"]
            assert get.headers["Referrer-Policy"] == "no-referrer"
        else:
            assert "private" not in get.headers["Cache-Control"]
    assert fetch(client, "/feeds/spaces/no-such-space.ics").status_code == 404
    assert fetch(client, "/feeds/spaces/no-such-space/freebusy.ics").status_code == 404


@pytest.mark.parametrize("kind", ["space", "personal"])
def test_conditional_get_follows_every_change(
    client: FlaskClient, scene: dict[str, Any], member: User, now: datetime, kind: str
) -> None:
    url = "/feeds/spaces/meeting-room.ics" if kind == "space" else f"/feeds/{token_for(member)}.ics"
    clock.freeze(now + timedelta(minutes=1))  # polled a minute after the last change
    first = fetch(client, url)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert fetch(client, url, **{"If-None-Match": etag}).status_code == 304
    assert fetch(client, url, **{"If-Modified-Since": modified}).status_code == 304
    head = client.head(url, headers={"If-None-Match": etag})
    assert head.status_code == 304

    # an edit, five minutes later
    bump(
        scene["moved"], now + timedelta(minutes=5), start_at=shanghai(2026, 12, 8, 15), end_at=shanghai(2026, 12, 8, 16)
    )
    clock.freeze(now + timedelta(minutes=6))
    edited = fetch(client, url, **{"If-None-Match": etag})
    assert edited.status_code == 200
    assert edited.headers["ETag"] != etag
    assert parsedate_to_datetime(edited.headers["Last-Modified"]) > parsedate_to_datetime(modified)
    assert fetch(client, url, **{"If-Modified-Since": modified}).status_code == 200

    # a cancellation (the event leaves the feed, so nothing else in the body moves forward)
    etag2, modified2 = edited.headers["ETag"], edited.headers["Last-Modified"]
    services.cancel(db.session, services.context(member, now=now + timedelta(minutes=10)), scene["doomed"].id)
    cancelled = fetch(client, url, **{"If-None-Match": etag2})
    assert cancelled.status_code == 200
    assert cancelled.headers["ETag"] not in (etag, etag2)
    assert parsedate_to_datetime(cancelled.headers["Last-Modified"]) > parsedate_to_datetime(modified2)
    assert fetch(client, url, **{"If-Modified-Since": modified2}).status_code == 200
    assert uid(scene["doomed"]).encode() not in cancelled.data


def test_renders_are_byte_identical_and_the_cached_path_is_one_query(
    app: Flask,
    client: FlaskClient,
    scene: dict[str, Any],
    member: User,
    staff: User,
) -> None:
    urls = [
        "/feeds/spaces/meeting-room.ics",
        "/feeds/spaces/meeting-room/freebusy.ics",
        f"/feeds/{token_for(member)}.ics",
        f"/feeds/{token_for(staff)}.ics",
    ]
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's explicit BEGIN (booking.db) is not a query
            statements.append(statement)

    for url in urls:
        feed_cache().clear()
        first = fetch(client, url).data
        feed_cache().clear()
        rendered = fetch(client, url)
        assert rendered.data == first, url
        etag = rendered.headers["ETag"]
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            for conditional in (False, True):
                statements.clear()
                headers = {"If-None-Match": etag} if conditional else {}
                cached = fetch(client, url, **headers)
                if conditional:
                    assert cached.status_code == 304
                else:
                    assert cached.headers["ETag"] == etag
                    assert cached.data == first
                assert len(statements) == 1, (url, statements)
                queries = statements
                assert "booking" not in queries[0].lower().split("from", 1)[1].split("where")[0], queries[0]
        finally:
            event.remove(db.engine, "before_cursor_execute", count)


def test_window_is_30_days_back_to_365_ahead(
    app: Flask, client: FlaskClient, member: User, space: Any, book: Any, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    meeting = space("meeting-room", max_advance_days=500, max_future_bookings=None)
    inside = book(meeting, member, shanghai(2026, 12, 1, 10))
    far = book(meeting, member, shanghai(2027, 12, 1, 10))
    body = fetch(client, "/feeds/spaces/meeting-room.ics").data
    assert uid(inside).encode() in body
    assert uid(far).encode() not in body
    # 40 days on, the first booking is more than 30 days in the past; the window day is in the cache key
    clock.freeze(now + timedelta(days=40))
    body = fetch(client, "/feeds/spaces/meeting-room.ics").data
    assert uid(inside).encode() not in body


# the account form (not ours) still passes SelectField choices as tuples
@pytest.mark.filterwarnings("ignore:Passing SelectField choices:DeprecationWarning")
def test_rotation_kills_the_old_url(client: FlaskClient, member: User) -> None:
    login(client, member)
    page = client.get("/account").get_data(as_text=True)
    assert "Create my calendar URL" in page
    assert 'action="/account/feed-token"' in page
    assert "/feeds/spaces/meeting-room.ics" in page
    old = new_token(client)
    assert fetch(client, f"/feeds/{old}.ics").status_code == 200
    # a refresh of the page shows the same URL and replaces nothing
    for _ in range(2):
        assert f"/feeds/{old}.ics" in client.get("/account").get_data(as_text=True)
    assert fetch(client, f"/feeds/{old}.ics").status_code == 200

    new = new_token(client)  # replacing is its own, confirmed action
    html = client.get("/account").get_data(as_text=True)
    assert new != old
    assert f"webcal://{HOST_FROM_PUBLIC_URL}/feeds/{new}.ics" in html
    assert "https://calendar.google.com/calendar/r?cid=webcal%3A%2F%2F" in html
    assert 'data-copy-target="#feed-url"' in html
    assert "data-confirm=" in html
    assert "Replace my calendar URL" in html
    assert fetch(client, f"/feeds/{old}.ics").status_code == 404
    assert fetch(client, f"/feeds/{new}.ics").status_code == 200
    # neither the session nor the database holds the token itself
    with client.session_transaction() as sess:
        assert new not in repr(dict(sess))
    db.session.refresh(member)
    assert member.feed_token_hash is not None
    assert new not in member.feed_token_hash
    assert new not in repr([getattr(member, c.key) for c in User.__table__.columns])


HOST_FROM_PUBLIC_URL = "127.0.0.1:5000"


def test_rotation_needs_login(client: FlaskClient) -> None:
    response = client.post("/account/feed-token")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_unknown_token_and_deactivated_user_look_the_same(client: FlaskClient, member: User) -> None:
    token = token_for(member)
    assert fetch(client, f"/feeds/{token}.ics").status_code == 200
    unknown = fetch(client, "/feeds/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.ics")
    member.active = False
    db.session.commit()
    deactivated = fetch(client, f"/feeds/{token}.ics")
    assert unknown.status_code == deactivated.status_code == 404
    assert unknown.data == deactivated.data
    assert unknown.headers.get("Content-Type") == deactivated.headers.get("Content-Type")


def test_werkzeug_request_log_redacts_tokens(app: Flask, member: User, caplog: pytest.LogCaptureFixture) -> None:
    token = token_for(member)
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            for path in (f"/feeds/{token}.ics", f"/feeds/{token}.ics?x=1", "/feeds/spaces/cafe.ics"):
                with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as response:
                    assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    text = caplog.text
    assert token not in text
    assert "/feeds/[redacted].ics" in text
    assert "/feeds/spaces/cafe.ics" in text  # public paths stay readable


def test_gunicorn_logger_redacts_tokens() -> None:
    from gunicorn.config import Config

    logger = views.RedactingGunicornLogger(Config())

    class Req:
        method, path, query, uri, version = "GET", "/feeds/SECRETtoken123.ics", "", "/feeds/SECRETtoken123.ics", (1, 1)
        headers: tuple[tuple[str, str], ...] = ()

    class Resp:
        status, sent, headers = "200 OK", 10, []

    environ = {
        "RAW_URI": "/feeds/SECRETtoken123.ics?x=1",
        "PATH_INFO": "/feeds/SECRETtoken123.ics",
        "REQUEST_METHOD": "GET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": "https://station.test/feeds/SECRETtoken123.ics",
    }
    atoms = logger.atoms(Resp(), Req(), environ, timedelta(milliseconds=3))
    assert "SECRETtoken123" not in repr(atoms)
    assert atoms["U"] == "/feeds/[redacted].ics"
    assert atoms["r"] == "GET /feeds/[redacted].ics?x=1 HTTP/1.1"


@pytest.mark.parametrize(
    ("changed", "served", "expected"),
    [
        # served a minute later: the second boundary after the change, so a later change reads newer
        (timedelta(microseconds=1), timedelta(minutes=1), timedelta(seconds=1)),
        (timedelta(0), timedelta(minutes=1), timedelta(seconds=1)),
        # served in the change's own second: never later than the response's Date
        (timedelta(milliseconds=300), timedelta(milliseconds=800), timedelta(0)),
        # a host whose clock is behind the writer's: its own now, never the future
        (timedelta(minutes=5), timedelta(0), timedelta(0)),
    ],
    ids=["later", "whole-second", "same-second", "skew"],
)
def test_last_modified_is_never_after_date(
    now: datetime, changed: timedelta, served: timedelta, expected: timedelta
) -> None:
    window = views.Window(now.date(), now, now)
    tz = shanghai(2026, 1, 1).tzinfo
    stamp = views._last_modified(now + changed, window, tz, now + served)  # type: ignore[arg-type]
    assert stamp == now + expected
    assert stamp <= (now + served).replace(microsecond=0)
    assert format_datetime(stamp, usegmt=True).endswith("GMT")


def test_a_second_change_within_the_same_second_is_never_answered_304(
    client: FlaskClient, scene: dict[str, Any], member: User, now: datetime
) -> None:
    url = "/feeds/spaces/meeting-room.ics"
    first_change = now + timedelta(minutes=1, milliseconds=100)
    bump(scene["moved"], first_change, start_at=shanghai(2026, 12, 8, 15), end_at=shanghai(2026, 12, 8, 16))
    clock.freeze(first_change + timedelta(milliseconds=200))  # polled in the same second
    first = fetch(client, url)
    modified = first.headers["Last-Modified"]
    assert parsedate_to_datetime(modified) <= clock.now()  # not the second after it
    bump(
        scene["moved"],
        first_change + timedelta(milliseconds=500),
        start_at=shanghai(2026, 12, 8, 16),
        end_at=shanghai(2026, 12, 8, 17),
    )
    for later in (timedelta(milliseconds=700), timedelta(seconds=3)):
        clock.freeze(first_change + later)
        again = fetch(client, url, **{"If-Modified-Since": modified})
        assert again.status_code == 200, later
        assert again.data != first.data
