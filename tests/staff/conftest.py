"""Helpers for the staff pages: log in, and dates relative to the real clock for view tests.

Views use the real clock (the queue expires stale requests, closures list what is
upcoming), so tests that go through them book days ahead of today, not of the fixed `now`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from booking.db import utcnow
from tests.conftest import PASSWORD

TZ = ZoneInfo("Asia/Shanghai")


def login(client: FlaskClient, user: Any) -> None:
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.data[:500]


def today() -> date:
    return utcnow().astimezone(TZ).date()


def weekday_ahead(days: int) -> date:
    """A Monday-to-Friday date at least `days` ahead of today (the meeting room's weekdays)."""
    day = today() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


@pytest.fixture
def real_now() -> datetime:
    return utcnow()


@pytest.fixture
def admin(make_user: Any) -> Any:
    return make_user(email="admin@example.com", display_name="管理员", role="admin")
