"""Read-side queries for the member pages: what a space looks like this week, what is free today.

Query counts do not depend on the data: one query for the holds of the window, one for
its closures (all spaces at once on the home page). The rules themselves live in
booking.domain; this module only loads rows and shapes them for templates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from urllib.parse import urlencode

from flask import url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from booking.bookings.models import HOLDING, Booking
from booking.bookings.services import closures_in, holds_in
from booking.domain.availability import Cell, CellState, Day, availability
from booking.domain.capacity import Hold
from booking.domain.check import ClosureSpan
from booking.domain.intervals import Interval, local_midnight
from booking.domain.rules import MAX_SPAN, SpaceRules, TimeMode
from booking.i18n import format_clock, format_span
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


@dataclass(frozen=True)
class CellDisplay:
    """Everything the page prints for one cell, worked out once in Python (the grid and the phone
    list both show it; a Jinja macro per cell and per view cost ~95% of the page's time)."""

    css: str  # class="…" of the <td>/<li>
    body: Markup  # the cell's markup (escaped here), without the time label
    labelled: Markup  # the same with the phone list's "09:00–10:00" label in front
    past: bool


@dataclass(frozen=True)
class DisplayRow:
    label: str
    cells: tuple[CellDisplay | None, ...]


@dataclass(frozen=True)
class DisplayDay:
    day: Day
    cells: tuple[CellDisplay, ...]
    passed: int  # cells already over (the phone list says how many instead of listing them)


@dataclass
class WeekView:
    """The window's rows, loaded on first use: a page whose grid is cached reads no holds at all."""

    space: Space
    rules: SpaceRules
    dates: list[date]
    anchor: date
    today: date
    closures: list[ClosureSpan]
    now: datetime
    window: Interval
    session: Session
    viewer_id: int | None

    @cached_property
    def holds(self) -> Sequence[Hold]:
        return holds_in(self.session, self.space.id, self.window)

    @cached_property
    def days(self) -> list[Day]:
        return availability(
            self.rules, self.dates, now=self.now, holds=self.holds, closures=self.closures, viewer_id=self.viewer_id
        )

    @cached_property
    def own_bookings(self) -> dict[Interval, int]:  # cell → the viewer's booking id
        return {} if self.viewer_id is None else _own_bookings(self.days, self.holds, self.viewer_id)

    @cached_property
    def rows(self) -> list[SlotRow]:
        return [] if self.month else _rows(self.days, self.rules)

    def grid_key(self, locale: str) -> str:
        """What the grid's markup depends on, as the database says now.

        `Space.version` is the space's watermark: every writer moves it in the same
        transaction as the change (bookings in `services`, closures in `services.close`,
        rules in `staff.services.update_space_rules`), so an entry made by any worker is
        only found again while the space's data is unchanged. Time is `grid_valid_until`'s.
        """
        space = self.space
        changed = str(space.version)
        return "|".join(
            str(part) for part in ("week", space.id, changed, self.anchor.isoformat(), locale, self.viewer_id)
        )

    def grid_valid_until(self) -> datetime:
        """The first instant at or after `now` at which some cell may show differently.

        A cell's state only flips when the clock reaches its start less the maximum advance,
        its start less the minimum notice, its start (under way), or its end (past); the page
        also marks today. Between `now` and that instant the grid reads the same.
        """
        rules = self.rules
        edges = [local_midnight(self.today + timedelta(days=1), rules.tz)]
        for day in self.days:
            for cell in day.cells:
                start = cell.interval.start
                edges += (start - rules.max_advance, start - rules.min_notice, start, cell.interval.end)
        return min(edge for edge in edges if edge >= self.now)

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

    def state_key(self, cell: Cell) -> str:
        """Which state word a cell shows: the first that applies, yours before closed before past…"""
        if self.own_booking(cell):
            return "yours"
        if cell.state in (CellState.CLOSED, CellState.PAST, CellState.FULL):
            return cell.state.value
        if self.started(cell):
            return "started"
        if self.too_soon(cell):
            return "too_soon"
        if not self.is_bookable(cell):
            return "not_yet"
        return "free" if self.space.exclusive else "left"

    def in_month(self, day: date) -> bool:
        return day.month == self.anchor.month

    def first_day_to_show(self) -> date:
        """For the phone's day-at-a-time view: today when it is in the week, else the first open day."""
        for day in self.days:
            if day.day == self.today:
                return day.day
        return next((d.day for d in self.days if d.open), self.days[0].day)


# -- what the week page prints: plain strings, so the template only loops ---------------------


def _state_words() -> dict[str, str]:
    """The state words in the reader's language, looked up once per page (not once per cell)."""
    return {
        "yours": _("Yours"),
        "closed": _("Closed"),
        "past": _("Past"),
        "full": _("Full"),
        "started": _("Under way"),
        "too_soon": _("Too soon"),
        "not_yet": _("Not yet open"),
        "free": _("Free"),
    }


def present(view: WeekView) -> tuple[list[DisplayDay], list[DisplayRow]]:
    """The page's cells as display data, each cell worked out once for both the grid and the phone list."""
    space, rules = view.space, view.rules
    words = _state_words()
    left_text = _("%(num)d left")  # formatted below with % {"num": …}, as gettext(…, num=…) does
    book_word = _("Book")
    notice = None
    if rules.min_notice:
        from booking.bookings.forms import format_duration  # the forms import this module's models

        notice = _("needs %(notice)s notice", notice=format_duration(rules.min_notice))
    book_url = url_for("spaces.book", slug=space.slug)
    tz = rules.tz
    whole_days = space.whole_days
    shown: dict[Interval, CellDisplay] = {}

    def display(cell: Cell) -> CellDisplay:
        start, end = cell.interval.start, cell.interval.end
        own = view.own_booking(cell)
        bookable = view.is_bookable(cell)
        key = view.state_key(cell)
        state = left_text % {"num": cell.left} if key == "left" else words[key]
        start_l, end_l = start.astimezone(tz), end.astimezone(tz)
        if whole_days:
            params = {"start": start_l.date().isoformat(), "end": (end_l - timedelta(days=1)).date().isoformat()}
        else:
            params = {"start": f"{start_l:%Y-%m-%dT%H:%M}", "end": f"{end_l:%Y-%m-%dT%H:%M}"}
        slot = escape(params["start"])
        title = f"{format_span(start, end, whole_days=whole_days)}: {state}"
        if cell.reason:
            title += f" — {cell.reason}"
        if notice and view.too_soon(cell):
            title += f" — {notice}"
        title = escape(title)
        css = f"cell cell-{cell.state.value}"
        if own:
            css += " cell-own"
        if cell.state in BOOKABLE and not bookable:
            css += " cell-unavailable"
        if own:
            href = escape(url_for("bookings.detail", booking_id=own))
            head = f'<a class="cell-link" href="{href}" title="{title}" data-slot="{slot}">'
            tail = f'<span class="cell-state">{escape(words["yours"])}</span>'
            if cell.state is CellState.PARTLY:
                tail += f'<span class="cell-extra">{escape(left_text % {"num": cell.left})}</span>'
            tail += "</a>"
        elif bookable:
            href = escape(f"{book_url}?{urlencode(params, safe=':')}")  # as url_for quotes
            head = (
                f'<a class="cell-link" href="{href}" data-slot="{slot}" title="{title}"'
                f' aria-label="{escape(book_word)}: {title}">'
            )
            tail = f'<span class="cell-state">{escape(state)}</span></a>'
        else:
            head = f'<span class="cell-static" title="{title}" data-slot="{slot}">'
            tail = f'<span class="cell-state">{escape(state)}</span>'
            if cell.reason:
                tail += f'<span class="cell-reason">{escape(cell.reason)}</span>'
            tail += "</span>"
        label = f'<span class="cell-time">{escape(format_clock(start))}–{escape(format_clock(end))}</span>'
        # every value above went through escape(): the strings are markup, not text
        body, labelled = Markup(head + tail), Markup(head + label + tail)  # noqa: S704
        return CellDisplay(css=css, body=body, labelled=labelled, past=cell.state is CellState.PAST)

    def lookup(cell: Cell) -> CellDisplay:
        found = shown.get(cell.interval)
        if found is None:
            found = shown[cell.interval] = display(cell)
        return found

    days = []
    for day in view.days:
        cells = tuple(lookup(cell) for cell in day.cells)
        days.append(DisplayDay(day=day, cells=cells, passed=sum(c.past for c in cells)))
    rows = [
        DisplayRow(label=row.label, cells=tuple(lookup(c) if c is not None else None for c in row.cells))
        for row in view.rows
    ]
    return days, rows


def space_week(session: Session, space: Space, anchor: date, *, now: datetime, viewer_id: int | None) -> WeekView:
    rules = space.rules()
    tz = rules.tz
    days = month_of(anchor) if rules.time_mode is TimeMode.WHOLE_DAYS else week_of(anchor)
    window = Interval(local_midnight(days[0], tz), local_midnight(days[-1] + timedelta(days=1), tz))
    closures = closures_in(session, space, window)
    return WeekView(
        space=space,
        rules=rules,
        dates=days,
        anchor=anchor,
        today=now.astimezone(tz).date(),
        closures=sorted(closures, key=lambda c: c.interval.start),
        now=now,
        window=window,
        session=session,
        viewer_id=viewer_id,
    )


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
