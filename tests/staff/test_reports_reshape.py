"""A space that becomes (un)bookable or changes between whole days and times: only its own
figures leave or enter the usage report's cache; the other spaces' cached rows stay.

The other spaces' rows are marked (people + 1000) before the change: a cache that threw
everything away and counted again would lose the mark. The mark is then taken off and the
report must equal the same report grouped straight from the bookings.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select, update

from booking.auth.models import Organisation, User
from booking.bookings import services
from booking.extensions import db
from booking.spaces.models import Space
from booking.staff import reports
from booking.staff.models import UsageCachePiece, UsageCacheRow, UsageCacheState
from booking.staff.services import update_space_rules
from tests.bookings.test_concurrency import run_together
from tests.conftest import shanghai
from tests.staff.conftest import TZ
from tests.staff.test_reports_cache import cached_equals_live, statements_run

FIRST, LAST = date(2026, 11, 30), date(2026, 12, 20)
MARK = 1000


@pytest.fixture
def station(make_user, staff, space, book, now):
    """Two member units: A books the reading and meeting rooms; B the cafe, an exhibition, and the
    meeting room once cancelled and once still pending. Every space has figures in the cache."""
    orgs = db.session.scalars(select(Organisation).order_by(Organisation.id)).all()
    a, b = make_user(organisation=orgs[0]), make_user(organisation=orgs[1])
    reading, meeting, cafe, exhibition = (space(s) for s in ("reading-room", "meeting-room", "cafe", "exhibition"))
    book(reading, a, shanghai(2026, 12, 2, 10), shanghai(2026, 12, 2, 12), attendees=2)
    book(reading, a, shanghai(2026, 12, 9, 18), shanghai(2026, 12, 9, 21), units=3)
    book(meeting, a, shanghai(2026, 12, 3, 9), shanghai(2026, 12, 3, 11), attendees=5)
    pending = book(meeting, b, shanghai(2026, 12, 7, 9), shanghai(2026, 12, 7, 13))
    assert pending.status == "pending"
    book(cafe, b, shanghai(2026, 12, 4, 10), shanghai(2026, 12, 4, 10, 30), units=2, attendees=3)
    show = book(exhibition, b, shanghai(2026, 12, 10), shanghai(2026, 12, 12), now=shanghai(2026, 11, 30, 8))
    services.approve(db.session, services.context(staff, now=now), show.id)
    cancelled = book(meeting, b, shanghai(2026, 12, 15, 14), shanghai(2026, 12, 15, 15))
    services.cancel(db.session, services.context(b, now=now), cancelled.id)
    cached_equals_live()
    return {"reading": reading, "meeting": meeting, "cafe": cafe, "exhibition": exhibition, "space": space}


def _mark(space_ids: list[int], by: int) -> None:
    """Add `by` people to the cached rows of these spaces, days and weeks."""
    r = UsageCacheRow
    db.session.execute(update(r).where(r.kind.in_(["s", "S"]), r.key.in_(space_ids)).values(people=r.people + by))
    db.session.commit()


def _marked(space_ids: list[int]) -> int:
    """Percent of these spaces' cached rows, days and weeks, still marked."""
    r = UsageCacheRow
    rows = db.session.execute(select(r.people).where(r.kind.in_(["s", "S"]), r.key.in_(space_ids))).scalars().all()
    assert rows
    return sum(people >= MARK for people in rows) * 100 // len(rows)


def _changes(station: dict[str, Any], slug: str, **rules: Any) -> tuple[list[int], list[tuple[str, Any]]]:
    """Change a space's rules between two reports; (the other spaces, the statements of the second)."""
    others = [station[s].id for s in ("reading", "meeting", "cafe", "exhibition") if station[s].slug != slug]
    db.session.commit()
    assert db.session.scalar(select(func.count()).where(UsageCacheRow.kind == "W")) >= 3  # the weeks are summed
    _mark(others, MARK)
    station["space"](slug, **rules)
    with statements_run() as run:
        reports.usage(db.session, first=FIRST, last=LAST, tz=TZ)
    db.session.commit()  # a fresh snapshot: the cache was written on another connection
    assert _marked(others) == 100
    _mark(others, -MARK)
    return others, run


CHANGES = [
    ("meeting-room", {"bookable": False}),
    ("cafe", {"bookable": False}),  # its member unit had nothing else: it leaves the report
    ("exhibition", {"bookable": False}),  # whole days: its pieces go
    ("reading-room", {"time_mode": "whole_days"}),  # its bookings become pieces
    ("exhibition", {"time_mode": "grid"}),  # its pieces become figures of the day
]


