"""The rule that must never break, as one function: may this request be held?"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from booking.domain.capacity import Hold, blocking_holds, units_left
from booking.domain.intervals import Interval, local_dates, merge, require_aware
from booking.domain.refusals import (
    Closed,
    Conflict,
    InThePast,
    NotASlot,
    NotPositive,
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
from booking.domain.rules import SpaceRules, TimeMode


@dataclass(frozen=True)
class ClosureSpan:
    closure_id: int
    interval: Interval
    reason: str


@dataclass(frozen=True)
class Request:
    interval: Interval
    units: int = 1
    attendees: int = 1


def _on_grid(rules: SpaceRules, interval: Interval) -> bool:
    tz = rules.tz
    for moment in (interval.start, interval.end):
        local = moment.astimezone(tz)
        if local.second or local.microsecond:
            return False
        if rules.time_mode is TimeMode.WHOLE_DAYS:
            if local.hour or local.minute:
                return False
        elif (local.hour * 60 + local.minute) % rules.grid_minutes:
            return False
    return True


def _is_slot_run(rules: SpaceRules, interval: Interval) -> bool:
    """Fixed-slot spaces book one slot or several back-to-back slots, never part of one."""
    slots = sorted(s for day in local_dates(interval, rules.tz) for s in rules.slots_on(day))
    covering = [s for s in slots if s.overlaps(interval)]
    if not covering or covering[0].start != interval.start or covering[-1].end != interval.end:
        return False
    return all(a.end == b.start for a, b in itertools.pairwise(covering))


def within_opening_hours(rules: SpaceRules, interval: Interval) -> bool:
    if rules.time_mode is TimeMode.WHOLE_DAYS:
        return all(rules.is_open_day(day) for day in local_dates(interval, rules.tz))
    # take the day before too: an interval open until 24:00 joins the next day's from 00:00
    days = list(local_dates(interval, rules.tz))
    days.insert(0, days[0] - timedelta(days=1))
    opening = merge(o for day in days for o in rules.opening_on(day))
    return any(window.contains(interval) for window in opening)


def shape_refusal(rules: SpaceRules, interval: Interval) -> Refusal | None:
    """Grid, slots and opening hours: what no one, not even staff, may override."""
    if rules.time_mode is TimeMode.FIXED_SLOTS:
        if not _is_slot_run(rules, interval):
            return NotASlot()
    elif not _on_grid(rules, interval):
        return OffGrid(grid_minutes=1440 if rules.time_mode is TimeMode.WHOLE_DAYS else rules.grid_minutes)
    if not within_opening_hours(rules, interval):
        return OutsideOpeningHours()
    return None


def closure_refusal(interval: Interval, closures: Sequence[ClosureSpan]) -> Closed | None:
    for closure in sorted(closures, key=lambda c: c.interval.start):
        if closure.interval.overlaps(interval):
            return Closed(closure_id=closure.closure_id, reason=closure.reason, interval=closure.interval)
    return None


def policy_refusal(
    rules: SpaceRules,
    request: Request,
    *,
    now: datetime,
    future_bookings: int = 0,
) -> Refusal | None:
    """Limits of the space's policy; staff may override these with a recorded reason."""
    interval = request.interval
    if interval.duration < rules.min_duration:
        return TooShort(minimum=rules.min_duration)
    if interval.duration > rules.max_duration:
        return TooLong(maximum=rules.max_duration)
    if interval.start < now + rules.min_notice:
        return TooSoon(earliest=now + rules.min_notice)
    if interval.start > now + rules.max_advance:
        return TooFarAhead(latest=now + rules.max_advance)
    if request.units > rules.max_units_per_booking:
        return TooManyUnits(maximum=rules.max_units_per_booking)
    if rules.max_future_bookings is not None and future_bookings >= rules.max_future_bookings:
        return TooManyFutureBookings(maximum=rules.max_future_bookings)
    return None


def capacity_refusal(rules: SpaceRules, request: Request, holds: Sequence[Hold]) -> Conflict | None:
    left = units_left(rules.capacity, holds, request.interval)
    if request.units <= left:
        return None
    blocking = tuple(h.booking_id for h in blocking_holds(holds, request.interval))
    return Conflict(blocking=blocking, left=left)


def check_request(
    rules: SpaceRules,
    request: Request,
    *,
    now: datetime,
    holds: Sequence[Hold] = (),
    closures: Sequence[ClosureSpan] = (),
    future_bookings: int = 0,
    enforce_policy: bool = True,
) -> Refusal | None:
    """The first reason this request cannot be held, or None when it can.

    Order matters for the message a person reads: a shape problem first (they typed
    something impossible), then the past, closures, policy, and capacity last, since
    only capacity comes with "here is the nearest free time".
    """
    require_aware(now)
    interval = request.interval
    if request.units < 1 or request.attendees < 1:
        return NotPositive()
    if request.units > rules.capacity:
        return TooManyUnits(maximum=min(rules.capacity, rules.max_units_per_booking))
    if rules.people_capacity is not None and request.attendees > rules.people_capacity:
        return TooManyAttendees(maximum=rules.people_capacity)
    if refusal := shape_refusal(rules, interval):
        return refusal
    if interval.start < now:
        return InThePast()
    if refusal := closure_refusal(interval, closures):
        return refusal
    if enforce_policy and (refusal := policy_refusal(rules, request, now=now, future_bookings=future_bookings)):
        return refusal
    return capacity_refusal(rules, request, holds)
