"""The usage report's per-day cache: every booking write shows at once, and the figures equal the bookings'.

Each case reads the report (filling the cache), changes bookings through the services, and
reads it again: the figures must have moved as worked out by hand, and must equal the same
report grouped straight from the bookings (`cached=False`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, event, func, select

from booking.bookings import services
from booking.bookings.models import AuditEvent, Booking, OutgoingMail
from booking.extensions import db
from booking.staff import reports
from booking.staff.models import UsageCacheRow, UsageCacheState
from tests.bookings.test_concurrency import run_together
from tests.conftest import shanghai
from tests.staff.conftest import TZ

FIRST, LAST = date(2026, 11, 30), date(2026, 12, 20)  # three whole weeks, Monday to Sunday


@contextmanager
def statements_run() -> Iterator[list[tuple[str, Any]]]:
    """(statement, parameters) of everything sent to the database inside the block."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def figures(report: reports.Report) -> dict[str, tuple[Any, ...]]:
    """Every number of a report, hours to the microsecond."""

    def numbers(f: reports.Figures) -> tuple[Any, ...]:
        open_hours = None if f.open_unit_hours is None else round(f.open_unit_hours, 6)
        return (
            f.bookings,
            f.people,
            f.cancellations,
            f.late_cancellations,
            round(f.hours, 6),
            round(f.unit_hours, 6),
            open_hours,
        )

    out = {"total": numbers(report.total)}
    out |= {f"week {w}": numbers(f) for w, f in report.by_week}
    out |= {f"space {s.slug}": numbers(f) for s, f in report.by_space}
    out |= {f"unit {o.slug if o else None}": numbers(f) for o, f in report.by_org}
    return out


def cached_equals_live(first: date = FIRST, last: date = LAST) -> reports.Report:
    cached = reports.usage(db.session, first=first, last=last, tz=TZ)
    live = reports.usage(db.session, first=first, last=last, tz=TZ, cached=False)
    assert figures(cached) == figures(live)
    return cached


@pytest.fixture
def station(make_user, staff, space, book, now):
    """A member with two reading-room bookings and a pending meeting-room request, reported once."""
    member = make_user()
    reading, meeting = space("reading-room"), space("meeting-room")
    kept = book(reading, member, shanghai(2026, 12, 2, 10), shanghai(2026, 12, 2, 12), attendees=2)
    dropped = book(reading, member, shanghai(2026, 12, 9, 10), shanghai(2026, 12, 9, 11))
    pending = book(meeting, member, shanghai(2026, 12, 3, 9), shanghai(2026, 12, 3, 13), attendees=5)
    assert pending.status == "pending"
    report = cached_equals_live()
    assert (report.total.bookings, report.total.hours) == (2, 3)
    return {
        "member": member,
        "staff": staff,
        "reading": reading,
        "meeting": meeting,
        "kept": kept,
        "dropped": dropped,
        "pending": pending,
        "book": book,
        "now": now,
    }


@dataclass(frozen=True)
class Change:
    name: str
    act: Callable[[dict[str, Any]], None]
    bookings: int  # the total afterwards
    hours: float
    cancellations: int
    late: int


def _book_more(s: dict[str, Any]) -> None:
    s["book"](s["reading"], s["member"], shanghai(2026, 12, 11, 14), shanghai(2026, 12, 11, 17), attendees=3)


def _approve(s: dict[str, Any]) -> None:
    services.approve(db.session, services.context(s["staff"], now=s["now"]), s["pending"].id)


def _reject(s: dict[str, Any]) -> None:
    services.reject(db.session, services.context(s["staff"], now=s["now"]), s["pending"].id, "占用")


def _member_cancels(s: dict[str, Any]) -> None:
    services.cancel(db.session, services.context(s["member"], now=s["now"]), s["dropped"].id)


def _staff_cancels_late(s: dict[str, Any]) -> None:
    at = shanghai(2026, 12, 2, 9)  # an hour before the start: late
    services.cancel(db.session, services.context(s["staff"], now=at), s["kept"].id, "设备故障")