@pytest.mark.parametrize(("slug", "rules"), CHANGES, ids=[f"{s} {r}" for s, r in CHANGES])
def test_one_spaces_change_keeps_the_other_spaces_cached_figures(station, slug, rules):
    before = {rule: getattr(station["space"](slug), rule) for rule in rules}
    _, run = _changes(station, slug, **rules)
    statements = [statement.strip() for statement, _ in run]
    assert "DELETE FROM usage_cache_row" not in statements  # not everything
    assert "DELETE FROM usage_cache_piece" not in statements
    report = cached_equals_live()
    if rules.get("bookable") is False:
        assert slug not in {s.slug for s, _ in report.by_space}
    _changes(station, slug, **before)  # and back again
    cached_equals_live()


def test_a_member_units_day_with_no_booking_left_leaves_the_cache(station):
    cafe = station["cafe"].id
    db.session.commit()
    unit_b = db.session.scalars(select(Organisation).order_by(Organisation.id)).all()[1]
    r = UsageCacheRow

    def rows_of_b() -> int:
        db.session.commit()
        return db.session.scalar(select(func.count()).where(r.kind == "o", r.key == unit_b.id)) or 0

    assert rows_of_b() == 4  # the cafe's day, the exhibition's first, the pending and the cancelled meeting
    station["space"]("cafe", bookable=False)
    report = cached_equals_live()
    assert rows_of_b() == 3
    station["space"]("meeting-room", bookable=False)
    cached_equals_live()
    assert rows_of_b() == 1
    assert cafe not in {s.id for s, _ in report.by_space}
    assert not db.session.scalar(select(func.count()).where(r.kind == "s", r.key == cafe))


def test_spaces_leaving_and_coming_at_once(station):
    db.session.commit()
    _mark([station["reading"].id], MARK)
    station["space"]("meeting-room", bookable=False)
    station["space"]("cafe", time_mode="whole_days")
    station["space"]("exhibition", bookable=False)
    reports.usage(db.session, first=FIRST, last=LAST, tz=TZ)
    db.session.commit()
    assert _marked([station["reading"].id]) == 100
    _mark([station["reading"].id], -MARK)
    cached_equals_live()
    station["space"]("exhibition", bookable=True)
    station["space"]("meeting-room", bookable=True)
    cached_equals_live()
    pieces = db.session.scalar(select(func.count()).select_from(UsageCachePiece))
    assert pieces  # the exhibition's days and the cafe's whole-day booking are pieces again


def test_a_new_time_zone_still_starts_again(station):
    db.session.commit()
    _mark([station["reading"].id], MARK)
    report = reports.usage(db.session, first=FIRST, last=LAST, tz=reports.ZoneInfo("Asia/Tokyo"))
    assert report.total.bookings
    db.session.commit()
    assert _marked([station["reading"].id]) == 0
    shape = db.session.scalar(select(UsageCacheState.shape))
    assert "Asia/Tokyo" in shape


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_reports_a_space_change_and_booking_writes_at_the_same_moment(app, station, make_user, book, staff, round_):
    """Two reports while staff make the meeting room unbookable and a member books and cancels in
    the reading room: no error, and the next report equals the bookings."""
    member = make_user()
    reading, meeting = station["reading"], station["meeting"]
    member_id, staff_id, reading_id, meeting_id = member.id, staff.id, reading.id, meeting.id
    booked = book(reading, member, shanghai(2026, 12, 10, 9), shanghai(2026, 12, 10, 10))
    cached_equals_live()  # the cache knows that booking
    booked_id = booked.id

    def report() -> None:
        reports.usage(db.session, first=FIRST, last=LAST, tz=TZ)

    def switch() -> None:
        actor = db.session.get(User, staff_id)
        update_space_rules(
            db.session, services.context(actor, now=shanghai(2026, 11, 30, 9)), meeting_id, {"bookable": False}
        )

    def write() -> None:
        requester = db.session.get(User, member_id)
        space = db.session.get(Space, reading_id)
        book(space, requester, shanghai(2026, 12, 11, 9), shanghai(2026, 12, 11, 10))
        services.cancel(db.session, services.context(requester, now=shanghai(2026, 11, 30, 9)), booked_id)

    results = run_together(app, [report, report, switch, write])
    assert not [r for r in results if isinstance(r, Exception)], results
    report_ = cached_equals_live()
    assert "meeting-room" not in {s.slug for s, _ in report_.by_space}
