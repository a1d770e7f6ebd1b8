"""What a week (or month) of a space looks like: one state per bookable cell."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from booking.domain.capacity import Hold, units_left
from booking.domain.check import ClosureSpan, Request, check_request
from booking.domain.intervals import Interval, local_dates
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
    # Compared as POSIX seconds: cells are local times and holds UTC, and comparing aware
    # datetimes of two zones asks the zone for its offset every time (most of the cost).
    ordered = sorted(holds, key=lambda h: h.interval.start)
    spans = [(h.interval.start.timestamp(), h.interval.end.timestamp(), h) for h in ordered]
    shut = [
        (c.interval.start.timestamp(), c.interval.end.timestamp(), c)
        for c in sorted(closures, key=lambda c: c.interval.start)
    ]
    now_ts = now.timestamp()
    capacity = rules.capacity
    whole_days = rules.time_mode is TimeMode.WHOLE_DAYS
    result: list[Day] = []
    cursor, count = 0, len(spans)
    for day in days:
        cells: list[Cell] = []
        if whole_days and not rules.is_open_day(day):
            result.append(Day(day=day, cells=()))
            continue
        for cell, cell_start, cell_end in rules.timed_slots_on(day):
            # holds are sorted by start: skip the finished ones at the front for good
            while cursor < count and spans[cursor][1] <= cell_start:
                cursor += 1
            nearby = []
            index = cursor
            while index < count and spans[index][0] < cell_end:
                if spans[index][1] > cell_start:
                    nearby.append(spans[index][2])
                index += 1
            # most cells hold nothing or one booking: no sweep needed for those
            if not nearby:
                left = capacity
            elif len(nearby) == 1:
                left = max(capacity - nearby[0].units, 0)
            else:
                left = units_left(capacity, nearby, cell)
            own = viewer_id is not None and any(h.requester_id == viewer_id for h in nearby)
            closure = next((c for a, b, c in shut if a < cell_end and cell_start < b), None)
            if closure is not None:
                state, reason = CellState.CLOSED, closure.reason
            elif cell_end <= now_ts:
                state, reason = CellState.PAST, None
            elif left == 0:
                state, reason = CellState.FULL, None
            elif left < capacity:
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
