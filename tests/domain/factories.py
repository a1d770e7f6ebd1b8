"""Rule factories and time helpers for the domain tests: fixed dates, Shanghai time.

Plain functions (not fixtures) so that tables in `pytest.mark.parametrize` can be written
with readable strings and turned into values inside the test.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from booking.domain.capacity import Hold
from booking.domain.check import ClosureSpan, Request
from booking.domain.intervals import Interval, local_midnight
from booking.domain.rules import Approval, SpaceRules, TimeMode

TZ = ZoneInfo("Asia/Shanghai")

# The fixed week the tests live in: Monday 7 to Sunday 13 December 2026.
MON = date(2026, 12, 7)
TUE = MON + timedelta(days=1)
WED = MON + timedelta(days=2)
THU = MON + timedelta(days=3)
FRI = MON + timedelta(days=4)
SAT = MON + timedelta(days=5)
SUN = MON + timedelta(days=6)
WEEK = [MON + timedelta(days=n) for n in range(7)]

WEEKDAYS = range(5)
EVERY_DAY = range(7)


def hm(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time(0) if (hours, minutes) == (24, 0) else time(hours, minutes)


def at(day: date, hhmm: str) -> datetime:
    """A local wall-clock moment; "24:00" is midnight at the end of `day`."""
    if hhmm == "24:00":
        return local_midnight(day + timedelta(days=1), TZ)
    return datetime.combine(day, hm(hhmm), tzinfo=TZ)


def span(day: date, start: str, end: str) -> Interval:
    """Local interval on `day`; an end at or before the start runs past midnight."""
    start_at, end_at = at(day, start), at(day, end)
    if end_at <= start_at:
        end_at += timedelta(days=1)
    return Interval(start_at, end_at)


def hours(first: str, last: str) -> tuple[tuple[time, time], ...]:
    return ((hm(first), hm(last)),)


def request(day: date, start: str, end: str, *, units: int = 1, attendees: int = 1) -> Request:
    return Request(interval=span(day, start, end), units=units, attendees=attendees)


def hold(booking_id: int, day: date, start: str, end: str, units: int = 1, requester_id: int | None = None) -> Hold:
    return Hold(booking_id=booking_id, interval=span(day, start, end), units=units, requester_id=requester_id)


def closure(closure_id: int, day: date, start: str, end: str, reason: str = "维护 maintenance") -> ClosureSpan:
    return ClosureSpan(closure_id=closure_id, interval=span(day, start, end), reason=reason)


def meeting_room(**overrides: Any) -> SpaceRules:
    """Exclusive, 30-minute grid, 08:30–21:00 Monday to Friday, 30 min to 4 h, 60 days ahead."""
    values: dict[str, Any] = {
        "tz": TZ,
        "capacity": 1,
        "time_mode": TimeMode.GRID,
        "grid_minutes": 30,
        "opening_hours": {day: hours("08:30", "21:00") for day in WEEKDAYS},
        "min_duration": timedelta(minutes=30),
        "max_duration": timedelta(hours=4),
        "max_advance": timedelta(days=60),
        "people_capacity": 12,
    }
    return SpaceRules(**(values | overrides))


def reading_room(**overrides: Any) -> SpaceRules:
    """20 seats, 60-minute grid, 08:00–22:00 every day, up to 4 seats per booking."""
    values: dict[str, Any] = {
        "tz": TZ,
        "capacity": 20,
        "time_mode": TimeMode.GRID,
        "grid_minutes": 60,
        "opening_hours": {day: hours("08:00", "22:00") for day in EVERY_DAY},
        "min_duration": timedelta(hours=1),
        "max_duration": timedelta(hours=8),
        "max_units_per_booking": 4,
    }
    return SpaceRules(**(values | overrides))


CAFE_SLOTS = tuple((time(10 + m // 60, m % 60), time(10 + (m + 30) // 60, (m + 30) % 60)) for m in range(0, 7 * 60, 30))


def cafe(**overrides: Any) -> SpaceRules:
    """6 tables, fixed 30-minute slots from 10:00 to 17:00, every day."""
    values: dict[str, Any] = {
        "tz": TZ,
        "capacity": 6,
        "time_mode": TimeMode.FIXED_SLOTS,
        "grid_minutes": 30,
        "fixed_slots": CAFE_SLOTS,
        "opening_hours": {day: hours("10:00", "17:00") for day in EVERY_DAY},
        "min_duration": timedelta(minutes=30),
        "max_duration": timedelta(hours=2),
        "max_units_per_booking": 2,
    }
    return SpaceRules(**(values | overrides))


def exhibition(**overrides: Any) -> SpaceRules:
    """Whole days, 1 to 14 days, at least 7 days' notice, always reviewed by staff."""
    values: dict[str, Any] = {
        "tz": TZ,
        "capacity": 1,
        "time_mode": TimeMode.WHOLE_DAYS,
        "opening_hours": {day: hours("09:00", "18:00") for day in EVERY_DAY},
        "min_duration": timedelta(days=1),
        "max_duration": timedelta(days=14),
        "min_notice": timedelta(days=7),
        "max_advance": timedelta(days=180),
        "approval": Approval.ALWAYS,
    }
    return SpaceRules(**(values | overrides))
