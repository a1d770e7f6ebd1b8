"""Usage for the council: bookings, hours, people, occupancy and cancellations.

The heavy lifting is two GROUP BY queries whatever the range: one over the bookings
that start in it (counts, people, cancellations), one joining confirmed bookings to
the open intervals of each day (hours clipped to opening hours, so a whole-day
exhibition day counts its open hours, not 24). The open intervals come from each
space's rules, day by day, minus closures; they are sent as a VALUES list, so both
queries work the same on SQLite and PostgreSQL.

Rules are not versioned: past weeks are measured against today's opening hours.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Row,
    Table,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    func,
    insert,
    select,
    true,
    values,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from booking.auth.models import Organisation
from booking.bookings.models import Booking, Status
from booking.db import UTCDateTime
from booking.domain.intervals import Interval, local_midnight
from booking.domain.rules import MAX_SPAN
from booking.spaces.models import Closure, Space

MAX_RANGE_DAYS = 400  # a council report covers a year at most; longer ranges are slow to read anyway
LATE_CANCELLATION = timedelta(hours=24)

# Per connection, never part of the schema: the open intervals of one report.
_OPEN_INTERVALS = Table(
    "staff_report_open_interval",
    MetaData(),
    Column("space_id", Integer),
    Column("week", Date),
    Column("os", UTCDateTime),
    Column("oe", UTCDateTime),
    Column("lo", UTCDateTime),  # no booking that starts before this reaches the interval
    prefixes=["TEMPORARY"],
)


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
        cuts = [Interval(c.start_at, c.end_at) for c in closures if c.space_id is None or c.space_id == space.id]
        day = first
        while day <= last:
            monday = day - timedelta(days=day.weekday())
            for window in rules.opening_on(day):
                for piece in _subtract(window, cuts):
                    rows.append((space.id, monday, piece))
            day += timedelta(days=1)
    return rows


_CONFIRMED = Booking.status == Status.CONFIRMED.value


def _count_columns(dialect: str, b: Any) -> list[ColumnElement[Any]]:
    """Bookings, people, cancellations and late cancellations, summed; `b` has the booking's columns."""
    confirmed = b.status == Status.CONFIRMED.value
    cancelled = b.status == Status.CANCELLED.value
    late = and_(
        cancelled,
        _hours_between(dialect, b.decided_at, b.start_at) < LATE_CANCELLATION.total_seconds() / 3600,
    )
    return [
        func.sum(case((confirmed, 1), else_=0)),
        func.sum(case((confirmed, b.attendees), else_=0)),
        func.sum(case((cancelled, 1), else_=0)),
        func.sum(case((late, 1), else_=0)),
    ]


def _counts(
    session: Session,
    dialect: str,
    tz: ZoneInfo,
    space_ids: Sequence[int],
    weeks: Sequence[tuple[date, datetime, datetime]],
    range_start: datetime,
    range_end: datetime,
) -> Sequence[Row[Any]]:
    """(space, member unit, local Monday of the start, bookings, people, cancellations, late ones)."""
    in_range = and_(Booking.space_id.in_(space_ids), Booking.start_at >= range_start, Booking.start_at < range_end)
    if dialect == "postgresql":
        # one index range scan, then a hash aggregate over the local Monday PostgreSQL computes;
        # joining to a list of weeks instead made the planner test every booking against every week
        per_booking = (
            select(
                Booking.space_id,
                Booking.organisation_id,
                Booking.status,
                Booking.attendees,
                Booking.decided_at,
                Booking.start_at,
                cast(func.date_trunc("week", func.timezone(tz.key, Booking.start_at)), Date).label("week"),
            )
            .where(in_range)
            .subquery("counted")
        )
        c = per_booking.c
        return session.execute(
            select(c.space_id, c.organisation_id, c.week, *_count_columns(dialect, c)).group_by(
                c.space_id, c.organisation_id, c.week
            )
        ).all()
    # SQLite knows no time zones: the local weeks go in as UTC windows
    week_values = (
        values(column("week", Date), column("ws", UTCDateTime), column("we", UTCDateTime), name="report_week")
        .data(list(weeks))
        .cte()
    )  # a CTE: SQLite cannot alias the columns of a VALUES subquery
    w = week_values.c
    return session.execute(
        select(Booking.space_id, Booking.organisation_id, w.week, *_count_columns(dialect, Booking))
        .join(week_values, and_(Booking.start_at >= w.ws, Booking.start_at < w.we))
        .where(Booking.space_id.in_(space_ids))  # the weeks bound the start: one range scan each
        .group_by(Booking.space_id, Booking.organisation_id, w.week)
    ).all()


