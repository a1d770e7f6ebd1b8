"""What a week (or month) of a space looks like: one state per bookable cell."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from booking.domain.capacity import Hold, units_left
from booking.domain.check import ClosureSpan, Request, check_request, closure_refusal
from booking.domain.intervals import Interval, local_dates
from booking.domain.refusals import Closed
from booking.domain.rules import SpaceRules, TimeMode


class CellState(enum.StrEnum):
    FREE = "free"
    PARTLY = "partly"  # some units left on a multi-unit space
    FULL = "full"
    CLOSED = "closed"  # a closure covers it (reason given)
    PAST = "past"


@dataclass(frozen=True)
class Cell:
    interval: Interval
    state: CellState
    left: int
    own: bool = False  # the viewer holds units here
    reason: str | None = None  # a closure's reason


@dataclass(frozen=True)
class Day:
    day: date
    cells: tuple[Cell, ...]

    @property
    def open(self) -> bool:
        return bool(self.cells)


def availability(
    rules: SpaceRules,
    days: Sequence[date],
    *,
    now: datetime,
    holds: Sequence[Hold] = (),
    closures: Sequence[ClosureSpan] = (),
    viewer_id: int | None = None,
) -> list[Day]:
    """The state of every bookable cell on the given local days.

    `holds` must cover the days (one query for the window, not one per cell); the
    sweep inside each cell only looks at the holds that overlap it.
    """
    ordered = sorted(holds, key=lambda h: h.interval.start)
    result: list[Day] = []
    cursor = 0
    for day in days:
        cells: list[Cell] = []
        for cell in rules.slots_on(day):
            if rules.time_mode is TimeMode.WHOLE_DAYS and not rules.is_open_day(day):
                continue
            # holds are sorted by start: skip the finished ones at the front for good
            while cursor < len(ordered) and ordered[cursor].interval.end <= cell.start:
                cursor += 1
            nearby = []
            for hold in ordered[cursor:]:
                if hold.interval.start >= cell.end:
                    break
                if hold.interval.end > cell.start:
                    nearby.append(hold)
            # most cells hold nothing or one booking: no sweep needed for those
            if not nearby:
                left = rules.capacity
            elif len(nearby) == 1:
                left = max(rules.capacity - nearby[0].units, 0)
            else:
                left = units_left(rules.capacity, nearby, cell)
            own = viewer_id is not None and any(h.requester_id == viewer_id for h in nearby)
            closed = closure_refusal(cell, closures)
            if isinstance(closed, Closed):
                state, reason = CellState.CLOSED, closed.reason
            elif cell.end <= now:
                state, reason = CellState.PAST, None
            elif left == 0:
                state, reason = CellState.FULL, None
            elif left < rules.capacity:
                state, reason = CellState.PARTLY, None
            else:
                state, reason = CellState.FREE, None
            cells.append(Cell(interval=cell, state=state, left=left, own=own, reason=reason))
        result.append(Day(day=day, cells=tuple(cells)))
    return result


def nearest_free(
    rules: SpaceRules,
    request: Request,
    *,
    now: datetime,
    holds: Sequence[Hold],
    closures: Sequence[ClosureSpan] = (),
    search: timedelta = timedelta(days=7),
) -> Interval | None:
    """The closest start (before or after) where the same duration and units could be held.

    Used only after a refusal, so it may try every step of the grid within `search`.
    Policy limits (notice, advance) apply too: a suggestion must be bookable as it is.
    """
    step = rules.step
    duration = request.interval.duration
    if rules.time_mode is TimeMode.FIXED_SLOTS:
        candidates = _slot_starts(rules, request.interval, search)
    else:
        count = int(search / step)
        candidates = [request.interval.start + step * k for k in range(-count, count + 1) if k]
    origin = request.interval.start
    for start in sorted(candidates, key=lambda s: (abs(s - origin), s < origin)):
        interval = Interval(start, start + duration)
        candidate = Request(interval=interval, units=request.units, attendees=request.attendees)
        if check_request(rules, candidate, now=now, holds=holds, closures=closures) is None:
            return interval
    return None


def _slot_starts(rules: SpaceRules, around: Interval, search: timedelta) -> list[datetime]:
    window = Interval(around.start - search, around.end + search)
    return [
        slot.start
        for day in local_dates(window, rules.tz)
        for slot in rules.slots_on(day)
        if slot.start != around.start
    ]
