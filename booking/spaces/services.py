"""Read-side queries for the member pages: what a space looks like this week, what is free today.

Query counts do not depend on the data: one query for the holds of the window, one for
its closures (all spaces at once on the home page). The rules themselves live in
booking.domain; this module only loads rows and shapes them for templates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from booking.bookings.models import HOLDING, Booking
from booking.bookings.services import closures_in, holds_in
from booking.domain.availability import Cell, CellState, Day, availability
from booking.domain.capacity import Hold
from booking.domain.check import ClosureSpan
from booking.domain.intervals import Interval, local_midnight
from booking.domain.rules import MAX_SPAN, SpaceRules, TimeMode
from booking.spaces.models import Closure, Location, Space

BOOKABLE = (CellState.FREE, CellState.PARTLY)
# How far the home page looks for "the next free time": enough for the exhibition's week of notice.
LOOKAHEAD_DAYS = 21


def week_of(day: date) -> list[date]:
    monday = day - timedelta(days=day.weekday())
    return [monday + timedelta(days=n) for n in range(7)]


def month_of(day: date) -> list[date]:
    """The calendar month around `day`, padded to whole weeks Monday to Sunday."""
    first = day.replace(day=1)
    next_month = (first + timedelta(days=32)).replace(day=1)
    start = first - timedelta(days=first.weekday())
    end = next_month + timedelta(days=(7 - next_month.weekday()) % 7)
    return [start + timedelta(days=n) for n in range((end - start).days)]


def shift_month(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def bookable_from(cell: Cell, rules: SpaceRules, now: datetime) -> bool:
    """Free or partly free, and far enough ahead for the space's notice and advance rules."""
    return (
        cell.state in BOOKABLE
        and cell.interval.start >= now + rules.min_notice
        and cell.interval.start <= now + rules.max_advance
    )


@dataclass(frozen=True)
class SlotRow:
    """One row of the desktop grid: a local start time, and the cell of each day at that time."""

    label: str
    cells: tuple[Cell | None, ...]


@dataclass
class WeekView:
    space: Space
    rules: SpaceRules
    days: list[Day]
    anchor: date
    today: date
    closures: list[ClosureSpan]
    now: datetime
    window: Interval
    own_bookings: dict[Interval, int] = field(default_factory=dict)  # cell → the viewer's booking id
    rows: list[SlotRow] = field(default_factory=list)

    @property
    def month(self) -> bool:
        return self.rules.time_mode is TimeMode.WHOLE_DAYS

    @property
    def previous(self) -> date:
        return shift_month(self.anchor, -1) if self.month else self.anchor - timedelta(days=7)

    @property
    def next(self) -> date:
        return shift_month(self.anchor, 1) if self.month else self.anchor + timedelta(days=7)

    def is_bookable(self, cell: Cell) -> bool:
        return bookable_from(cell, self.rules, self.now)

    def started(self, cell: Cell) -> bool:
        """Under way: free units remain, but a booking can no longer start at this cell."""
        return cell.state in BOOKABLE and cell.interval.start <= self.now

    def too_soon(self, cell: Cell) -> bool:
        return cell.state in BOOKABLE and self.now < cell.interval.start < self.now + self.rules.min_notice

    def own_booking(self, cell: Cell) -> int | None:
        return self.own_bookings.get(cell.interval)

    def in_month(self, day: date) -> bool:
        return day.month == self.anchor.month

    def first_day_to_show(self) -> date:
        """For the phone's day-at-a-time view: today when it is in the week, else the first open day."""
        for day in self.days:
            if day.day == self.today:
                return day.day
        return next((d.day for d in self.days if d.open), self.days[0].day)


def space_week(session: Session, space: Space, anchor: date, *, now: datetime, viewer_id: int | None) -> WeekView:
    rules = space.rules()
    tz = rules.tz
    days = month_of(anchor) if rules.time_mode is TimeMode.WHOLE_DAYS else week_of(anchor)
    window = Interval(local_midnight(days[0], tz), local_midnight(days[-1] + timedelta(days=1), tz))
    holds = holds_in(session, space.id, window)
    closures = closures_in(session, space, window)
    grid = availability(rules, days, now=now, holds=holds, closures=closures, viewer_id=viewer_id)
    view = WeekView(
        space=space,
        rules=rules,
        days=grid,
        anchor=anchor,
        today=now.astimezone(tz).date(),
        closures=sorted(closures, key=lambda c: c.interval.start),
        now=now,
        window=window,
    )
    if viewer_id is not None:
        view.own_bookings = _own_bookings(grid, holds, viewer_id)
    if rules.time_mode is not TimeMode.WHOLE_DAYS:
        view.rows = _rows(grid, rules)
    return view


