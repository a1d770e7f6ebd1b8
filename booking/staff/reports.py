"""Usage for the council: bookings, hours, people, occupancy and cancellations.

Figures come from the bookings that start in the range: counts, people, cancellations and
booked hours per local day, space and member unit. Booked hours need no join with opening
hours: the rules keep a booking inside them (overrides never lift opening hours) and a
closure cancels what it covers, so a booking's hours are its duration. The bookings that
may stick out — whole-day bookings (an exhibition day counts its open hours, not 24), and
bookings that end after their start day (they may cross the range's edges or a local
week's end) — are "pieces", read one by one and clipped in Python to the open intervals.
Open hours come from each space's weekly rules, by arithmetic per weekday, with the days a
closure touches worked out interval by interval.

Rules are not versioned: past weeks are measured against today's opening hours. A booking
made under earlier opening hours counts its full duration.

The cache. A year of a busy station is hundreds of thousands of bookings: too many to
group on every request. So the per-day figures (tables of booking.staff.models) are
derived lazily, by one INSERT … SELECT for the days a report needs and nobody has computed
yet (the range, and the MAX_SPAN days before it whose pieces may reach into it), and whole
weeks are summed once more: a year's report reads about 52 rows per space and member unit,
plus the days at either end, instead of every booking. The first report over a new range
pays for grouping its bookings once: one index range scan per span of days with one UTC
offset (a year in Shanghai is one span; a daylight-saving change adds a span of its own
for the day of the change), each booking's local day worked out by arithmetic, grouped by
space and by member unit in one pass, the days summed from the spaces' rows. Nothing
writes the cache but this module, and no booking write has to know about it:

- Every booking change (request, approval, rejection, cancellation, expiry, closure) writes
  an audit event naming the booking, in the same transaction, while holding the space's
  row lock (services.py). The cache remembers the highest event it has taken into account
  (`audit_mark`). A report first compares it with the newest event: equal means nothing
  changed (one indexed lookup). Otherwise the events since the mark name the changed
  bookings; their start days are dropped and recomputed, and the mark moves on.
- On PostgreSQL an event id can become visible after a higher one (ids are taken before
  commit). Events of one space are ordered by its row lock, so the refresh takes every
  space's row FOR SHARE (waiting out booking writes in flight) before it reads the newest
  id: every event up to it has committed, every later one will have a higher id. SQLite
  commits one writer at a time, so ids are in commit order.
- The cache also remembers the mark event's fields: an audit trail whose newest rows were
  deleted (SQLite then reuses their ids) no longer matches, and the cache starts again.
  So does a change of time zone (or of CACHE_VERSION). Deleting bookings behind the
  services' back is not seen: clear the cache then (`DELETE FROM usage_cache_state`).
- The cache remembers the bookable spaces and which are booked by whole days (`shape`).
  A space that comes, goes or changes between whole days and times has its own figures
  taken out of the cached days and week sums (its bookings grouped again as they were
  counted, added with the opposite sign) and put back as they count now; its pieces are
  replaced. The other spaces' rows stay. This needs the space's bookings to be what the
  rows counted: the days they changed on after the mark are dropped first, and the space's
  row is held FOR SHARE on PostgreSQL (SQLite: the write transaction) until the commit.
  Rows count their bookings of any status (`entries`), so a member unit's day or week with
  none left goes, as it would from a report grouped afresh.
- Cached rows are read in one snapshot that also proves every needed day is present, so
  a refresh running at the same moment can never leave a report with a day missing.

A report for one space reads its bookings directly (a year of one space is a few thousand
rows); so does a report that finds the cache being rebuilt for another set-up.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    Date,
    DateTime,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal_column,
    not_,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy import Interval as Interval_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.sql.elements import ColumnElement

from booking.auth.models import Organisation
from booking.bookings.models import AuditEvent, Booking, Status
from booking.db import keep_loaded_and_end_reads
from booking.domain.intervals import Interval, local_dates, local_midnight
from booking.domain.rules import MAX_SPAN, SpaceRules, TimeMode
from booking.spaces.models import Closure, Space
from booking.staff.models import UsageCachePiece, UsageCacheRow, UsageCacheState

MAX_RANGE_DAYS = 400  # a council report covers a year at most; longer ranges are slow to read anyway
LATE_CANCELLATION = timedelta(hours=24)
CACHE_VERSION = 2  # part of the cache's shape: bump it when what a cached row means changes
# a booking reaching into the range starts at most MAX_SPAN before it: on the local day that
# many days earlier, or one more when a daylight-saving change moved local midnight
LEAD_DAYS = MAX_SPAN.days + 1
MICROS_PER_HOUR = 3_600_000_000


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


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


# -- opening hours ------------------------------------------------------------------------


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


def open_windows(rules: SpaceRules, day: date, cuts: Sequence[Interval]) -> list[Interval]:
    """A space's open intervals on one local day, in order, with the closures (sorted by start) cut out."""
    windows: list[Interval] = []
    for window in sorted(rules.opening_on(day)):
        active = [cut for cut in cuts if cut.start < window.end and cut.end > window.start]
        windows.extend(_subtract(window, active) if active else (window,))
    return windows


def _nominal_hours(rules: SpaceRules) -> dict[int, float]:
    """Open hours per weekday as `opening_on` measures them: wall-clock time, midnight written as 24:00."""
    reference = date(2001, 1, 1)
    hours: dict[int, float] = {}
    for weekday in range(7):
        total = timedelta(0)
        for start, end in rules.opening_hours.get(weekday, ()):
            until = datetime.combine(reference + timedelta(days=1), time(0)) if end == time(0) else None
            total += (until or datetime.combine(reference, end)) - datetime.combine(reference, start)
        hours[weekday] = total.total_seconds() / 3600
    return hours