def _closure(s: dict[str, Any]) -> None:
    services.close(
        db.session,
        services.context(s["staff"], now=s["now"]),
        location_id=s["reading"].location_id,
        space_id=s["reading"].id,
        start=shanghai(2026, 12, 9, 8),
        end=shanghai(2026, 12, 9, 22),
        reason="检修",
        expected_booking_ids={s["dropped"].id},
    )


def _expire(s: dict[str, Any]) -> None:
    services.expire_pending(db.session, services.context(None, now=shanghai(2026, 12, 3, 10)))


CHANGES = [
    Change("a new booking", _book_more, bookings=3, hours=6, cancellations=0, late=0),
    Change("a request approved", _approve, bookings=3, hours=7, cancellations=0, late=0),
    Change("a request rejected", _reject, bookings=2, hours=3, cancellations=0, late=0),
    Change("a member cancels a week ahead", _member_cancels, bookings=1, hours=2, cancellations=1, late=0),
    Change("staff cancel an hour before", _staff_cancels_late, bookings=1, hours=1, cancellations=1, late=1),
    Change("a closure cancels what it covers", _closure, bookings=1, hours=2, cancellations=1, late=0),
    Change("a request expires", _expire, bookings=2, hours=3, cancellations=0, late=0),
]


@pytest.mark.parametrize("change", CHANGES, ids=[c.name for c in CHANGES])
def test_every_booking_write_shows_in_the_next_report(station, change):
    change.act(station)
    report = cached_equals_live()
    total = report.total
    assert (total.bookings, total.hours, total.cancellations, total.late_cancellations) == (
        change.bookings,
        change.hours,
        change.cancellations,
        change.late,
    )


def test_a_second_report_reads_the_cache_not_the_bookings(station):
    with statements_run() as run:
        reports.usage(db.session, first=FIRST, last=LAST, tz=TZ)
    statements = [statement for statement, _ in run]
    assert statements
    assert not [s for s in statements if "FROM booking" in s or "JOIN booking" in s]
    db.session.commit()  # a fresh snapshot: the cache was written on another connection
    assert db.session.scalar(select(func.count()).select_from(UsageCacheRow)) > 0


@pytest.mark.parametrize(
    ("first", "last"),
    [(FIRST, FIRST), (FIRST, LAST), (date(2026, 1, 1), date(2026, 12, 31)), (date(2026, 12, 3), date(2027, 2, 9))],
)
def test_a_cached_report_runs_the_same_statements_whatever_its_range(station, first, last):
    def count() -> int:
        with statements_run() as run:
            reports.usage(db.session, first=first, last=last, tz=TZ)
        return sum(not statement.startswith("BEGIN") for statement, _ in run)

    count()  # fills the cache for this range
    reference = count()
    db.session.expire_all()
    reports.usage(db.session, first=FIRST, last=FIRST, tz=TZ)
    assert count() == reference
    station["book"](station["reading"], station["member"], shanghai(2026, 12, 5, 9), shanghai(2026, 12, 5, 10))
    count()  # refreshes the changed day
    assert count() == reference


def test_a_space_no_longer_bookable_leaves_the_report_and_the_cache_follows(station, space):
    space("reading-room", bookable=False)
    report = cached_equals_live()
    assert "reading-room" not in {s.slug for s, _ in report.by_space}
    assert (report.total.bookings, report.total.hours) == (0, 0)