def _own_bookings(grid: list[Day], holds: Sequence[Hold], viewer_id: int) -> dict[Interval, int]:
    mine = [h for h in holds if h.requester_id == viewer_id]
    found: dict[Interval, int] = {}
    for day in grid:
        for cell in day.cells:
            if cell.own:
                hold = next((h for h in mine if h.interval.overlaps(cell.interval)), None)
                if hold is not None:
                    found[cell.interval] = hold.booking_id
    return found


def _rows(grid: list[Day], rules: SpaceRules) -> list[SlotRow]:
    """Rows by local start time over the whole week, so days with other hours still line up."""
    by_day: list[dict[time, Cell]] = [
        {cell.interval.start.astimezone(rules.tz).time(): cell for cell in day.cells} for day in grid
    ]
    starts = sorted({start for cells in by_day for start in cells})
    return [
        SlotRow(label=start.strftime("%H:%M"), cells=tuple(cells.get(start) for cells in by_day)) for start in starts
    ]


# -- the home page ---------------------------------------------------------------------


@dataclass(frozen=True)
class SpaceSummary:
    space: Space
    open_today: bool
    free_today: int  # bookable cells left today
    left_now: int | None  # units free right now, for seat/table spaces that are open now
    next_free: Interval | None
    closed_reason: str | None = None


def home_summaries(
    session: Session, location: Location, spaces: Sequence[Space], *, now: datetime
) -> list[SpaceSummary]:
    """Every space's day at a glance: one query for the holds of all spaces, one for closures."""
    tz = location.tz
    today = now.astimezone(tz).date()
    days = [today + timedelta(days=n) for n in range(LOOKAHEAD_DAYS)]
    window = Interval(local_midnight(today, tz), local_midnight(days[-1] + timedelta(days=1), tz))
    bookable = [s for s in spaces if s.bookable]
    holds: dict[int, list[Hold]] = defaultdict(list)
    if bookable:
        rows = session.execute(
            select(Booking.id, Booking.space_id, Booking.start_at, Booking.end_at, Booking.units).where(
                Booking.space_id.in_([s.id for s in bookable]),
                Booking.status.in_(HOLDING),
                Booking.start_at >= window.start - MAX_SPAN,
                Booking.start_at < window.end,
                Booking.end_at > window.start,
            )
        )
        for row in rows:
            holds[row.space_id].append(Hold(row.id, Interval(row.start_at, row.end_at), row.units))
    closures: list[tuple[int | None, ClosureSpan]] = [
        (c.space_id, ClosureSpan(c.id, Interval(c.start_at, c.end_at), c.reason))
        for c in session.scalars(
            select(Closure).where(
                Closure.location_id == location.id,
                or_(Closure.space_id.is_(None), Closure.space_id.in_([s.id for s in bookable] or [0])),
                Closure.start_at < window.end,
                Closure.end_at > window.start,
            )
        )
    ]
    summaries = []
    for space in spaces:
        if not space.bookable:
            summaries.append(SpaceSummary(space, True, 0, None, None))
            continue
        rules = space.rules()
        mine = [span for space_id, span in closures if space_id in (None, space.id)]
        grid = availability(rules, days, now=now, holds=holds[space.id], closures=mine)
        today_cells = grid[0].cells
        free_today = sum(1 for cell in today_cells if bookable_from(cell, rules, now))
        current = next((c for c in today_cells if c.interval.start <= now < c.interval.end), None)
        left_now = None
        if current is not None and not rules.exclusive and current.state is not CellState.CLOSED:
            left_now = current.left
        closed_reason = next(
            (c.reason for c in today_cells if c.state is CellState.CLOSED and c.interval.end > now), None
        )
        next_free = next(
            (cell.interval for day in grid for cell in day.cells if bookable_from(cell, rules, now)),
            None,
        )
        summaries.append(
            SpaceSummary(
                space=space,
                open_today=bool(today_cells),
                free_today=free_today,
                left_now=left_now,
                next_free=next_free,
                closed_reason=closed_reason,
            )
        )
    return summaries