class Calendar:
    """Open unit-hours per space and per week of a range, and the open intervals of any day in it."""

    def __init__(
        self, spaces: Sequence[Space], first: date, last: date, tz: ZoneInfo, closures: Sequence[Closure]
    ) -> None:
        self.first, self.last, self.tz = first, last, tz
        self.rules = {s.id: s.rules() for s in spaces}
        # per space, the closures of each local day they touch, in order of start
        self.cuts: dict[int, dict[date, list[Interval]]] = {}
        self._windows: dict[tuple[int, date], list[Interval]] = {}
        # spaces with the same opening hours and closures share their windows: work each out once
        self._shared: dict[tuple[Any, date, tuple[Interval, ...]], list[Interval]] = {}
        self.by_space: dict[int, float] = {}
        self.by_week: dict[date, float] = defaultdict(float)
        ordered = sorted(((c.space_id, Interval(c.start_at, c.end_at)) for c in closures), key=lambda c: c[1].start)
        closure_days = {cut: [day for day in local_dates(cut, tz) if first <= day <= last] for _, cut in ordered}
        mondays = []
        monday = monday_of(first)
        while monday <= last:
            mondays.append(monday)
            monday += timedelta(days=7)
        # spaces with the same opening hours and closures have the same open hours: work them out once
        profiles: dict[Any, tuple[dict[date, list[Interval]], list[tuple[date, float]]]] = {}
        for space in spaces:
            rules = self.rules[space.id]
            own = tuple(cut for closure_space, cut in ordered if closure_space == space.id)
            profile = (rules.tz.key, tuple(sorted(rules.opening_hours.items())), own)
            if profile not in profiles:
                cuts: dict[date, list[Interval]] = defaultdict(list)
                for closure_space, cut in ordered:
                    if closure_space is None or closure_space == space.id:
                        for day in closure_days[cut]:
                            cuts[day].append(cut)
                self.cuts[space.id] = cuts
                # the days a closure touches are worked out interval by interval, the rest by weekday
                nominal = _nominal_hours(rules)
                whole_week = sum(nominal.values())
                corrections: dict[date, float] = defaultdict(float)
                for day in cuts:
                    exact = sum(w.duration.total_seconds() for w in self.windows(space.id, day)) / 3600
                    corrections[monday_of(day)] += exact - nominal[day.weekday()]
                weekly = []
                for monday in mondays:
                    if first <= monday and monday + timedelta(days=6) <= last:
                        hours = whole_week
                    else:
                        days = (monday + timedelta(days=n) for n in range(7))
                        hours = sum(nominal[day.weekday()] for day in days if first <= day <= last)
                    weekly.append((monday, hours + corrections.get(monday, 0.0)))
                profiles[profile] = (cuts, weekly)
            cuts, weekly = profiles[profile]
            self.cuts[space.id] = cuts
            space_total = 0.0
            for monday, hours in weekly:
                unit_hours = hours * space.capacity
                self.by_week[monday] += unit_hours
                space_total += unit_hours
            self.by_space[space.id] = space_total
        self.total = sum(self.by_space.values())

    def windows(self, space_id: int, day: date) -> list[Interval]:
        key = (space_id, day)
        if key not in self._windows:
            rules, cuts = self.rules[space_id], tuple(self.cuts[space_id].get(day, ()))
            shared = (rules.opening_hours.get(day.weekday()), day, cuts)
            if shared not in self._shared:
                self._shared[shared] = open_windows(rules, day, cuts)
            self._windows[key] = self._shared[shared]
        return self._windows[key]

    def clipped(self, space_id: int, start: datetime, end: datetime) -> Iterator[tuple[date, float]]:
        """(week, hours) of a booking inside each open interval of the range it meets."""
        for day in local_dates(Interval(start, end), self.tz):
            if not self.first <= day <= self.last:
                continue
            for window in self.windows(space_id, day):
                overlap = (min(end, window.end) - max(start, window.start)).total_seconds() / 3600
                if overlap > 0:
                    yield monday_of(day), overlap


# -- figures per day, from the bookings ---------------------------------------------------


def _epoch(dialect: str, at: ColumnElement[Any]) -> ColumnElement[int]:
    """SQLite: the whole seconds since 1970 of a stored time ('YYYY-MM-DD HH:MM:SS.ffffff')."""
    if sqlite3.sqlite_version_info >= (3, 38):
        return func.unixepoch(at, type_=Integer)
    return cast(func.strftime("%s", at), Integer)


def _fraction(at: ColumnElement[Any]) -> ColumnElement[int]:
    """SQLite: the microseconds of a stored time, its last six digits."""
    return func.substr(at, 21, type_=Integer)


def _micros(dialect: str, start: ColumnElement[Any], end: ColumnElement[Any]) -> ColumnElement[int]:
    """end - start in whole microseconds, exactly."""
    if dialect == "sqlite":
        seconds = _epoch(dialect, end) - _epoch(dialect, start)
        return seconds * 1_000_000 + (_fraction(end) - _fraction(start))
    # float8 seconds: exact to the microsecond once rounded (the cast rounds) for spans under 285 years
    return cast(func.date_part("epoch", end - start) * 1_000_000, BigInteger)


EPOCH_DAY = date(1970, 1, 1)


def _day_rows(days: Iterable[date], tz: ZoneInfo) -> list[tuple[date, datetime, datetime, date]]:
    """(day, its first instant, the next day's, its Monday): the local days as UTC windows."""
    return [
        (day, local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz), monday_of(day))
        for day in sorted(days)
    ]


class Span(NamedTuple):
    """Consecutive local days whose bookings find their day by arithmetic: local = UTC + offset.

    A day of another length than 24 h (a daylight-saving change) is a span of its own, with
    `day` and `day_end` given: its bookings belong to it whatever their time."""

    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    offset: int  # seconds
    day: date | None = None
    day_end: datetime | None = None


def _spans(rows: Sequence[tuple[date, datetime, datetime, date]]) -> list[Span]:
    """The days' UTC windows as a few spans: one per run of days with the same UTC offset at
    midnight and 24 hours long, and one per other day. Each booking then finds its local day
    in one index range scan and a little arithmetic, not in a range join with every day."""
    spans: list[Span] = []
    for day, local_ds, local_de, _week in rows:
        # in UTC: the difference of two times of one zone is their wall clocks' (the ends of a day)
        ds, de = local_ds.astimezone(UTC), local_de.astimezone(UTC)
        offset = round((datetime.combine(day, time(0), UTC) - ds).total_seconds())
        if de - ds != timedelta(days=1) or datetime.combine(day, time(0), UTC) - ds != timedelta(seconds=offset):
            spans.append(Span(ds, de, 0, day, de))
        elif spans and spans[-1].day is None and spans[-1].end == ds and spans[-1].offset == offset:
            spans[-1] = spans[-1]._replace(end=de)
        else:
            spans.append(Span(ds, de, offset))
    return spans


