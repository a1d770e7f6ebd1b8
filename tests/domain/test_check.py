"""check_request: the rule that must never break, one refusal at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from booking.domain.capacity import Hold
from booking.domain.check import ClosureSpan, Request, check_request
from booking.domain.intervals import Interval, NaiveDatetimeError, whole_days
from booking.domain.refusals import (
    POLICY_REFUSALS,
    Closed,
    Conflict,
    InThePast,
    NotASlot,
    OffGrid,
    OutsideOpeningHours,
    Refusal,
    TooFarAhead,
    TooLong,
    TooManyAttendees,
    TooManyFutureBookings,
    TooManyUnits,
    TooShort,
    TooSoon,
)
from booking.domain.rules import SpaceRules

from .factories import (
    FRI,
    SAT,
    TZ,
    WED,
    at,
    cafe,
    closure,
    exhibition,
    hold,
    hours,
    meeting_room,
    reading_room,
    request,
    span,
)

NOW = at(date(2026, 12, 1), "09:00")  # the Tuesday before the test week
THU = WED + timedelta(days=1)


def check(
    rules: SpaceRules,
    req: Request,
    *,
    now: datetime = NOW,
    holds: Sequence[Hold] = (),
    closures: Sequence[ClosureSpan] = (),
    **kwargs: Any,
) -> Refusal | None:
    return check_request(rules, req, now=now, holds=holds, closures=closures, **kwargs)


# --- exclusive rooms: touching bookings coexist ---------------------------------------


@pytest.mark.parametrize(
    ("held", "wanted", "expected"),
    [
        pytest.param([(1, "09:00", "10:00")], ("10:00", "11:00"), None, id="touching-after-9-10-then-10-11"),
        pytest.param([(1, "10:00", "11:00")], ("09:00", "10:00"), None, id="touching-before-10-11-then-9-10"),
        pytest.param(
            [(1, "09:00", "10:00")], ("09:30", "10:30"), Conflict(blocking=(1,), left=0), id="overlap-one-grid-step"
        ),
        pytest.param(
            [(1, "09:00", "10:00"), (2, "10:00", "11:00")],
            ("09:30", "10:30"),
            Conflict(blocking=(1, 2), left=0),
            id="straddles-two-bookings-names-both",
        ),
        pytest.param(
            [(7, "08:30", "12:00")], ("10:00", "11:00"), Conflict(blocking=(7,), left=0), id="inside-a-longer-booking"
        ),
        pytest.param(
            [(1, "08:30", "09:00"), (2, "11:00", "12:00"), (3, "10:30", "11:00")],
            ("09:00", "11:00"),
            Conflict(blocking=(3,), left=0),
            id="names-only-the-booking-in-the-way",
        ),
    ],
)
def test_exclusive_room(held: list[tuple[int, str, str]], wanted: tuple[str, str], expected: Refusal | None) -> None:
    holds = [hold(booking_id, WED, start, end) for booking_id, start, end in held]
    refusal = check(meeting_room(), request(WED, *wanted), holds=holds)
    assert refusal == expected
    if refusal is not None:
        assert isinstance(refusal, Conflict)
        assert refusal.code == "conflict"
        assert refusal.nearest_free is None  # the service fills it in with nearest_free()


# --- many units at once: the peak decides, not the sum ------------------------------------


@pytest.mark.parametrize(
    ("held", "wanted", "units", "expected"),
    [
        pytest.param(
            [(1, "09:00", "10:00", 10), (2, "10:00", "11:00", 10)],
            ("09:00", "11:00"),
            10,
            None,
            id="09-10-and-10-11-hold-10-each-09-11-for-10-fits",
        ),
        pytest.param(
            [(1, "09:00", "10:00", 10), (2, "10:00", "11:00", 10)],
            ("09:00", "11:00"),
            11,
            Conflict(blocking=(1, 2), left=10),
            id="09-11-for-11-is-one-too-many",
        ),
        pytest.param(
            [(1, "09:00", "10:00", 8), (2, "10:00", "11:00", 6), (3, "09:30", "10:30", 4)],
            ("09:30", "10:30"),
            8,
            None,
            id="0930-1030-three-overlapping-peak-12-room-for-8",
        ),
        pytest.param(
            [(1, "09:00", "10:00", 8), (2, "10:00", "11:00", 6), (3, "09:30", "10:30", 4)],
            ("09:30", "10:30"),
            9,
            Conflict(blocking=(1, 3, 2), left=8),
            id="0930-1030-three-overlapping-9-refused",
        ),
        pytest.param([(1, "09:00", "10:00", 16)], ("09:00", "10:00"), 4, None, id="fills-to-exactly-capacity"),
        pytest.param(
            [(1, "09:00", "10:00", 16), (2, "09:00", "10:00", 1)],
            ("09:00", "10:00"),
            4,
            Conflict(blocking=(1, 2), left=3),
            id="one-unit-beyond-capacity",
        ),
        pytest.param([(1, "09:00", "10:00", 20)], ("09:00", "10:00"), 1, Conflict(blocking=(1,), left=0), id="full"),
    ],
)
def test_multi_unit_room(
    held: list[tuple[int, str, str, int]], wanted: tuple[str, str], units: int, expected: Refusal | None
) -> None:
    holds = [hold(booking_id, WED, start, end, n) for booking_id, start, end, n in held]
    rules = reading_room(grid_minutes=30, max_units_per_booking=20)
    assert check(rules, request(WED, *wanted, units=units), holds=holds) == expected


def test_pending_or_confirmed_holds_from_other_spaces_are_the_callers_business() -> None:
    # the rules see only the holds they are given: none means everything is free
    assert check(reading_room(), request(WED, "09:00", "10:00", units=4)) is None


# --- midnight and opening hours ------------------------------------------------------------

ALL_DAY = reading_room(opening_hours={d: hours("00:00", "24:00") for d in range(5)})


@pytest.mark.parametrize(
    ("rules", "req", "expected"),
    [
        pytest.param(ALL_DAY, request(WED, "23:00", "01:00"), None, id="open-24h-accepts-2300-0100-across-midnight"),
        pytest.param(ALL_DAY, request(WED, "22:00", "24:00"), None, id="open-24h-until-midnight"),
        pytest.param(ALL_DAY, request(WED, "00:00", "02:00"), None, id="open-24h-from-midnight"),
        pytest.param(
            ALL_DAY, request(FRI, "23:00", "01:00"), OutsideOpeningHours(), id="friday-night-into-closed-saturday"
        ),
        pytest.param(
            reading_room(opening_hours={2: hours("20:00", "24:00"), 3: hours("00:00", "02:00")}),
            request(WED, "23:00", "01:00"),
            None,
            id="two-days-join-at-midnight",
        ),
        pytest.param(
            reading_room(opening_hours={2: hours("20:00", "24:00"), 3: hours("01:00", "02:00")}),
            request(WED, "23:00", "02:00"),
            OutsideOpeningHours(),
            id="gap-after-midnight",
        ),
        pytest.param(meeting_room(), request(WED, "20:30", "21:00"), None, id="ends-exactly-at-closing"),
        pytest.param(
            meeting_room(), request(WED, "20:30", "21:30"), OutsideOpeningHours(), id="open-until-21-refuses-2030-2130"
        ),
        pytest.param(meeting_room(), request(WED, "08:00", "09:00"), OutsideOpeningHours(), id="before-opening"),
        pytest.param(meeting_room(), request(SAT, "10:00", "11:00"), OutsideOpeningHours(), id="closed-weekday"),
        pytest.param(
            meeting_room(opening_hours={2: (*hours("08:30", "12:00"), *hours("13:00", "21:00"))}),
            request(WED, "11:30", "13:30"),
            OutsideOpeningHours(),
            id="across-a-lunch-break",
        ),
        pytest.param(
            meeting_room(opening_hours={2: (*hours("08:30", "12:00"), *hours("12:00", "21:00"))}),
            request(WED, "11:30", "12:30"),
            None,
            id="across-touching-opening-intervals",
        ),
    ],
)
def test_opening_hours_and_midnight(rules: SpaceRules, req: Request, expected: Refusal | None) -> None:
    assert check(rules, req) == expected


@pytest.mark.parametrize(
    ("rules", "first", "last", "expected"),
    [
        pytest.param(exhibition(), date(2026, 12, 9), date(2026, 12, 9), None, id="one-day"),
        pytest.param(exhibition(), date(2026, 12, 9), date(2026, 12, 22), None, id="fourteen-days"),
        pytest.param(
            exhibition(), date(2026, 12, 9), date(2026, 12, 23), TooLong(maximum=timedelta(days=14)), id="fifteen-days"
        ),
        pytest.param(
            exhibition(opening_hours={d: hours("09:00", "18:00") for d in range(1, 7)}),
            date(2026, 12, 13),
            date(2026, 12, 15),
            OutsideOpeningHours(),
            id="spans-a-closed-monday",
        ),
    ],
)
def test_whole_days(rules: SpaceRules, first: date, last: date, expected: Refusal | None) -> None:
    assert check(rules, Request(interval=whole_days(first, last, TZ))) == expected


# --- the grid and fixed slots --------------------------------------------------------------


def _moment(day: date, hh: int, mm: int, ss: int = 0, us: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, us, tzinfo=TZ)


@pytest.mark.parametrize(
    ("rules", "interval", "expected"),
    [
        pytest.param(meeting_room(), span(WED, "09:15", "10:15"), OffGrid(grid_minutes=30), id="0915-on-30-min-grid"),
        pytest.param(meeting_room(), span(WED, "09:00", "09:45"), OffGrid(grid_minutes=30), id="end-off-grid"),
        pytest.param(
            meeting_room(),
            Interval(_moment(WED, 9, 0, 30), _moment(WED, 10, 0)),
            OffGrid(grid_minutes=30),
            id="seconds",
        ),
        pytest.param(
            meeting_room(),
            Interval(_moment(WED, 9, 0), _moment(WED, 10, 0, 0, 1)),
            OffGrid(grid_minutes=30),
            id="microseconds",
        ),
        pytest.param(reading_room(), span(WED, "09:30", "10:30"), OffGrid(grid_minutes=60), id="half-hour-on-hourly"),
        pytest.param(
            meeting_room(),
            # 01:00–02:00 UTC is 09:00–10:00 in Shanghai: on the grid where it matters
            Interval(datetime(2026, 12, 9, 1, tzinfo=UTC), datetime(2026, 12, 9, 2, tzinfo=UTC)),
            None,
            id="utc-input-on-the-local-grid",
        ),
        pytest.param(
            exhibition(),
            Interval(at(WED, "12:00"), at(WED + timedelta(days=1), "12:00")),
            OffGrid(grid_minutes=1440),
            id="whole-days-at-noon",
        ),
        pytest.param(
            exhibition(),
            Interval(at(WED, "00:00"), at(WED + timedelta(days=1), "00:30")),
            OffGrid(grid_minutes=1440),
            id="whole-days-ending-after-midnight",
        ),
        pytest.param(
            exhibition(),
            Interval(datetime(2026, 12, 9, 0, tzinfo=UTC), datetime(2026, 12, 10, 0, tzinfo=UTC)),
            OffGrid(grid_minutes=1440),
            id="whole-days-at-utc-midnight-is-0800-local",
        ),
        pytest.param(cafe(), span(WED, "10:00", "10:30"), None, id="cafe-one-slot"),
        pytest.param(cafe(), span(WED, "10:00", "11:00"), None, id="cafe-two-consecutive-slots"),
        pytest.param(cafe(), span(WED, "10:00", "10:15"), NotASlot(), id="cafe-half-a-slot"),
        pytest.param(cafe(), span(WED, "10:15", "10:45"), NotASlot(), id="cafe-straddles-two-slots"),
        pytest.param(cafe(), span(WED, "16:30", "17:30"), NotASlot(), id="cafe-runs-past-last-slot"),
        pytest.param(cafe(), span(WED, "09:30", "10:30"), NotASlot(), id="cafe-starts-before-first-slot"),
        pytest.param(
            cafe(fixed_slots=(*hours("10:00", "10:30"), *hours("11:00", "11:30"))),
            span(WED, "10:00", "11:30"),
            NotASlot(),
            id="cafe-gap-between-two-slots",
        ),
        pytest.param(
            cafe(fixed_slots=(*hours("10:00", "10:30"), *hours("11:00", "11:30"))),
            span(WED, "10:30", "11:00"),
            NotASlot(),
            id="cafe-inside-the-gap",
        ),
        pytest.param(
            cafe(fixed_slots=(*hours("11:00", "11:30"), *hours("10:30", "11:00"))),
            span(WED, "10:30", "11:30"),
            None,
            id="cafe-slots-listed-out-of-order",
        ),
    ],
)
def test_grid_and_slots(rules: SpaceRules, interval: Interval, expected: Refusal | None) -> None:
    assert check(rules, Request(interval=interval)) == expected


# --- closures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("closures", "expected_id"),
    [
        pytest.param([closure(7, WED, "08:30", "10:00")], None, id="closure-ends-exactly-at-start"),
        pytest.param([closure(7, WED, "11:00", "12:00")], None, id="closure-starts-exactly-at-end"),
        pytest.param([closure(7, WED, "08:30", "10:01")], 7, id="overlaps-by-one-minute"),
        pytest.param([closure(7, WED, "10:59", "12:00")], 7, id="overlaps-end-by-one-minute"),
        pytest.param([closure(8, WED, "00:00", "24:00")], 8, id="whole-day-station-closure"),
        pytest.param(
            [closure(9, WED, "10:30", "12:00"), closure(8, WED, "08:00", "10:30")], 8, id="two-closures-soonest-named"
        ),
    ],
)
def test_closures(closures: list[ClosureSpan], expected_id: int | None) -> None:
    refusal = check(meeting_room(), request(WED, "10:00", "11:00"), closures=closures)
    if expected_id is None:
        assert refusal is None
    else:
        named = next(c for c in closures if c.closure_id == expected_id)
        assert refusal == Closed(closure_id=expected_id, reason=named.reason, interval=named.interval)
        assert isinstance(refusal, Closed)
        assert refusal.reason == "维护 maintenance"


# --- policy limits, exactly at the boundary -------------------------------------------------

WED_0800 = at(WED, "08:00")
MON_0900 = at(date(2026, 12, 7), "09:00")
SIXTY_DAYS_LATER = MON_0900 + timedelta(days=60)  # Friday 5 February 2027, 09:00


@pytest.mark.parametrize(
    ("rules", "req", "kwargs", "expected"),
    [
        pytest.param(meeting_room(), request(WED, "10:00", "10:30"), {}, None, id="min-duration-exactly"),
        pytest.param(
            meeting_room(min_duration=timedelta(hours=1)),
            request(WED, "10:00", "10:30"),
            {},
            TooShort(minimum=timedelta(hours=1)),
            id="one-step-below-min-duration",
        ),
        pytest.param(meeting_room(), request(WED, "10:00", "14:00"), {}, None, id="max-duration-exactly"),
        pytest.param(
            meeting_room(),
            request(WED, "10:00", "14:30"),
            {},
            TooLong(maximum=timedelta(hours=4)),
            id="one-step-beyond-max-duration",
        ),
        pytest.param(
            meeting_room(min_notice=timedelta(hours=2)),
            request(WED, "10:00", "11:00"),
            {"now": WED_0800},
            None,
            id="min-notice-exactly-met",
        ),
        pytest.param(
            meeting_room(min_notice=timedelta(hours=2)),
            request(WED, "10:00", "11:00"),
            {"now": WED_0800 + timedelta(minutes=1)},
            TooSoon(earliest=at(WED, "10:01")),
            id="min-notice-one-minute-short",
        ),
        pytest.param(
            exhibition(),
            Request(interval=whole_days(WED, WED, TZ)),
            {"now": at(WED - timedelta(days=7), "00:00")},
            None,
            id="exhibition-seven-days-notice-exactly",
        ),
        pytest.param(
            exhibition(),
            Request(interval=whole_days(WED, WED, TZ)),
            {"now": at(WED - timedelta(days=7), "00:01")},
            TooSoon(earliest=at(WED, "00:01")),
            id="exhibition-notice-one-minute-short",
        ),
        pytest.param(
            meeting_room(),
            Request(interval=Interval(SIXTY_DAYS_LATER, SIXTY_DAYS_LATER + timedelta(hours=1))),
            {"now": MON_0900},
            None,
            id="max-advance-exactly-met",
        ),
        pytest.param(
            meeting_room(),
            Request(
                interval=Interval(
                    SIXTY_DAYS_LATER + timedelta(minutes=30), SIXTY_DAYS_LATER + timedelta(hours=1, minutes=30)
                )
            ),
            {"now": MON_0900},
            TooFarAhead(latest=SIXTY_DAYS_LATER),
            id="max-advance-one-step-beyond",
        ),
        pytest.param(reading_room(), request(WED, "10:00", "11:00", units=4), {}, None, id="max-units-exactly"),
        pytest.param(
            reading_room(),
            request(WED, "10:00", "11:00", units=5),
            {},
            TooManyUnits(maximum=4),
            id="max-units-plus-one",
        ),
        pytest.param(
            reading_room(),
            request(WED, "10:00", "11:00", units=21),
            {"enforce_policy": False},
            TooManyUnits(maximum=4),
            id="more-units-than-capacity-even-for-staff",
        ),
        pytest.param(
            meeting_room(), request(WED, "10:00", "11:00", attendees=12), {}, None, id="people-capacity-exactly"
        ),
        pytest.param(
            meeting_room(),
            request(WED, "10:00", "11:00", attendees=13),
            {},
            TooManyAttendees(maximum=12),
            id="people-capacity-plus-one",
        ),
        pytest.param(
            meeting_room(max_future_bookings=3),
            request(WED, "10:00", "11:00"),
            {"future_bookings": 2},
            None,
            id="future-bookings-below-max",
        ),
        pytest.param(
            meeting_room(max_future_bookings=3),
            request(WED, "10:00", "11:00"),
            {"future_bookings": 3},
            TooManyFutureBookings(maximum=3),
            id="future-bookings-at-max",
        ),
        pytest.param(
            meeting_room(),
            request(WED, "09:30", "10:30"),
            {"now": at(WED, "10:00")},
            InThePast(),
            id="started-half-an-hour-ago",
        ),
        pytest.param(
            meeting_room(),
            request(WED, "10:00", "10:30"),
            {"now": at(WED, "10:00")},
            None,
            id="starting-right-now",
        ),
        pytest.param(
            meeting_room(),
            request(WED, "10:00", "11:00"),
            {"now": at(WED, "10:00") + timedelta(seconds=1)},
            InThePast(),
            id="one-second-too-late",
        ),
    ],
)
def test_policy_limits(rules: SpaceRules, req: Request, kwargs: dict[str, Any], expected: Refusal | None) -> None:
    assert check(rules, req, **kwargs) == expected


# --- staff overrides: policy only ------------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "kwargs", "enforced", "overridden"),
    [
        pytest.param(
            request(WED, "10:00", "15:00"), {}, TooLong(maximum=timedelta(hours=4)), None, id="too-long-let-through"
        ),
        pytest.param(
            request(WED, "10:00", "11:00"),
            {"now": at(WED, "09:30"), "rules": meeting_room(min_notice=timedelta(hours=1))},
            TooSoon(earliest=at(WED, "10:30")),
            None,
            id="too-soon-let-through",
        ),
        pytest.param(
            request(WED, "10:00", "11:00"),
            {"future_bookings": 5, "rules": meeting_room(max_future_bookings=5)},
            TooManyFutureBookings(maximum=5),
            None,
            id="too-many-future-bookings-let-through",
        ),
        pytest.param(
            request(WED, "10:00", "15:00"),
            {"holds": [hold(4, WED, "14:30", "15:30")]},
            TooLong(maximum=timedelta(hours=4)),
            Conflict(blocking=(4,), left=0),
            id="conflict-still-refused",
        ),
        pytest.param(
            request(WED, "10:00", "15:00"),
            {"closures": [closure(3, WED, "12:00", "13:00", "消防检查 fire inspection")]},
            Closed(closure_id=3, reason="消防检查 fire inspection", interval=span(WED, "12:00", "13:00")),
            Closed(closure_id=3, reason="消防检查 fire inspection", interval=span(WED, "12:00", "13:00")),
            id="closed-still-refused",
        ),
        pytest.param(
            request(WED, "10:15", "15:15"), {}, OffGrid(grid_minutes=30), OffGrid(grid_minutes=30), id="off-grid"
        ),
        pytest.param(
            request(WED, "17:00", "22:00"), {}, OutsideOpeningHours(), OutsideOpeningHours(), id="outside-hours"
        ),
        pytest.param(
            request(WED, "09:00", "14:00"),
            {"now": at(WED, "10:00")},
            InThePast(),
            InThePast(),
            id="past-still-refused",
        ),
    ],
)
def test_enforce_policy_false_overrides_only_policy(
    req: Request, kwargs: dict[str, Any], enforced: Refusal | None, overridden: Refusal | None
) -> None:
    rules = kwargs.pop("rules", meeting_room())
    assert check(rules, req, **kwargs) == enforced
    assert check(rules, req, enforce_policy=False, **kwargs) == overridden


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(Conflict, id="conflict"),
        pytest.param(Closed, id="closed"),
        pytest.param(OffGrid, id="off-grid"),
        pytest.param(NotASlot, id="not-a-slot"),
        pytest.param(OutsideOpeningHours, id="outside-hours"),
        pytest.param(InThePast, id="past"),
    ],
)
def test_hard_refusals_are_not_overridable(refusal: type[Refusal]) -> None:
    assert refusal not in POLICY_REFUSALS


def test_shape_is_reported_before_capacity() -> None:
    holds = [hold(1, WED, "09:00", "12:00")]
    assert check(meeting_room(), request(WED, "09:15", "10:15"), holds=holds) == OffGrid(grid_minutes=30)


def test_closure_is_reported_before_conflict() -> None:
    holds = [hold(1, WED, "09:00", "12:00")]
    closures = [closure(2, WED, "10:00", "11:00", "节假日 holiday")]
    refusal = check(meeting_room(), request(WED, "10:00", "11:00"), holds=holds, closures=closures)
    assert isinstance(refusal, Closed)
    assert refusal.closure_id == 2


def test_refusal_codes_are_distinct() -> None:
    codes = [cls.code for cls in Refusal.__subclasses__()]
    assert len(codes) == len(set(codes))


# --- naive datetimes never reach the rules ---------------------------------------------------


def test_check_request_refuses_naive_now() -> None:
    naive_now = datetime(2026, 12, 1, 9, 0)  # noqa: DTZ001 - deliberately naive
    with pytest.raises(NaiveDatetimeError):
        check_request(meeting_room(), request(THU, "10:00", "11:00"), now=naive_now)


def test_request_interval_refuses_naive() -> None:
    with pytest.raises(NaiveDatetimeError):
        Request(interval=Interval(datetime(2026, 12, 9, 10), at(WED, "11:00")))  # noqa: DTZ001
