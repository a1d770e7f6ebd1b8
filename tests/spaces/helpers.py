"""Helpers for the member-page tests: logging in, and dates relative to the real clock.

The views use the real clock (the service's `context()` default), so tests that go through
the browser-facing forms pick days relative to today in Shanghai, never fixed dates.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient

from booking import clock
from booking.auth.models import User
from booking.bookings import services
from booking.bookings.models import Booking
from booking.extensions import db
from booking.spaces.models import Space
from tests.conftest import PASSWORD

SHANGHAI = ZoneInfo("Asia/Shanghai")


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    response = client.post("/auth/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def today() -> date:
    return clock.today(SHANGHAI)


def weekday_ahead(days: int = 2) -> date:
    """The first Monday-to-Friday day at least `days` from today (the meeting room and cafe open on weekdays)."""
    day = today() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def local(day: date, hour: int, minute: int = 0) -> str:
    """The form's spelling of a local time: 2026-12-01T09:00."""
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def book_as(user: User, space: Space, start: datetime, end: datetime, title: str) -> Booking:
    """A booking the user made themselves, through the service, at the real clock."""
    return services.request_booking(
        db.session, services.context(user), space_id=space.id, requester=user, start=start, end=end, title=title
    )