def test_the_newest_bookings_deleted_with_their_audit_trail_are_noticed(station):
    """Benchmarks delete what they booked last, audit events included (SQLite then reuses the ids).

    The cache sees that the event it had read up to is gone and starts again. (Deleting older
    bookings behind the services' back goes unnoticed: the cache must be cleared then.)
    """
    db.session.commit()  # a fresh snapshot: the cache was written on another connection
    mark = db.session.scalar(select(UsageCacheState.audit_mark))
    assert mark == db.session.scalar(select(func.max(AuditEvent.id)))
    made_last = [station["dropped"].id, station["pending"].id]
    db.session.execute(delete(AuditEvent).where(AuditEvent.booking_id.in_(made_last)))
    db.session.execute(delete(OutgoingMail).where(OutgoingMail.booking_id.in_(made_last)))
    db.session.execute(delete(Booking).where(Booking.id.in_(made_last)))
    db.session.commit()
    report = cached_equals_live()
    assert (report.total.bookings, report.total.hours) == (1, 2)


def test_a_cleared_cache_is_rebuilt(station):
    db.session.execute(delete(UsageCacheState))
    db.session.commit()
    report = cached_equals_live()
    assert (report.total.bookings, report.total.hours) == (2, 3)


@pytest.fixture
def all_night(make_space):
    return make_space(opening_hours={str(d): [["00:00", "24:00"]] for d in range(7)}, max_advance_days=400)


# Sunday 6 December 2026 22:00 to Monday 02:00 crosses the end of a local week;
# Tuesday 8 December 22:00 to Wednesday 01:00 crosses only midnight.
ACROSS = [
    # first, last, {week: (bookings, hours)}
    (date(2026, 12, 6), date(2026, 12, 6), {date(2026, 11, 30): (1, 2)}),  # cut at the range's end
    (date(2026, 12, 7), date(2026, 12, 7), {date(2026, 12, 7): (0, 2)}),  # reaching in from before
    (date(2026, 11, 30), date(2026, 12, 13), {date(2026, 11, 30): (1, 2), date(2026, 12, 7): (1, 5)}),
    (date(2026, 12, 8), date(2026, 12, 8), {date(2026, 12, 7): (1, 2)}),
    (date(2026, 12, 9), date(2026, 12, 9), {date(2026, 12, 7): (0, 1)}),
    (date(2026, 12, 7), date(2026, 12, 9), {date(2026, 12, 7): (1, 5)}),  # 2 h reaching in, 3 h whole
]


@pytest.mark.parametrize(("first", "last", "weeks"), ACROSS)
def test_bookings_across_midnight_and_week_ends_count_inside_the_range(all_night, member, book, first, last, weeks):
    book(all_night, member, shanghai(2026, 12, 6, 22), shanghai(2026, 12, 7, 2))
    book(all_night, member, shanghai(2026, 12, 8, 22), shanghai(2026, 12, 9, 1))
    for cached in (True, False):
        report = reports.usage(db.session, first=first, last=last, tz=TZ, cached=cached)
        by_week = {week: (f.bookings, f.hours) for week, f in report.by_week}
        assert by_week == weeks, cached
        space = {s.id: f for s, f in report.by_space}[all_night.id]
        assert space.hours == pytest.approx(sum(h for _, h in weeks.values()))
        assert space.open_unit_hours == 24 * ((last - first).days + 1)


def test_the_cache_rows_are_exact_microseconds(all_night, member, book):
    book(all_night, member, shanghai(2026, 12, 1, 9), shanghai(2026, 12, 1, 10, 30))
    reports.usage(db.session, first=FIRST, last=LAST, tz=TZ)
    db.session.commit()  # a fresh snapshot: the cache was written on another connection
    micros = db.session.scalar(
        select(UsageCacheRow.micros).where(UsageCacheRow.kind == "s", UsageCacheRow.key == all_night.id)
    )
    assert micros == 90 * 60 * 1_000_000
    week = db.session.scalar(
        select(UsageCacheRow.micros).where(
            UsageCacheRow.kind == "S", UsageCacheRow.key == all_night.id, UsageCacheRow.day == FIRST
        )
    )
    assert week == micros
    assert timedelta(microseconds=micros) == timedelta(hours=1, minutes=30)


