"""A recurring booking in the feeds: every parser sees each occurrence once, at its own time.

Each occurrence is its own Booking with its own UID; moving one keeps its UID and raises
its SEQUENCE; cancelling the following ones removes them from the feed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from icalendar import Calendar

from booking.auth.models import User
from booking.bookings import series, services
from booking.domain.recurrence import Frequency, Recurrence
from booking.extensions import db
from tests.conftest import shanghai
from tests.feeds.test_views import assert_parsers, fetch, fixed_clock, token_for, uid  # noqa: F401 - fixture

TUESDAY = 1


def test_series_occurrences_in_every_parser(client: FlaskClient, member: User, space: Any, now: datetime) -> None:
    room = space("meeting-room", max_future_bookings=None)
    ctx = services.context(member, now=now)
    fields = {
        "space_id": room.id,
        "requester": member,
        "first_start": shanghai(2026, 12, 1, 10),
        "first_end": shanghai(2026, 12, 1, 11),
        "rule": Recurrence(Frequency.WEEKLY, weekdays=(TUESDAY,), count=4),
    }
    seen = series.preview(db.session, ctx, **fields)
    made = series.request_series(db.session, ctx, title="每周例会", expected_fingerprint=seen.fingerprint, **fields)
    first, second, third, fourth = series.occurrences_of(db.session, made.id)
    token = token_for(member)

    feed = fetch(client, f"/feeds/{token}.ics")
    assert feed.status_code == 200
    weekly = [
        (uid(first), "2026-12-01T02:00:00Z", "2026-12-01T03:00:00Z", "每周例会", "CONFIRMED"),
        (uid(second), "2026-12-08T02:00:00Z", "2026-12-08T03:00:00Z", "每周例会", "CONFIRMED"),
        (uid(third), "2026-12-15T02:00:00Z", "2026-12-15T03:00:00Z", "每周例会", "CONFIRMED"),
        (uid(fourth), "2026-12-22T02:00:00Z", "2026-12-22T03:00:00Z", "每周例会", "CONFIRMED"),
    ]
    assert_parsers(feed.data, weekly)
    assert b"RRULE" not in feed.data  # occurrences, not a rule: no client has to expand anything

    # the second moves to the afternoon (detached, same UID, SEQUENCE up); the fourth is cancelled
    later = now + timedelta(hours=1)
    series.move_occurrence(
        db.session, services.context(member, now=later), second.id, shanghai(2026, 12, 8, 14), shanghai(2026, 12, 8, 15)
    )
    series.cancel_occurrences(db.session, services.context(member, now=later), fourth.id, "following")
    feed = fetch(client, f"/feeds/{token}.ics")
    assert_parsers(
        feed.data,
        [
            weekly[0],
            (uid(second), "2026-12-08T06:00:00Z", "2026-12-08T07:00:00Z", "每周例会", "CONFIRMED"),
            weekly[2],
        ],
    )
    events = {str(e["UID"]): e for e in Calendar.from_ical(feed.data).walk("VEVENT")}
    assert int(events[uid(second)]["SEQUENCE"]) == 1
    assert int(events[uid(first)]["SEQUENCE"]) == 0

    public = fetch(client, "/feeds/spaces/meeting-room.ics")
    assert_parsers(
        public.data,
        [
            (uid(first), "2026-12-01T02:00:00Z", "2026-12-01T03:00:00Z", "已预订", "CONFIRMED"),
            (uid(second), "2026-12-08T06:00:00Z", "2026-12-08T07:00:00Z", "已预订", "CONFIRMED"),
            (uid(third), "2026-12-15T02:00:00Z", "2026-12-15T03:00:00Z", "已预订", "CONFIRMED"),
        ],
    )