def _spans_cte(dialect: str, spans: Sequence[Span]) -> Any:
    """The spans as a table (start, end, offset, day, day_end) from one bound value, so the
    statement compiles once and stays in SQLAlchemy's cache whatever their number.

    SQLite: times spelled as SQLAlchemy stores them, offsets in seconds, days and day ends as
    whole days and seconds since 1970. PostgreSQL: times, intervals and dates."""
    if dialect == "postgresql":
        table = (
            func.unnest(
                bindparam("span_starts", [s.start for s in spans], type_=ARRAY(DateTime(timezone=True))),
                bindparam("span_ends", [s.end for s in spans], type_=ARRAY(DateTime(timezone=True))),
                bindparam("span_offsets", [timedelta(seconds=s.offset) for s in spans], type_=ARRAY(Interval_)),
                bindparam("span_days", [s.day for s in spans], type_=ARRAY(Date)),
                bindparam("span_day_ends", [s.day_end for s in spans], type_=ARRAY(DateTime(timezone=True))),
            )
            .table_valued("ss", "se", "shift", "day", "de")
            .render_derived()
        )
        return select(
            table.c.ss.label("ss"),
            table.c.se.label("se"),
            table.c.shift.label("shift"),
            table.c.day.label("day"),
            table.c.de.label("de"),
        ).cte("usage_day_span")
    stored = "%Y-%m-%d %H:%M:%S.%f"
    encoded = json.dumps(
        [
            [
                s.start.astimezone(UTC).strftime(stored),
                s.end.astimezone(UTC).strftime(stored),
                s.offset,
                None if s.day is None else (s.day - EPOCH_DAY).days,
                None if s.day_end is None else round(s.day_end.timestamp()),
            ]
            for s in spans
        ]
    )
    each = func.json_each(bindparam("spans", encoded, type_=String)).table_valued("value")
    return (
        select(
            func.json_extract(each.c.value, "$[0]").label("ss"),
            func.json_extract(each.c.value, "$[1]").label("se"),
            func.json_extract(each.c.value, "$[2]", type_=Integer).label("shift"),
            func.json_extract(each.c.value, "$[3]", type_=Integer).label("day"),
            func.json_extract(each.c.value, "$[4]", type_=Integer).label("de"),
        )
        .cte("usage_day_span")
        .prefix_with("MATERIALIZED")  # a handful of rows, read before the bookings
    )