def _hours(
    session: Session,
    dialect: str,
    space_ids: Sequence[int],
    calendar: Sequence[tuple[int, date, Interval]],
    range_start: datetime,
    range_end: datetime,
) -> list[tuple[int, int | None, date, float, float]]:
    """(space, member unit, week, hours, unit-hours) of confirmed time inside the open intervals."""
    # the longest confirmed booking of each space bounds each probe below far tighter than
    # MAX_SPAN: a meeting room's open interval looks back hours, not fifteen days
    longest = dict(
        session.execute(
            select(Booking.space_id, func.max(_hours_between(dialect, Booking.start_at, Booking.end_at)))
            .where(
                _CONFIRMED,
                Booking.space_id.in_(space_ids),
                Booking.start_at >= range_start - MAX_SPAN,
                Booking.start_at < range_end,
            )
            .group_by(Booking.space_id)
        ).all()
    )
    probes = [
        (space, week, w.start, w.end, w.start - timedelta(hours=float(longest[space]) + 1))
        for space, week, w in calendar
        if space in longest  # a space with no confirmed booking has no hours to find
    ]
    if not probes:
        return []
    if dialect == "postgresql":
        # the intervals as five arrays, unnested in FROM: one statement, whatever their number;
        # LATERAL makes every interval one short range scan of ix_booking_space_start
        columns = list(zip(*probes, strict=True))
        types = (Integer, Date, DateTime(timezone=True), DateTime(timezone=True), DateTime(timezone=True))
        names = ("space_id", "week", "os", "oe", "lo")
        opened = (
            func.unnest(
                *(
                    bindparam(f"open_{name}", list(values_), type_=ARRAY(type_))
                    for name, values_, type_ in zip(names, columns, types, strict=True)
                )
            )
            .table_valued(*(column(name, type_) for name, type_ in zip(names, types, strict=True)))
            .render_derived(name="open_interval")
        )
        o = opened.c
        held = (
            select(Booking.organisation_id, Booking.start_at, Booking.end_at, Booking.units)
            .where(
                Booking.space_id == o.space_id,
                _CONFIRMED,
                Booking.start_at >= o.lo,
                Booking.start_at < o.oe,
                Booking.end_at > o.os,
            )
            .offset(0)  # a fence: PostgreSQL would otherwise flatten the subquery into a hash join
            .lateral("held")
        )
        h = held.c
        overlap = _hours_between(dialect, func.greatest(h.start_at, o.os), func.least(h.end_at, o.oe))
        stmt = (
            select(o.space_id, h.organisation_id, o.week, func.sum(overlap), func.sum(overlap * h.units))
            .select_from(opened)
            .join(held, true())
            .group_by(o.space_id, h.organisation_id, o.week)
        )
    else:
        # a temporary table filled with one executemany: compiling thousands of VALUES rows
        # into the statement costs more than the query itself
        _OPEN_INTERVALS.create(session.connection(), checkfirst=True)
        session.execute(delete(_OPEN_INTERVALS))
        session.execute(
            insert(_OPEN_INTERVALS), [dict(zip(("space_id", "week", "os", "oe", "lo"), p, strict=True)) for p in probes]
        )
        o = _OPEN_INTERVALS.c
        overlap = _hours_between(
            dialect, _later(dialect, Booking.start_at, o.os), _earlier(dialect, Booking.end_at, o.oe)
        )
        stmt = (
            select(o.space_id, Booking.organisation_id, o.week, func.sum(overlap), func.sum(overlap * Booking.units))
            .select_from(_OPEN_INTERVALS)
            .join(
                Booking,
                and_(
                    Booking.space_id == o.space_id,
                    _CONFIRMED,
                    # bounded below by the space's longest booking: a short index range scan per interval
                    Booking.start_at >= o.lo,
                    Booking.start_at < o.oe,
                    Booking.end_at > o.os,
                ),
            )
            .group_by(o.space_id, Booking.organisation_id, o.week)
        )
    return [(r[0], r[1], r[2], float(r[3] or 0), float(r[4] or 0)) for r in session.execute(stmt).all()]


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

    # 1. counts by (space, member unit, week of the start)
    counts = _counts(session, dialect, tz, chosen_ids, weeks, range_start, range_end)
    # 2. hours inside opening hours, by (space, member unit, week the hours fall in)
    calendar = open_intervals(chosen, first, last, closures)
    hours_rows = _hours(session, dialect, chosen_ids, calendar, range_start, range_end)

    # roll the grouped rows (spaces × units × weeks, not bookings) up three ways
    capacity = {s.id: s.capacity for s in chosen}
    by_space: dict[int, Figures] = {s.id: Figures(open_unit_hours=0.0) for s in chosen}
    by_week: dict[date, Figures] = {w: Figures(open_unit_hours=0.0) for w, _, _ in weeks}
    by_org: dict[int | None, Figures] = defaultdict(Figures)
    total = Figures(open_unit_hours=0.0)
    for space, week, window in calendar:
        unit_hours = window.duration.total_seconds() / 3600 * capacity[space]
        by_space[space].open_unit_hours += unit_hours  # type: ignore[operator]
        by_week[week].open_unit_hours += unit_hours  # type: ignore[operator]
        total.open_unit_hours += unit_hours  # type: ignore[operator]
    for space, org, week, n, people, cancels, lates in counts:
        week = week if isinstance(week, date) else date.fromisoformat(str(week))
        part = Figures(bookings=n or 0, people=people or 0, cancellations=cancels or 0, late_cancellations=lates or 0)
        for target in (by_space[space], by_week[week], by_org[org], total):
            target.add(part)
    for space, org, week, hours, unit_hours in hours_rows:
        week = week if isinstance(week, date) else date.fromisoformat(str(week))
        part = Figures(hours=hours, unit_hours=unit_hours)
        for target in (by_space[space], by_week[week], by_org[org], total):
            target.add(part)

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