# Two spaces open 08:00-22:00 every day, capacity 1 and 3. Closures: the whole station on
# Tuesday 8 December 12:00-14:00; space A all Wednesday 9 December; space B from Thursday
# 10 December 20:00 to Friday 10:00 (2 h of each day).
OPEN_HOURS = [
    # first, last, open unit-hours of A, of B
    (date(2026, 12, 7), date(2026, 12, 7), 14, 14 * 3),
    (date(2026, 12, 8), date(2026, 12, 8), 12, 12 * 3),
    (date(2026, 12, 9), date(2026, 12, 9), 0, 14 * 3),
    (date(2026, 12, 10), date(2026, 12, 10), 14, 12 * 3),
    (date(2026, 12, 11), date(2026, 12, 11), 14, 12 * 3),
    (date(2026, 12, 7), date(2026, 12, 13), 7 * 14 - 2 - 14, (7 * 14 - 2 - 4) * 3),
    (date(2026, 12, 1), date(2026, 12, 31), 31 * 14 - 2 - 14, (31 * 14 - 2 - 4) * 3),
]


@pytest.mark.parametrize(("first", "last", "open_a", "open_b"), OPEN_HOURS)
def test_open_hours_by_weekday_less_closures(make_space, staff, now, first, last, open_a, open_b):
    a, b = make_space(capacity=1), make_space(capacity=3)
    ctx = services.context(staff, now=now)
    closures = [
        (None, shanghai(2026, 12, 8, 12), shanghai(2026, 12, 8, 14)),
        (a.id, shanghai(2026, 12, 9), shanghai(2026, 12, 10)),
        (b.id, shanghai(2026, 12, 10, 20), shanghai(2026, 12, 11, 10)),
    ]
    for space_id, start, end in closures:
        services.close(
            db.session, ctx, location_id=a.location_id, space_id=space_id, start=start, end=end, reason="检修"
        )
    for cached in (True, False):
        report = reports.usage(db.session, first=first, last=last, tz=TZ, cached=cached)
        per_space = {s.id: f.open_unit_hours for s, f in report.by_space}
        assert (per_space[a.id], per_space[b.id]) == (pytest.approx(open_a), pytest.approx(open_b)), cached
        assert sum(f.open_unit_hours for _, f in report.by_week) == pytest.approx(report.total.open_unit_hours)


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_reports_and_booking_writes_at_the_same_moment(app, station, round_):
    """Two reports filling the cache while a booking is made and another cancelled: no error,
    and the next report shows both changes."""
    db.session.execute(delete(UsageCacheState))  # both reports start from nothing
    db.session.commit()
    member, reading, book, now = station["member"], station["reading"], station["book"], station["now"]
    member_id, dropped = member.id, station["dropped"].id

    def report() -> dict[str, tuple[Any, ...]]:
        return figures(reports.usage(db.session, first=FIRST, last=LAST, tz=TZ))

    def write() -> None:
        requester = db.session.get(services.User, member_id)
        book(reading, requester, shanghai(2026, 12, 12, 9), shanghai(2026, 12, 12, 10))
        services.cancel(db.session, services.context(requester, now=now), dropped)

    results = run_together(app, [report, report, write])
    assert not [r for r in results if isinstance(r, Exception)], results
    after = cached_equals_live()
    assert (after.total.bookings, after.total.hours, after.total.cancellations) == (2, 3, 1)


@pytest.mark.sqlite_only
def test_sqlite_reads_each_days_bookings_through_the_start_index(app: Any) -> None:
    """Without statistics SQLite once walked every booking and searched the days for each:
    seconds for a year on 20k bookings. The statements that read bookings by day must start
    from the days and reach each day's bookings through an index bounded by start_at."""
    assert db.engine.dialect.name == "sqlite"  # PostgreSQL plans by its statistics: not tested there
    with statements_run() as run:
        reports.usage(db.session, first=date(2026, 1, 1), last=date(2026, 12, 31), tz=TZ)
        db.session.commit()
    statements = [
        (statement, parameters) for statement, parameters in run if "usage_day" in statement and "booking" in statement
    ]
    assert statements
    raw = db.engine.raw_connection()
    try:
        for statement, parameters in statements:
            plan = [row[3] for row in raw.cursor().execute("EXPLAIN QUERY PLAN " + statement, parameters)]
            booking_steps = [step for step in plan if " booking " in f" {step} "]
            assert booking_steps, plan
            # an index search bounded by the day: start_at>? AND start_at<? (after the space, or alone)
            assert all("SEARCH booking USING" in step and "start_at>?" in step for step in booking_steps), booking_steps
    finally:
        raw.close()