def _local_day(dialect: str, span: Any, start: ColumnElement[Any]) -> ColumnElement[Any]:
    """The local day a booking starts on, from the span its start lies in (SQLite: whole days
    since 1970; PostgreSQL: a date)."""
    s = span.c
    if dialect == "postgresql":
        return func.coalesce(s.day, cast(func.timezone("UTC", start) + s.shift, Date))
    return func.coalesce(s.day, (_epoch(dialect, start) + s.shift) // 86400)


def _ends_on(
    dialect: str,
    day: ColumnElement[Any],
    shift: ColumnElement[Any],
    day_end: ColumnElement[Any],
    end: ColumnElement[Any],
) -> ColumnElement[bool]:
    """Whether a booking ending at `end` ends by the end of its local day (its span's shift and day end)."""
    if dialect == "postgresql":
        return end <= func.coalesce(day_end, func.timezone("UTC", cast(day + 1, DateTime) - shift))
    until = func.coalesce(day_end, (day + 1) * 86400 - shift)
    return _epoch(dialect, end) * 1_000_000 + _fraction(end) <= until * 1_000_000


def _as_day(dialect: str, day: ColumnElement[Any]) -> ColumnElement[Any]:
    """The date of a day from _local_day: SQLite's whole days since 1970 spelled as a Date column stores it."""
    if dialect == "postgresql":
        return day
    return func.date(day * 86400, "unixepoch", type_=Date)


def _as_week(dialect: str, day: ColumnElement[Any]) -> ColumnElement[Any]:
    """The Monday of a day from _local_day, as a date."""
    if dialect == "postgresql":
        since_monday = ((day - date(1970, 1, 5)) % 7 + 7) % 7  # 5 January 1970 was a Monday
        return day - since_monday
    return func.date((day - (day + 3) % 7) * 86400, "unixepoch", type_=Date)  # day 0 was a Thursday


def _days_cte(dialect: str, rows: Sequence[tuple[date, datetime, datetime, date]]) -> Any:
    """The days as a table (day, week, key), key being the day as _local_day gives it."""
    if dialect == "postgresql":
        days = (
            func.unnest(
                bindparam("days", [r[0] for r in rows], type_=ARRAY(Date)),
                bindparam("weeks", [r[3] for r in rows], type_=ARRAY(Date)),
            )
            .table_valued("day", "week")
            .render_derived()
        )
        return select(days.c.day.label("day"), days.c.week.label("week"), days.c.day.label("key")).cte("usage_day")
    encoded = json.dumps([[day.isoformat(), week.isoformat(), (day - EPOCH_DAY).days] for day, _, _, week in rows])
    each = func.json_each(bindparam("days", encoded, type_=String)).table_valued("value")
    return select(
        func.json_extract(each.c.value, "$[0]", type_=Date).label("day"),
        func.json_extract(each.c.value, "$[1]", type_=Date).label("week"),
        func.json_extract(each.c.value, "$[2]", type_=Integer).label("key"),
    ).cte("usage_day")


FIGURES = 7  # bookings, people, cancellations, late cancellations, micros, unit micros, entries
GROUPED_COLUMNS = ("kind", "day", "key", "week", "bookings", "people", "cancellations", "late_cancellations")
GROUPED_COLUMNS += ("micros", "unit_micros", "entries")


def _named(*columns: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """The columns of a grouped row by the names of the cache's columns."""
    return [column.label(name) for column, name in zip(columns, GROUPED_COLUMNS, strict=True)]


def _grouped(
    dialect: str,
    rows: Sequence[tuple[date, datetime, datetime, date]],
    space_ids: Sequence[int],
    whole_day_ids: Sequence[int],
) -> Select[Any]:
    """(kind, day, key, week, bookings, people, cancellations, late, micros, unit micros, entries) of the days:
    a row per day (kind 'd', even without bookings), per space and day ('s'), per member unit and day ('o').

    One read of the bookings: each finds its local day by arithmetic over a few spans of the
    range. PostgreSQL groups them by space and by member unit at once (grouping sets); SQLite
    keeps them in a temporary table read twice. The days are added up from the spaces' rows."""
    span, days = _spans_cte(dialect, _spans(rows)), _days_cte(dialect, rows)
    b = Booking
    # first each booking's day, then its figures. On PostgreSQL OFFSET 0 keeps the planner from
    # copying the day's expression into each use (SQLite copies it: its subquery would cost more)
    day_of = (
        select(
            _local_day(dialect, span, b.start_at).label("day"),
            span.c.shift,
            span.c.de,
            b.space_id,
            b.organisation_id,
            b.status,
            b.attendees,
            b.units,
            b.start_at,
            b.end_at,
            b.decided_at,
        )
        .select_from(span)
        .join(b, and_(b.start_at >= span.c.ss, b.start_at < span.c.se))
        .where(b.space_id.in_(space_ids))  # every status: a member unit with only requests still has a row
        .offset(0 if dialect == "postgresql" else None)
        .subquery("usage_booking_day")
    )
    o = day_of.c
    confirmed = o.status == Status.CONFIRMED.value
    cancelled = o.status == Status.CANCELLED.value
    late = and_(cancelled, _micros(dialect, o.decided_at, o.start_at) < LATE_CANCELLATION // timedelta(microseconds=1))
    whole_day = o.space_id.in_(whole_day_ids) if whole_day_ids else false()
    counted = and_(confirmed, not_(whole_day), _ends_on(dialect, o.day, o.shift, o.de, o.end_at))
    per_booking = select(
        o.day,
        o.space_id,
        func.coalesce(o.organisation_id, 0).label("org"),
        case((confirmed, 1), else_=0).label("booked"),
        case((confirmed, o.attendees), else_=0).label("people"),
        case((cancelled, 1), else_=0).label("cancelled"),
        case((late, 1), else_=0).label("late"),
        case((counted, _micros(dialect, o.start_at, o.end_at)), else_=0).label("micros"),
        o.units,
        literal_column("1").label("entry"),
    )
    zero = literal_column("0")
    d = days.c

    def cols(p: Any) -> list[ColumnElement[Any]]:
        return [p.booked, p.people, p.cancelled, p.late, p.micros, p.micros * p.units, p.entry]

    if dialect == "postgresql":
        p = per_booking.subquery("usage_booking").c
        sums = [func.sum(c).label(f"f{n}") for n, c in enumerate(cols(p))]
        grouped = (
            select(p.day, p.space_id, p.org, func.grouping(p.space_id, p.org).label("level"), *sums)
            .group_by(func.grouping_sets(tuple_(p.day, p.space_id), tuple_(p.day, p.org)))
            .cte("usage_group")
            .prefix_with("MATERIALIZED")
        )
        g = grouped.c
        figures = [g[f"f{n}"] for n in range(FIGURES)]
        # the days from the spaces' rows: a third grouping set would hash every booking once more
        day_sums = (
            select(g.day, *(func.sum(f).label(f"f{n}") for n, f in enumerate(figures)))
            .where(g.level == 1)
            .group_by(g.day)
            .subquery()
        )
        by_day = select(
            *_named(
                literal_column("'d'"),
                d.day,
                zero,
                d.week,
                *(func.coalesce(day_sums.c[f"f{n}"], 0) for n in range(FIGURES)),
            )
        ).select_from(days.outerjoin(day_sums, day_sums.c.day == d.key))
        by_space = select(literal_column("'s'"), g.day, g.space_id, _as_week(dialect, g.day), *figures)
        by_org = select(literal_column("'o'"), g.day, g.org, _as_week(dialect, g.day), *figures)
        return union_all(by_day, by_space.where(g.level == 1), by_org.where(g.level == 2))  # type: ignore[return-value]

    per = per_booking.cte("usage_booking").prefix_with("MATERIALIZED")  # read the bookings once, group twice
    p = per.c

    def sums() -> list[ColumnElement[Any]]:
        return [func.sum(c) for c in cols(p)]

    space_day = (
        select(p.day, p.space_id, *(s.label(f"f{n}") for n, s in enumerate(sums())))
        .group_by(p.day, p.space_id)
        .cte("usage_space_day")
        .prefix_with("MATERIALIZED")
    )
    sd = space_day.c
    figures = [sd[f"f{n}"] for n in range(FIGURES)]
    day_sums = select(sd.day, *(func.sum(f).label(f"f{n}") for n, f in enumerate(figures))).group_by(sd.day).subquery()
    by_day = select(
        *_named(
            literal_column("'d'"), d.day, zero, d.week, *(func.coalesce(day_sums.c[f"f{n}"], 0) for n in range(FIGURES))
        )
    ).select_from(days.outerjoin(day_sums, day_sums.c.day == d.key))
    by_space = select(literal_column("'s'"), _as_day(dialect, sd.day), sd.space_id, _as_week(dialect, sd.day), *figures)
    by_org = select(literal_column("'o'"), _as_day(dialect, p.day), p.org, _as_week(dialect, p.day), *sums()).group_by(
        p.day, p.org
    )
    return union_all(by_day, by_space, by_org)  # type: ignore[return-value]


def _pieces(
    dialect: str,
    rows: Sequence[tuple[date, datetime, datetime, date]],
    space_ids: Sequence[int],
    whole_day_ids: Sequence[int],
) -> Select[Any]:
    """(booking id, day, space, member unit, start, end, units) of the confirmed bookings that may
    stick out: they end after their start day, or their space is booked by whole days."""
    span, b = _spans_cte(dialect, _spans(rows)), Booking
    day = _local_day(dialect, span, b.start_at)
    ends_that_day = _ends_on(dialect, day, span.c.shift, span.c.de, b.end_at)
    whole_day = b.space_id.in_(whole_day_ids) if whole_day_ids else false()
    return (
        select(b.id, _as_day(dialect, day), b.space_id, b.organisation_id, b.start_at, b.end_at, b.units)
        .select_from(span)
        .join(b, and_(b.start_at >= span.c.ss, b.start_at < span.c.se))
        .where(
            b.space_id.in_(space_ids),
            or_(whole_day, not_(ends_that_day)),  # from the index on (space, start, end): few rows read
            # on SQLite `status || ''`: no index can serve it. Otherwise SQLite may read the
            # bookings through the status index and search the spans for each.
            (b.status + "" if dialect == "sqlite" else b.status) == Status.CONFIRMED.value,
        )
    )


class Piece(NamedTuple):
    booking_id: int
    day: date
    space_id: int
    organisation_id: int | None
    start_at: datetime
    end_at: datetime
    units: int


# -- the cache ----------------------------------------------------------------------------


DAY_KINDS = ("d", "s", "o")  # rows of one day: the whole station, a space, a member unit
WEEK_KINDS = ("W", "S", "O")  # the same summed over a whole week, keyed by its Monday


def _full_weeks(first: date, last: date) -> list[date]:
    """The Mondays of the weeks that lie wholly in first..last."""
    monday = first + timedelta(days=-first.weekday() % 7)
    weeks = []
    while monday + timedelta(days=6) <= last:
        weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


PIECE_COLUMNS = ("booking_id", "day", "space_id", "organisation_id", "start_at", "end_at", "units")


def cache_shape(tz: ZoneInfo, space_ids: Sequence[int], whole_day_ids: Sequence[int]) -> str:
    """What the cached rows were computed for: the version and time zone (a change throws them
    away), the bookable spaces and those booked by whole days (a change is made space by space)."""
    return f"v{CACHE_VERSION};{tz.key};{','.join(map(str, space_ids))};{','.join(map(str, whole_day_ids))}"


def _shape_spaces(shape: str) -> tuple[str, dict[int, bool]]:
    """(version and time zone, {bookable space: booked by whole days}) of a shape."""
    version, tz, spaces, whole_days = [*shape.split(";"), "", "", ""][:4]
    whole = {int(s) for s in whole_days.split(",") if s}
    return f"{version};{tz}", {int(s): int(s) in whole for s in spaces.split(",") if s}


def _same_base(shape: str, other: str) -> bool:
    """Whether two shapes share version and time zone: rows of one can be reshaped to the other."""
    return _shape_spaces(shape)[0] == _shape_spaces(other)[0]


@dataclass
class CacheState:
    exists: bool
    usable: bool  # same version and time zone, and the mark event is still the one it was
    current: bool  # usable, the same spaces, and no audit event after the mark
    mark: int
    newest: int


def _cache_state(conn: Connection, shape: str) -> CacheState:
    s, a = UsageCacheState, AuditEvent
    newest = select(func.max(a.id)).scalar_subquery()
    row = conn.execute(
        select(s.audit_mark, s.mark_at, s.mark_booking_id, s.mark_action, s.shape, a.id, a.at, a.booking_id, a.action)
        .add_columns(newest)
        .outerjoin(a, a.id == s.audit_mark)
        .where(s.id == 1)
    ).first()
    if row is None:
        return CacheState(exists=False, usable=False, current=False, mark=0, newest=0)
    mark, at, booking_id, action, state_shape, event_id, event_at, event_booking, event_action, newest_id = row
    same_mark = mark == 0 or (event_id == mark and (event_at, event_booking, event_action) == (at, booking_id, action))
    usable = _same_base(state_shape, shape) and same_mark
    newest_id = newest_id or 0
    return CacheState(True, usable, usable and state_shape == shape and newest_id == mark, mark, newest_id)


def _refresh_and_fill(
    conn: Connection,
    dialect: str,
    tz: ZoneInfo,
    shape: str,
    state: CacheState,
    needed: Sequence[date],
    space_ids: Sequence[int],
    whole_day_ids: Sequence[int],
) -> bool:
    """Drop the days changed since the mark, move the mark, compute the needed days nobody has.

    False when the cache cannot serve this report now (another set-up is being cached).
    """
    a = AuditEvent
    changed_days: set[date] = set()
    newest: Any = None
    if not state.current:
        try:
            with conn.begin():
                if dialect == "postgresql":
                    # wait out booking writes in flight: each holds its space's row until it commits,
                    # after which every audit event up to the newest id below is visible
                    conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
                    conn.execute(select(Space.id).order_by(Space.id).with_for_update(read=True)).all()
                newest = conn.execute(select(a.id, a.at, a.booking_id, a.action).order_by(a.id.desc()).limit(1)).first()
                if state.usable and newest is not None:
                    starts = conn.execute(
                        select(Booking.start_at)
                        .join(a, a.booking_id == Booking.id)
                        .where(a.id > state.mark, a.id <= newest.id)
                        .distinct()
                    ).scalars()
                    changed_days = {start.astimezone(tz).date() for start in starts}
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
                return False  # a write holds a space for long: group the bookings directly this time
            raise
    # options change the connection in place: IMMEDIATE for this transaction only
    writer = conn.execution_options(sqlite_begin="IMMEDIATE")
    try:
        return _write(writer, dialect, tz, shape, state, newest, changed_days, needed, space_ids, whole_day_ids)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available: a space being changed
            return False
        raise
    finally:
        conn.execution_options(sqlite_begin="DEFERRED")


def _drop_days(writer: Connection, days: Iterable[date]) -> None:
    """Forget the figures of some days, and of the weeks they are in."""
    r, p = UsageCacheRow, UsageCachePiece
    days = sorted(days)
    if not days:
        return
    weeks = sorted({monday_of(day) for day in days})
    writer.execute(
        delete(r).where(
            or_(and_(r.kind.in_(DAY_KINDS), r.day.in_(days)), and_(r.kind.in_(WEEK_KINDS), r.day.in_(weeks)))
        )
    )
    writer.execute(delete(p).where(p.day.in_(days)))


def _week_kind(kind: ColumnElement[Any]) -> ColumnElement[str]:
    """The kind of a week's row summed from rows of this day kind ('d' → 'W', 's' → 'S', 'o' → 'O')."""
    return case((kind == "d", "W"), (kind == "s", "S"), else_="O")


def _add_figures(writer: Connection, dialect: str, grouped: Select[Any], sign: int) -> None:
    """Add grouped figures to the cached days (sign 1), or take them out (sign -1), and to the
    week sums there are (a week summed has all its days cached)."""
    r, g = UsageCacheRow, grouped.subquery("usage_change").c
    figures = GROUPED_COLUMNS[4:]
    summed = select(r.day).where(r.kind == "W").scalar_subquery()
    for source in (
        # SQLite: INSERT … SELECT … ON CONFLICT needs a WHERE to parse
        select(*(g[c] for c in GROUPED_COLUMNS[:4]), *(g[c] * sign for c in figures)).where(true()),
        select(_week_kind(g.kind), g.week, g.key, g.week, *(func.sum(g[c]) * sign for c in figures))
        .where(g.week.in_(summed))
        .group_by(g.kind, g.week, g.key),
    ):
        upsert = (pg_insert if dialect == "postgresql" else sqlite_insert)(r).from_select(GROUPED_COLUMNS, source)
        table = r.__table__.c
        writer.execute(
            upsert.on_conflict_do_update(
                index_elements=["kind", "day", "key"], set_={c: table[c] + upsert.excluded[c] for c in figures}
            )
        )


def _reshape(writer: Connection, dialect: str, tz: ZoneInfo, stored_shape: str, shape: str, mark: int) -> None:
    """Take the figures of the spaces that came, went or changed between whole days and times out
    of the cached days, and put them back as they are now; the other spaces' figures stay.

    Their bookings are as the cached rows counted them, but for changes after the mark: those
    days are dropped. On PostgreSQL the spaces' rows, taken FOR SHARE, keep their bookings
    still until the end of the transaction (SQLite: the write transaction does)."""
    r, p = UsageCacheRow, UsageCachePiece
    before, after = _shape_spaces(stored_shape)[1], _shape_spaces(shape)[1]
    changed = sorted(space for space in before.keys() | after.keys() if before.get(space) != after.get(space))
    if changed:
        if dialect == "postgresql":
            writer.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
            writer.execute(
                select(Space.id).where(Space.id.in_(changed)).order_by(Space.id).with_for_update(read=True)
            ).all()
        starts = writer.execute(
            select(Booking.start_at)
            .join(AuditEvent, AuditEvent.booking_id == Booking.id)
            .where(AuditEvent.id > mark, Booking.space_id.in_(changed))
            .distinct()
        ).scalars()
        _drop_days(writer, {start.astimezone(tz).date() for start in starts})
        cached = [_as_date(day) for day in writer.execute(select(r.day).where(r.kind == "d").order_by(r.day)).scalars()]
        if cached:
            rows = _day_rows(cached, tz)
            gone = [space for space in changed if space in before]
            if gone:
                _add_figures(writer, dialect, _grouped(dialect, rows, gone, [s for s in gone if before[s]]), -1)
            writer.execute(delete(r).where(r.kind.in_(["s", "S"]), r.key.in_(changed)))
            writer.execute(delete(p).where(p.space_id.in_(changed)))
            came = [space for space in changed if space in after]
            if came:
                whole_days = [s for s in came if after[s]]
                _add_figures(writer, dialect, _grouped(dialect, rows, came, whole_days), 1)
                writer.execute(insert(p).from_select(list(PIECE_COLUMNS), _pieces(dialect, rows, came, whole_days)))
            # member units with no booking left that day or week
            writer.execute(delete(r).where(r.kind.in_(["o", "O"]), r.entries == 0))
    writer.execute(update(UsageCacheState).where(UsageCacheState.id == 1).values(shape=shape))


def _write(
    writer: Connection,
    dialect: str,
    tz: ZoneInfo,
    shape: str,
    state: CacheState,
    newest: Any,
    changed_days: set[date],
    needed: Sequence[date],
    space_ids: Sequence[int],
    whole_day_ids: Sequence[int],
) -> bool:
    s, r, p = UsageCacheState, UsageCacheRow, UsageCachePiece
    with writer.begin():
        stored = writer.execute(select(s.audit_mark, s.shape).where(s.id == 1).with_for_update()).first()
        if not state.current:
            mark_values = {
                "audit_mark": newest.id if newest else 0,
                "mark_at": newest.at if newest else None,
                "mark_booking_id": newest.booking_id if newest else None,
                "mark_action": newest.action if newest else None,
            }
            if not state.usable:  # start again
                writer.execute(delete(r))
                writer.execute(delete(p))
                if stored is None:
                    # two first reports at once: the later one waits for the earlier's row, then adds none
                    # and fills only the days the earlier one left out
                    first_state = (pg_insert if dialect == "postgresql" else sqlite_insert)(s)
                    writer.execute(first_state.values(id=1, shape=shape, **mark_values).on_conflict_do_nothing())
                else:
                    writer.execute(update(s).where(s.id == 1).values(shape=shape, **mark_values))
            else:
                if stored is None or not _same_base(stored.shape, shape):
                    return False
                _drop_days(writer, changed_days)
                # only from the mark these changes were read after: a refresh that got there first
                # has moved it (and dropped its own days); the days dropped here cost a recount
                writer.execute(update(s).where(s.id == 1, s.audit_mark == state.mark).values(**mark_values))
        elif stored is None or not _same_base(stored.shape, shape):
            return False  # rows of another set-up, or none: whoever finds it so starts again
        if stored is not None and state.usable and stored.shape != shape:
            _reshape(writer, dialect, tz, stored.shape, shape, state.mark)
        cached = select(r.kind, r.day).where(r.kind.in_(["d", "W"]), r.day >= needed[0], r.day <= needed[-1])
        present = {tuple(row) for row in writer.execute(cached)}
        missing = [day for day in needed if ("d", day) not in present]
        if missing:
            if dialect == "postgresql":
                # for this transaction: no JIT (compiling costs more than the grouping), and a
                # year's grouping in memory (by hash, without spilling to disk)
                writer.execute(select(func.set_config("jit", "off", True), func.set_config("work_mem", "64MB", True)))
            days = _day_rows(missing, tz)
            grouped = _grouped(dialect, days, space_ids, whole_day_ids)
            writer.execute(insert(r).from_select(GROUPED_COLUMNS, grouped))
            writer.execute(insert(p).from_select(list(PIECE_COLUMNS), _pieces(dialect, days, space_ids, whole_day_ids)))
        # the weeks wholly among the needed days, summed once more: a year is then 52 rows a space
        weeks = [w for w in _full_weeks(needed[0], needed[-1]) if ("W", w) not in present]
        if weeks:
            sums = [func.sum(r.__table__.c[c]) for c in GROUPED_COLUMNS[4:]]
            writer.execute(
                insert(r).from_select(
                    GROUPED_COLUMNS,
                    select(_week_kind(r.kind), r.week, r.key, r.week, *sums)
                    .where(
                        r.kind.in_(DAY_KINDS),
                        r.day >= weeks[0],  # the key's range; the weeks themselves may have gaps
                        r.day <= weeks[-1] + timedelta(days=6),
                        r.week.in_(weeks),
                    )
                    .group_by(r.kind, r.week, r.key),
                )
            )
    return True


@dataclass
class DayFigures:
    bookings: int = 0
    people: int = 0
    cancellations: int = 0
    late: int = 0
    micros: int = 0
    unit_micros: int = 0

    def add(self, row: Sequence[Any]) -> None:
        self.bookings += int(row[0])
        self.people += int(row[1])
        self.cancellations += int(row[2])
        self.late += int(row[3])
        self.micros += int(row[4])
        self.unit_micros += int(row[5])

    def figures(self, open_unit_hours: float | None = None) -> Figures:
        return Figures(
            bookings=self.bookings,
            hours=self.micros / MICROS_PER_HOUR,
            unit_hours=self.unit_micros / MICROS_PER_HOUR,
            people=self.people,
            cancellations=self.cancellations,
            late_cancellations=self.late,
            open_unit_hours=open_unit_hours,
        )


@dataclass
class Sums:
    by_week: dict[date, DayFigures] = field(default_factory=lambda: defaultdict(DayFigures))
    by_space: dict[int, DayFigures] = field(default_factory=lambda: defaultdict(DayFigures))
    by_org: dict[int, DayFigures] = field(default_factory=lambda: defaultdict(DayFigures))

    def add(self, kind: str, key: int, week: date, figures: Sequence[Any]) -> None:
        if kind == "d":
            self.by_week[week].add(figures)
        elif kind in ("s", "S"):
            self.by_space[key].add(figures)
        else:
            self.by_org[key].add(figures)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _read_cache(conn: Connection, dialect: str, lead: date, first: date, last: date) -> tuple[Sums, list[Piece]] | None:
    """The cached figures of first..last, summed, and the pieces of lead..last, from one snapshot;
    None when a day is missing (a refresh dropped it since the cache was checked)."""
    sums = Sums()
    if dialect == "postgresql":  # one snapshot for both statements (only this transaction)
        conn.execution_options(isolation_level="REPEATABLE READ")
    try:
        return _read_snapshot(conn, sums, lead, first, last)
    finally:
        if dialect == "postgresql":
            conn.execution_options(isolation_level="READ COMMITTED")


def _read_snapshot(
    conn: Connection, sums: Sums, lead: date, first: date, last: date
) -> tuple[Sums, list[Piece]] | None:
    r, p = UsageCacheRow, UsageCachePiece
    with conn.begin():
        figures = [func.sum(c) for c in (r.bookings, r.people, r.cancellations, r.late_cancellations)]
        figures += [func.sum(r.micros), func.sum(r.unit_micros)]
        # spaces and member units: the whole weeks from their week rows, the days at either end from day rows
        weeks = _full_weeks(first, last)
        if weeks:
            edges = or_(
                and_(r.day >= first, r.day < weeks[0]), and_(r.day > weeks[-1] + timedelta(days=6), r.day <= last)
            )
            by_week = and_(r.kind.in_(["S", "O"]), r.day >= weeks[0], r.day <= weeks[-1])
        else:
            edges, by_week = and_(r.day >= first, r.day <= last), false()
        zero = literal_column("0")
        rows = conn.execute(
            union_all(
                select(r.kind, zero, r.week, *figures)
                .where(r.kind == "d", r.day >= first, r.day <= last)
                .group_by(r.kind, r.week),
                select(r.kind, r.key, func.min(r.week), *figures)
                .where(or_(and_(r.kind.in_(["s", "o"]), edges), by_week))
                .group_by(r.kind, r.key),
                # how many days and whole weeks there are: proof that none is missing
                select(literal_column("'n'"), func.count(), func.min(r.week), *(zero for _ in range(6))).where(
                    or_(
                        and_(r.kind == "d", r.day >= lead, r.day <= last),
                        and_(r.kind == "W", r.day >= weeks[0], r.day <= weeks[-1]) if weeks else false(),
                    )
                ),
            )
        ).all()
        present = 0
        for kind, key, week, *values_ in rows:
            if kind == "n":
                present = int(key)
            elif values_[0] is not None:
                sums.add(kind, int(key), _as_date(week) if week is not None else first, values_)
        if present != (last - lead).days + 1 + len(weeks):
            return None
        pieces = [
            Piece(*row)
            for row in conn.execute(
                select(*(p.__table__.c[c] for c in PIECE_COLUMNS)).where(p.day >= lead, p.day <= last)
            )
        ]
    return sums, pieces


def _read_live(
    session: Session | scoped_session[Session],
    dialect: str,
    tz: ZoneInfo,
    lead: date,
    first: date,
    last: date,
    space_ids: Sequence[int],
    whole_day_ids: Sequence[int],
) -> tuple[Sums, list[Piece]]:
    """The same figures, grouped straight from the bookings (one space, or a cache being rebuilt)."""
    sums = Sums()
    if dialect == "postgresql":
        session.execute(text("SET LOCAL jit = off"))  # its cost guess per day is high: compiling costs more
    days = _day_rows((first + timedelta(days=n) for n in range((last - first).days + 1)), tz)
    for kind, _day, key, week, *figures in session.execute(_grouped(dialect, days, space_ids, whole_day_ids)):
        sums.add(kind, int(key), _as_date(week), figures)
    lead_days = _day_rows((lead + timedelta(days=n) for n in range((last - lead).days + 1)), tz)
    pieces = [Piece(*row) for row in session.execute(_pieces(dialect, lead_days, space_ids, whole_day_ids))]
    return sums, pieces


# -- the report ---------------------------------------------------------------------------


def _cached(
    session: Session | scoped_session[Session], dialect: str, tz: ZoneInfo, lead: date, first: date, last: date
) -> tuple[tuple[Sums, list[Piece]] | None, list[int], bool]:
    """The station's figures from the cache, brought up to date first: (figures or None when the
    cache cannot serve now, the whole-day spaces it was computed with, whether it was written)."""
    needed = [lead + timedelta(days=n) for n in range((last - lead).days + 1)]
    read: tuple[Sums, list[Piece]] | None = None
    wrote = False
    with session.get_bind().connect() as conn:  # not the session's: its loaded objects stay loaded
        with conn.begin():
            bookable = conn.execute(
                select(Space.id, Space.time_mode).where(Space.bookable.is_(True)).order_by(Space.id)
            ).all()
            space_ids = [space for space, _ in bookable]
            whole_day_ids = [space for space, mode in bookable if mode == TimeMode.WHOLE_DAYS]
            shape = cache_shape(tz, space_ids, whole_day_ids)
            state = _cache_state(conn, shape)
        if not space_ids:
            return None, whole_day_ids, wrote
        for attempt in range(3):
            # after a refresh of its own, a report reads what it left, even if newer events came since
            if state.current or attempt:
                read = _read_cache(conn, dialect, lead, first, last)
                if read is not None:
                    break
                if attempt:  # a refresh at the same moment dropped a day: look again
                    with conn.begin():
                        state = _cache_state(conn, shape)
            if attempt == 2:
                break
            wrote = True
            if not _refresh_and_fill(conn, dialect, tz, shape, state, needed, space_ids, whole_day_ids):
                break
    return read, whole_day_ids, wrote


def usage(
    session: Session | scoped_session[Session],
    *,
    first: date,
    last: date,
    tz: ZoneInfo,
    space_id: int | None = None,
    cached: bool = True,
) -> Report:
    """Figures of first..last (local days, inclusive). `cached=False` groups the bookings directly."""
    dialect = session.get_bind().dialect.name
    range_start, range_end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    lead = first - timedelta(days=LEAD_DAYS)

    read: tuple[Sums, list[Piece]] | None = None
    whole_day_ids: list[int] = []
    if space_id is None and cached:
        read, whole_day_ids, wrote = _cached(session, dialect, tz, lead, first, last)
        real = session() if isinstance(session, scoped_session) else session  # Flask-SQLAlchemy's is scoped
        if wrote and dialect == "sqlite" and real.in_transaction() and not (real.new or real.dirty or real.deleted):
            # the session's read snapshot predates what the cache connection wrote: SQLite would
            # refuse to turn it into a write later ("database is locked"). End it, keeping what it loaded.
            keep_loaded_and_end_reads(real)

    spaces = list(session.scalars(select(Space).where(Space.bookable.is_(True)).order_by(Space.sort_order)))
    chosen = [s for s in spaces if space_id is None or s.id == space_id]
    chosen_ids = [s.id for s in chosen]
    if read is None:
        whole_day_ids = [s.id for s in spaces if s.time_mode == TimeMode.WHOLE_DAYS]
        read = (
            _read_live(session, dialect, tz, lead, first, last, chosen_ids, whole_day_ids) if chosen else (Sums(), [])
        )
    closures = list(session.scalars(select(Closure).where(Closure.start_at < range_end, Closure.end_at > range_start)))
    sums, pieces = read

    calendar = Calendar(chosen, first, last, tz, closures)
    mondays = sorted(calendar.by_week)
    by_space = {s.id: sums.by_space.get(s.id, DayFigures()).figures(calendar.by_space[s.id]) for s in chosen}
    by_week = {w: sums.by_week.get(w, DayFigures()).figures(calendar.by_week[w]) for w in mondays}
    by_org: dict[int | None, Figures] = {(key or None): figures.figures() for key, figures in sums.by_org.items()}
    total = Figures(open_unit_hours=calendar.total)
    for figures in by_week.values():
        total.add(figures)

    # the pieces: whole-day bookings, and bookings ending after their start day
    chosen_set = set(chosen_ids)
    whole_days = set(whole_day_ids)
    for piece in pieces:
        if piece.space_id not in chosen_set:
            continue
        start, end = piece.start_at, piece.end_at
        if start < range_start and (end <= range_start or start < range_start - MAX_SPAN):
            continue  # before the range, and not reaching into it
        day = start.astimezone(tz).date()
        week_end = local_midnight(monday_of(day) + timedelta(days=7), tz)
        sticks_out = start < range_start or end > range_end or end > week_end or piece.space_id in whole_days
        if sticks_out:
            parts = list(calendar.clipped(piece.space_id, start, end))
        else:
            parts = [(monday_of(day), (end - start) / timedelta(hours=1))]
        org = by_org.setdefault(piece.organisation_id, Figures())
        for week, hours in parts:
            part = Figures(hours=hours, unit_hours=hours * piece.units)
            for target in (by_space[piece.space_id], total, by_week[week], org):
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
