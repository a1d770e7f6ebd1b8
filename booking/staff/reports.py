"""Usage for the council: bookings, hours, people, occupancy and cancellations.

One grouped scan of the bookings that start in the range (plus the few confirmed ones
reaching into it from before) gives counts, people, cancellations and booked hours by
space, member unit and local week, whatever the length of the range. Booked hours need
no join with opening hours: the rules keep a booking inside them (overrides never lift
opening hours) and a closure cancels what it covers, so a booking's hours are its
duration. The bookings that may stick out — whole-day bookings (an exhibition day counts
its open hours, not 24), and bookings crossing the range's edges or a local week's end —
come back one by one and are clipped in Python to the open intervals. Open hours come
from each space's rules, day by day, minus closures.

Rules are not versioned: past weeks are measured against today's opening hours. A booking
made under earlier opening hours counts its full duration.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    Date,
    DateTime,
    Row,
    and_,
    bindparam,
    case,
    column,
    false,
    func,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
    union_all,
    values,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from booking.auth.models import Organisation
from booking.bookings.models import Booking, Status
from booking.db import UTCDateTime
from booking.domain.intervals import Interval, local_midnight
from booking.domain.rules import MAX_SPAN, TimeMode
from booking.spaces.models import Closure, Space

MAX_RANGE_DAYS = 400  # a council report covers a year at most; longer ranges are slow to read anyway
LATE_CANCELLATION = timedelta(hours=24)


@dataclass
class Figures:
    bookings: int = 0
    hours: float = 0.0  # booked hours inside opening hours
    unit_hours: float = 0.0  # the same, times the units each booking holds
    people: int = 0  # sum of attendees
    cancellations: int = 0
    late_cancellations: int = 0  # cancelled less than 24 h before the start
    open_unit_hours: float | None = None  # None where occupancy means nothing (a member unit)

    @property
    def occupancy(self) -> float | None:
        if not self.open_unit_hours:
            return None
        return self.unit_hours / self.open_unit_hours

    def add(self, other: Figures) -> None:
        self.bookings += other.bookings
        self.hours += other.hours
        self.unit_hours += other.unit_hours
        self.people += other.people
        self.cancellations += other.cancellations
        self.late_cancellations += other.late_cancellations


@dataclass
class Report:
    first: date
    last: date  # inclusive
    space: Space | None
    total: Figures
    by_week: list[tuple[date, Figures]]
    by_space: list[tuple[Space, Figures]]
    by_org: list[tuple[Organisation | None, Figures]]
    spaces: list[Space] = field(default_factory=list)


def default_range(today: date) -> tuple[date, date]:
    """The last four full weeks, Monday to Sunday."""
    this_monday = today - timedelta(days=today.weekday())
    return this_monday - timedelta(weeks=4), this_monday - timedelta(days=1)


def _hours_between(dialect: str, start: ColumnElement[datetime], end: ColumnElement[datetime]) -> ColumnElement[float]:
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 24.0
    return func.extract("epoch", end - start) / 3600.0


def _later(dialect: str, a: ColumnElement[datetime], b: ColumnElement[datetime]) -> ColumnElement[datetime]:
    return func.max(a, b) if dialect == "sqlite" else func.greatest(a, b)


def _earlier(dialect: str, a: ColumnElement[datetime], b: ColumnElement[datetime]) -> ColumnElement[datetime]:
    return func.min(a, b) if dialect == "sqlite" else func.least(a, b)


def _subtract(window: Interval, cuts: Iterable[Interval]) -> list[Interval]:
    pieces = [window]
    for cut in cuts:
        next_pieces = []
        for piece in pieces:
            if not piece.overlaps(cut):
                next_pieces.append(piece)
                continue
            if piece.start < cut.start:
                next_pieces.append(Interval(piece.start, cut.start))
            if cut.end < piece.end:
                next_pieces.append(Interval(cut.end, piece.end))
        pieces = next_pieces
    return pieces


def open_intervals(
    spaces: Sequence[Space], first: date, last: date, closures: Sequence[Closure]
) -> list[tuple[int, date, Interval]]:
    """(space id, Monday of the week, open interval) for every day in the range, closures cut out."""
    rows: list[tuple[int, date, Interval]] = []
    for space in spaces:
        rules = space.rules()
        cuts = sorted(
            (Interval(c.start_at, c.end_at) for c in closures if c.space_id is None or c.space_id == space.id),
            key=lambda cut: cut.start,
        )
        upcoming, active = iter(cuts), []  # the days go forward: sweep the closures along with them
        following = next(upcoming, None)
        day = first
        while day <= last:
            monday = day - timedelta(days=day.weekday())
            for window in sorted(rules.opening_on(day)):
                while following is not None and following.start < window.end:
                    active.append(following)
                    following = next(upcoming, None)
                active = [cut for cut in active if cut.end > window.start]
                for piece in _subtract(window, active) if active else (window,):
                    rows.append((space.id, monday, piece))
            day += timedelta(days=1)
    return rows


def _count_columns(dialect: str, b: Any, counted: ColumnElement[bool]) -> list[ColumnElement[Any]]:
    """Bookings, people, cancellations and late cancellations of the `counted` rows, per booking."""
    confirmed = and_(counted, b.status == Status.CONFIRMED.value)
    cancelled = and_(counted, b.status == Status.CANCELLED.value)
    late = and_(
        cancelled,
        _hours_between(dialect, b.decided_at, b.start_at) < LATE_CANCELLATION.total_seconds() / 3600,
    )
    return [
        case((confirmed, 1), else_=0).label("booked"),
        case((confirmed, b.attendees), else_=0).label("people"),
        case((cancelled, 1), else_=0).label("cancelled"),
        case((late, 1), else_=0).label("late"),
    ]


def _scan(
    session: Session,
    dialect: str,
    tz: ZoneInfo,
    space_ids: Sequence[int],
    whole_day_ids: Sequence[int],
    weeks: Sequence[tuple[date, datetime, datetime]],
    range_start: datetime,
    range_end: datetime,
) -> Sequence[Row[Any]]:
    """One scan of the bookings that start in the range (or reach into it from before), grouped twice.

    Rows: (by space?, space, member unit, local Monday of the start, booking id or None, bookings,
    people, cancellations, late ones, hours, unit-hours, start, end, units), grouped once by
    (space, week) and once by member unit. The rules keep a confirmed booking inside opening
    hours and closures cancel what they cover, so a booking's hours are its duration, summed in
    SQL. Only the few confirmed bookings that may stick out of opening hours come back one by
    one (booking id set) for `usage` to clip: whole-day bookings, and bookings that cross the
    start or end of the range or the end of their local week.
    """
    starts_in_range = Booking.start_at >= range_start
    if dialect == "postgresql":
        # the weeks as a sorted array of UTC bounds: width_bucket finds a booking's week by binary
        # search, far cheaper per row than converting it to local time (bucket 0: before the range)
        bounds = bindparam(
            "week_bounds", [ws for _, ws, _ in weeks] + [range_end], type_=ARRAY(DateTime(timezone=True))
        )
        week: ColumnElement[Any] = func.width_bucket(Booking.start_at, bounds)
        # a booking ending on a week's last instant lies wholly inside it
        crosses_week = func.width_bucket(Booking.end_at - literal_column("interval '1 microsecond'"), bounds) != week
        stmt = select(Booking.space_id)
    else:
        # SQLite knows no time zones: the local weeks go in as UTC windows, with one more
        # (week NULL) for the bookings that start before the range and end inside it
        rows = [*weeks, (None, range_start - MAX_SPAN, range_start)]
        week_values = (
            values(column("week", Date), column("ws", UTCDateTime), column("we", UTCDateTime), name="report_week")
            .data(rows)
            .cte()
        )  # a CTE: SQLite cannot alias the columns of a VALUES subquery
        w = week_values.c
        week, crosses_week = w.week, Booking.end_at > w.we
        stmt = select(Booking.space_id).join(week_values, and_(Booking.start_at >= w.ws, Booking.start_at < w.we))
    confirmed = Booking.status == Status.CONFIRMED.value
    sticks_out = or_(
        Booking.start_at < range_start,
        Booking.end_at > range_end,
        crosses_week,
        Booking.space_id.in_(whole_day_ids) if whole_day_ids else false(),
    )
    summed = and_(confirmed, not_(sticks_out))
    hours = _hours_between(dialect, Booking.start_at, Booking.end_at)
    per_booking = (
        stmt.add_columns(
            Booking.organisation_id,
            week.label("week"),
            case((and_(confirmed, sticks_out), Booking.id), else_=None).label("one"),
            *_count_columns(dialect, Booking, starts_in_range),
            case((summed, hours), else_=0).label("hours"),
            case((summed, hours * Booking.units), else_=0).label("unit_hours"),
            Booking.start_at,
            Booking.end_at,
            Booking.units,
        )
        .where(
            Booking.space_id.in_(space_ids),
            Booking.start_at >= range_start - MAX_SPAN,
            Booking.start_at < range_end,
            or_(starts_in_range, and_(confirmed, Booking.end_at > range_start)),
        )
        .cte("per_booking")
        .prefix_with("MATERIALIZED")  # read the bookings once, group them twice
    )
    b = per_booking.c

    def sums(*keys: ColumnElement[Any]) -> list[ColumnElement[Any]]:
        return [
            func.sum(b.booked),
            func.sum(b.people),
            func.sum(b.cancelled),
            func.sum(b.late),
            func.sum(b.hours),
            func.sum(b.unit_hours),
            func.min(b.start_at),
            func.min(b.end_at),
            func.min(b.units),
        ]

    by_space_week = select(true().label("by_space"), b.space_id, null(), b.week, b.one, *sums()).group_by(
        b.space_id, b.week, b.one
    )
    by_org = select(false(), func.min(b.space_id), b.organisation_id, null(), b.one, *sums()).group_by(
        b.organisation_id, b.one
    )
    return session.execute(union_all(by_space_week, by_org)).all()


def usage(session: Session, *, first: date, last: date, tz: ZoneInfo, space_id: int | None = None) -> Report:
    dialect = session.get_bind().dialect.name
    range_start, range_end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    spaces = list(session.scalars(select(Space).where(Space.bookable.is_(True)).order_by(Space.sort_order)))
    chosen = [s for s in spaces if space_id is None or s.id == space_id]
    chosen_ids = [s.id for s in chosen]
    closures = list(session.scalars(select(Closure).where(Closure.start_at < range_end, Closure.end_at > range_start)))

    # weeks as UTC windows of the station's local weeks, clipped to the range
    weeks: list[tuple[date, datetime, datetime]] = []
    monday = first - timedelta(days=first.weekday())
    while monday <= last:
        start = max(local_midnight(monday, tz), range_start)
        end = min(local_midnight(monday + timedelta(days=7), tz), range_end)
        weeks.append((monday, start, end))
        monday += timedelta(days=7)

    # one grouped scan: counts and hours by (space, member unit, week of the start)
    whole_day_ids = [s.id for s in chosen if s.rules().time_mode is TimeMode.WHOLE_DAYS]
    rows = _scan(session, dialect, tz, chosen_ids, whole_day_ids, weeks, range_start, range_end)
    calendar = open_intervals(chosen, first, last, closures)

    # roll the grouped rows (spaces × units × weeks, not bookings) up three ways
    capacity = {s.id: s.capacity for s in chosen}
    by_space: dict[int, Figures] = {s.id: Figures(open_unit_hours=0.0) for s in chosen}
    by_week: dict[date, Figures] = {w: Figures(open_unit_hours=0.0) for w, _, _ in weeks}
    by_org: dict[int | None, Figures] = defaultdict(Figures)
    total = Figures(open_unit_hours=0.0)
    opening: dict[int, list[tuple[datetime, datetime, date]]] = defaultdict(list)
    for space, week, window in calendar:
        unit_hours = window.duration.total_seconds() / 3600 * capacity[space]
        by_space[space].open_unit_hours += unit_hours  # type: ignore[operator]
        by_week[week].open_unit_hours += unit_hours  # type: ignore[operator]
        total.open_unit_hours += unit_hours  # type: ignore[operator]
        opening[space].append((window.start, window.end, week))
    for windows in opening.values():
        windows.sort()
    ends = {space: [end for _, end, _ in windows] for space, windows in opening.items()}

    def clipped(space: int, start: datetime, end: datetime) -> Iterator[tuple[date, float]]:
        """(week, hours) of a booking that may stick out, inside each open interval it meets."""
        windows = opening.get(space, [])
        i = bisect_right(ends.get(space, []), start)
        while i < len(windows) and windows[i][0] < end:
            open_start, open_end, week = windows[i]
            overlap = (min(end, open_end) - max(start, open_start)).total_seconds() / 3600
            if overlap > 0:
                yield week, overlap
            i += 1

    week_of_bucket = {n: monday for n, (monday, _, _) in enumerate(weeks, start=1)}  # PostgreSQL numbers them
    for by_space_week, space, org, week, one, n, people, cancels, lates, hours, unit_hours, start, end, units in rows:
        if isinstance(week, int):
            week = week_of_bucket.get(week)
        elif week is not None and not isinstance(week, date):
            week = date.fromisoformat(str(week))
        part = Figures(bookings=n or 0, people=people or 0, cancellations=cancels or 0, late_cancellations=lates or 0)
        pieces = [] if one is None else list(clipped(space, start, end))
        if one is None:
            part.hours, part.unit_hours = float(hours or 0), float(unit_hours or 0)
        if not by_space_week:
            part.hours += sum(h for _, h in pieces)
            part.unit_hours += sum(h * units for _, h in pieces)
            by_org[org].add(part)
            continue
        # a booking from before the range has its hours in it, but no week of its own
        for target in (by_space[space], total, *([by_week[week]] if week in by_week else [])):
            target.add(part)
        for piece_week, piece_hours in pieces:
            for target in (by_space[space], total, by_week[piece_week]):
                target.add(Figures(hours=piece_hours, unit_hours=piece_hours * units))

    org_ids = [org for org in by_org if org is not None]
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(org_ids)))}
    org_rows = sorted(
        ((orgs.get(org) if org is not None else None, figures) for org, figures in by_org.items()),
        key=lambda pair: (-pair[1].hours, -pair[1].bookings, pair[0].id if pair[0] else 0),
    )
    return Report(
        first=first,
        last=last,
        space=chosen[0] if space_id is not None and chosen else None,
        total=total,
        by_week=sorted(by_week.items()),
        by_space=[(s, by_space[s.id]) for s in chosen],
        by_org=org_rows,
        spaces=spaces,
    )


# -- CSV for the council's spreadsheets ----------------------------------------------------


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}"


def to_csv(report: Report, *, labels: dict[str, str], space_name, org_name) -> str:  # type: ignore[no-untyped-def]
    """UTF-8 with a byte-order mark, so Excel opens Chinese names correctly."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(
        [
            labels["group"],
            labels["name"],
            labels["bookings"],
            labels["hours"],
            labels["people"],
            labels["occupancy"],
            labels["cancellations"],
            labels["late"],
        ]
    )

    def row(group: str, name: str, f: Figures) -> list[str]:
        return [
            group,
            name,
            str(f.bookings),
            f"{f.hours:.1f}",
            str(f.people),
            _percent(f.occupancy),
            str(f.cancellations),
            str(f.late_cancellations),
        ]

    writer.writerow(row(labels["total"], f"{report.first.isoformat()} – {report.last.isoformat()}", report.total))
    for week, figures in report.by_week:
        writer.writerow(row(labels["week"], week.isoformat(), figures))
    for space, figures in report.by_space:
        writer.writerow(row(labels["space"], space_name(space), figures))
    for org, figures in report.by_org:
        writer.writerow(row(labels["org"], org_name(org), figures))
    return out.getvalue()