BERLIN = ZoneInfo("Europe/Berlin")


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Berlin's clocks move on Sunday 28 March 2027 at 01:00 UTC (the day is 23 h long) and on
# Sunday 31 October 2027 at 01:00 UTC (25 h): a booking's local day and whether it ends on it
# depend on the offset after the change, not before. {week: (bookings, hours)}
DAYLIGHT_SAVING = [
    (
        date(2027, 3, 22),
        date(2027, 4, 4),
        [
            (_utc(2027, 3, 28, 21, 30), _utc(2027, 3, 28, 22, 30)),  # Sunday 23:30 to Monday 00:30
            (_utc(2027, 3, 28, 22, 30), _utc(2027, 3, 28, 23, 30)),  # Monday 00:30 to 01:30
        ],
        {date(2027, 3, 22): (1, 0.5), date(2027, 3, 29): (1, 1.5)},
    ),
    (
        date(2027, 10, 25),
        date(2027, 11, 7),
        [
            (_utc(2027, 10, 31, 22, 30), _utc(2027, 10, 31, 23, 30)),  # Sunday 23:30 to Monday 00:30
            (_utc(2027, 11, 1, 0, 0), _utc(2027, 11, 1, 1, 0)),  # Monday 01:00 to 02:00
        ],
        {date(2027, 10, 25): (1, 0.5), date(2027, 11, 1): (1, 1.5)},
    ),
]


@pytest.mark.parametrize(("first", "last", "bookings", "weeks"), DAYLIGHT_SAVING, ids=["spring", "autumn"])
def test_local_days_across_a_daylight_saving_change(all_night, member, book, first, last, bookings, weeks):
    all_night.location.timezone = BERLIN.key  # the station and its opening hours in Berlin
    db.session.commit()
    for start, end in bookings:
        book(all_night, member, start, end)
    for cached in (True, False, True):
        report = reports.usage(db.session, first=first, last=last, tz=BERLIN, cached=cached)
        by_week = {week: (f.bookings, f.hours) for week, f in report.by_week}
        assert by_week == weeks, cached


@pytest.mark.sqlite_only
def test_sqlite_before_3_38_counts_the_same(monkeypatch, all_night, member, book):
    """SQLite older than 3.38 has no unixepoch(): the report falls back to strftime('%s'), which
    must give the same figures to the microsecond (this machine's SQLite is newer, so force it)."""
    book(all_night, member, shanghai(2026, 12, 1, 9), shanghai(2026, 12, 1, 10, 30))
    book(all_night, member, shanghai(2026, 12, 6, 22), shanghai(2026, 12, 7, 2))  # across a week's end
    expected = figures(reports.usage(db.session, first=FIRST, last=LAST, tz=TZ, cached=False))
    assert expected["total"][4] == pytest.approx(1.5 + 4)

    old = type("OldSqlite3", (), {"sqlite_version_info": (3, 37, 2)})
    monkeypatch.setattr(reports, "sqlite3", old)
    with statements_run() as seen:
        cached = reports.usage(db.session, first=FIRST, last=LAST, tz=TZ)
        live = reports.usage(db.session, first=FIRST, last=LAST, tz=TZ, cached=False)
    assert any("strftime" in statement for statement, _ in seen)
    assert not any("unixepoch(" in statement for statement, _ in seen)
    assert figures(cached) == expected
    assert figures(live) == expected
