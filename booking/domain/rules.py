"""What a space allows: its time grid, opening hours and policy limits."""

from __future__ import annotations

import enum
import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from booking.domain.intervals import Interval, local_at, local_midnight, merge

# No booking may be longer than this. Overlap queries rely on it as a lower bound
# (start_at >= window_start - MAX_SPAN), so they never scan a space's whole history.
MAX_SPAN = timedelta(days=15)

TimeRange = tuple[time, time]  # end time(0) means midnight at the end of the day


class TimeMode(enum.StrEnum):
    GRID = "grid"  # starts and ends on a grid of N minutes
    WHOLE_DAYS = "whole_days"  # local date ranges
    FIXED_SLOTS = "fixed_slots"  # exactly one or more consecutive listed slots


class Approval(enum.StrEnum):
    NEVER = "never"
    ALWAYS = "always"
    OVER_DURATION = "over_duration"


def _range_on(day: date, span: TimeRange, tz: ZoneInfo) -> Interval:
    start, end = span
    end_at = local_midnight(day + timedelta(days=1), tz) if end == time(0) else local_at(day, end, tz)
    return Interval(local_at(day, start, tz), end_at)


def parse_hhmm(text: str) -> time:
    """'09:00' → time(9); '24:00' → time(0), our spelling of end-of-day."""
    hours, minutes = (int(part) for part in text.split(":"))
    if hours == 24 and minutes == 0:
        return time(0)
    return time(hours, minutes)


def format_hhmm(value: time, *, end: bool = False) -> str:
    if end and value == time(0):
        return "24:00"
    return value.strftime("%H:%M")


def divides_day(minutes: int) -> bool:
    """Whether a grid of this many minutes fits a day exactly (5, 10, 15, 20, 30, 60, …)."""
    return minutes > 0 and 1440 % minutes == 0


def validate_ranges(ranges: tuple[TimeRange, ...]) -> None:
    """Ranges of one day must each end after they start and must not overlap."""
    as_minutes = sorted((s.hour * 60 + s.minute, 1440 if e == time(0) else e.hour * 60 + e.minute) for s, e in ranges)
    for start, end in as_minutes:
        if end <= start:
            raise ValueError("an opening interval must end after it starts")
    for (_, first_end), (second_start, _) in itertools.pairwise(as_minutes):
        if second_start < first_end:
            raise ValueError("opening intervals overlap")


@dataclass(frozen=True)
class SpaceRules:
    """Everything the rules need to know about a space, in the location's time zone."""

    tz: ZoneInfo
    capacity: int = 1
    time_mode: TimeMode = TimeMode.GRID
    grid_minutes: int = 30
    fixed_slots: tuple[TimeRange, ...] = ()
    # weekday (Monday = 0) → opening intervals; a missing weekday is closed all day
    opening_hours: Mapping[int, tuple[TimeRange, ...]] = field(default_factory=dict)
    min_duration: timedelta = timedelta(minutes=30)
    max_duration: timedelta = timedelta(hours=4)
    min_notice: timedelta = timedelta(0)
    max_advance: timedelta = timedelta(days=60)
    max_units_per_booking: int = 1
    max_future_bookings: int | None = None
    people_capacity: int | None = None
    approval: Approval = Approval.NEVER
    approval_over: timedelta | None = None

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("capacity must be at least 1")
        if self.max_duration > MAX_SPAN:
            raise ValueError(f"no booking may be longer than {MAX_SPAN.days} days")
        if self.min_duration > self.max_duration:
            raise ValueError("the minimum duration exceeds the maximum")
        if self.time_mode is TimeMode.GRID and not divides_day(self.grid_minutes):
            raise ValueError("the grid must divide the day")
        for ranges in self.opening_hours.values():
            validate_ranges(ranges)
        validate_ranges(self.fixed_slots)

    @property
    def exclusive(self) -> bool:
        return self.capacity == 1

    @property
    def step(self) -> timedelta:
        """The distance between two neighbouring start times a person can pick."""
        if self.time_mode is TimeMode.WHOLE_DAYS:
            return timedelta(days=1)
        if self.time_mode is TimeMode.FIXED_SLOTS:
            return timedelta(minutes=self.grid_minutes)
        return timedelta(minutes=self.grid_minutes)

    def is_open_day(self, day: date) -> bool:
        return bool(self.opening_hours.get(day.weekday()))

    def opening_on(self, day: date) -> list[Interval]:
        return [_range_on(day, span, self.tz) for span in self.opening_hours.get(day.weekday(), ())]

    def slots_on(self, day: date) -> list[Interval]:
        """Bookable cells of a day: fixed slots, grid cells, or the whole day, inside opening hours."""
        return [cell for cell, _, _ in self.timed_slots_on(day)]

    def timed_slots_on(self, day: date) -> tuple[tuple[Interval, float, float], ...]:
        """The day's cells with their start and end in POSIX seconds, worked out once per shape.

        A week page asks for seven days of cells on every request; they depend only on the
        day and on these few rules, and Intervals are immutable, so they are shared.
        """
        opening = self.opening_hours.get(day.weekday(), ())
        return _day_cells(self.tz, self.time_mode, self.grid_minutes, self.fixed_slots, tuple(opening), day)

    def needs_approval(self, duration: timedelta) -> bool:
        if self.approval is Approval.ALWAYS:
            return True
        if self.approval is Approval.OVER_DURATION and self.approval_over is not None:
            return duration > self.approval_over
        return False


@functools.lru_cache(maxsize=8192)
def _day_cells(
    tz: ZoneInfo,
    mode: TimeMode,
    grid_minutes: int,
    fixed_slots: tuple[TimeRange, ...],
    opening_hours: tuple[TimeRange, ...],
    day: date,
) -> tuple[tuple[Interval, float, float], ...]:
    cells: list[Interval] = []
    if mode is TimeMode.WHOLE_DAYS:
        cells.append(Interval(local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)))
    else:
        opening = [_range_on(day, span, tz) for span in opening_hours]
        if mode is TimeMode.FIXED_SLOTS:
            # in time order, whatever order staff listed them in: availability sweeps cells in order
            slots = sorted(_range_on(day, span, tz) for span in fixed_slots)
            cells.extend(slot for slot in slots if any(o.contains(slot) for o in opening))
        else:
            step = timedelta(minutes=grid_minutes)
            for window in merge(opening):
                # the first grid line at or after opening: 08:30 on an hourly grid offers 09:00
                local = window.start.astimezone(tz)
                start = window.start + timedelta(minutes=-(local.hour * 60 + local.minute) % grid_minutes)
                while start + step <= window.end:
                    cells.append(Interval(start, start + step))
                    start += step
    return tuple((cell, cell.start.timestamp(), cell.end.timestamp()) for cell in cells)
