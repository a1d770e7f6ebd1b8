"""The booking service on a real database: each refusal, each transition, the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from booking.bookings import services
from booking.bookings.models import AuditEvent, Booking
from booking.domain import refusals
from booking.extensions import db
from booking.spaces.models import Closure
from tests.conftest import shanghai

# `now` is Monday 30 Nov 2026 09:00 Shanghai; Tuesday 1 Dec is the usual test day.
TUE = (2026, 12, 1)


def refused(exc_info: pytest.ExceptionInfo[services.BookingRefused]) -> refusals.Refusal:
    return exc_info.value.refusal


def test_request_confirms_and_audits(space, member, book):
    room = space("meeting-room")
    booking = book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 10), title="周会 🗓️")
    assert booking.status == "confirmed"
    assert booking.start_at == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert booking.start_at.tzinfo is not None
    assert booking.title == "周会 🗓️"
    assert booking.organisation_id == member.organisation_id
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.booking_id == booking.id)).all()
    assert [(e.action, e.from_status, e.to_status, e.actor_id) for e in events] == [
        ("request", None, "confirmed", member.id)
    ]


def test_touching_bookings_coexist(space, member, make_user, book):
    room = space("meeting-room")
    book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 10))
    other = book(room, make_user(), shanghai(*TUE, 10), shanghai(*TUE, 11))
    assert other.status == "confirmed"


def test_conflict_names_the_booking_and_the_nearest_free_time(space, member, make_user, book):
    room = space("meeting-room")
    taken = book(room, member, shanghai(*TUE, 10), shanghai(*TUE, 11))
    with pytest.raises(services.BookingRefused) as exc_info:
        book(room, make_user(), shanghai(*TUE, 10, 30), shanghai(*TUE, 11, 30))
    refusal = refused(exc_info)
    assert isinstance(refusal, refusals.Conflict)
    assert refusal.blocking == (taken.id,)
    assert refusal.left == 0
    assert refusal.nearest_free is not None
    assert refusal.nearest_free.start == shanghai(*TUE, 11)
    assert db.session.scalar(select(db.func.count(Booking.id))) == 1


def test_partial_overlaps_on_seats_are_counted_exactly(space, make_user, book):
    room = space("reading-room")
    for _ in range(4):
        book(room, make_user(), shanghai(*TUE, 9), shanghai(*TUE, 10), units=4)  # 16 at 9–10
    for _ in range(4):
        book(room, make_user(), shanghai(*TUE, 10), shanghai(*TUE, 11), units=4)  # 16 at 10–11
    fits = book(room, make_user(), shanghai(*TUE, 9), shanghai(*TUE, 11), units=4)
    assert fits.status == "confirmed"
    with pytest.raises(services.BookingRefused) as exc_info:
        book(room, make_user(), shanghai(*TUE, 9), shanghai(*TUE, 10), units=1)
    assert isinstance(refused(exc_info), refusals.Conflict)
    assert refused(exc_info).left == 0


@pytest.mark.parametrize(
    ("slug", "start", "end", "fields", "expected"),
    [
        ("meeting-room", (*TUE, 9, 15), (*TUE, 10, 15), {}, refusals.OffGrid),
        ("meeting-room", (*TUE, 20, 30), (*TUE, 21, 30), {}, refusals.OutsideOpeningHours),
        ("meeting-room", (2026, 12, 5, 10), (2026, 12, 5, 11), {}, refusals.OutsideOpeningHours),  # Saturday
        ("meeting-room", (*TUE, 9), (*TUE, 14, 30), {}, refusals.TooLong),
        ("reading-room", (*TUE, 9), (*TUE, 10), {"units": 5}, refusals.TooManyUnits),
        ("reading-room", (*TUE, 9), (*TUE, 10), {"units": 21}, refusals.TooManyUnits),
        ("meeting-room", (*TUE, 9), (*TUE, 10), {"attendees": 13}, refusals.TooManyAttendees),
        ("meeting-room", (2026, 11, 30, 8, 30), (2026, 11, 30, 9, 30), {}, refusals.InThePast),
        ("reading-room", (*TUE, 9), (*TUE, 10), {"units": 0}, refusals.NotPositive),
        ("meeting-room", (2026, 11, 30, 9, 0), (2026, 11, 30, 9, 30), {}, refusals.TooSoon),  # 30 min notice
        ("meeting-room", (2027, 1, 5, 9), (2027, 1, 5, 10), {}, refusals.TooFarAhead),  # 30 days ahead
        ("exhibition", (2026, 12, 2), (2026, 12, 3), {}, refusals.TooSoon),  # 7 days' notice
        ("exhibition", (2026, 12, 10, 9), (2026, 12, 11), {}, refusals.OffGrid),  # not whole days
        ("cafe", (*TUE, 10, 15), (*TUE, 10, 45), {}, refusals.NotASlot),
        ("cycling-stop", (*TUE, 10), (*TUE, 11), {}, refusals.NotBookable),
    ],
    ids=[
        "off-grid",
        "after-closing",
        "closed-weekday",
        "too-long",
        "units-over-limit",
        "units-over-capacity",
        "attendees-over-capacity",
        "in-the-past",
        "zero-units",
        "too-soon",
        "too-far-ahead",
        "exhibition-notice",
        "exhibition-partial-day",
        "cafe-half-slot",
        "walk-in-only",
    ],
)
def test_refusals(space, member, book, slug, start, end, fields, expected):
    with pytest.raises(services.BookingRefused) as exc_info:
        book(space(slug), member, shanghai(*start), shanghai(*end), **fields)
    assert isinstance(refused(exc_info), expected)
    assert db.session.scalar(select(db.func.count(Booking.id))) == 0


def test_too_short(space, member, book):
    room = space("reading-room")
    with pytest.raises(services.BookingRefused) as exc_info:
        book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 9, 30))
    # 09:30 is off the reading room's hourly grid, so shape speaks first; on its grid it is too short
    assert isinstance(refused(exc_info), refusals.OffGrid)
    short = space("meeting-room", min_duration_minutes=60)
    with pytest.raises(services.BookingRefused) as exc_info:
        book(short, member, shanghai(*TUE, 9), shanghai(*TUE, 9, 30))
    assert isinstance(refused(exc_info), refusals.TooShort)


def test_too_many_future_bookings(space, member, book):
    room = space("meeting-room", max_future_bookings=2)
    book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 10))
    book(room, member, shanghai(*TUE, 11), shanghai(*TUE, 12))
    with pytest.raises(services.BookingRefused) as exc_info:
        book(room, member, shanghai(*TUE, 14), shanghai(*TUE, 15))
    assert refused(exc_info) == refusals.TooManyFutureBookings(maximum=2)


def test_closure_refuses_and_is_named(space, member, staff, book):
    room = space("meeting-room")
    closure = Closure(
        location_id=room.location_id,
        space_id=None,
        start_at=shanghai(*TUE, 12),
        end_at=shanghai(*TUE, 14),
        reason="设备检修",
        created_by_id=staff.id,
    )
    db.session.add(closure)
    db.session.commit()
    book(room, member, shanghai(*TUE, 11), shanghai(*TUE, 12))  # ends where the closure starts
    with pytest.raises(services.BookingRefused) as exc_info:
        book(room, member, shanghai(*TUE, 13, 30), shanghai(*TUE, 14, 30))
    refusal = refused(exc_info)
    assert isinstance(refusal, refusals.Closed)
    assert (refusal.closure_id, refusal.reason) == (closure.id, "设备检修")


def test_naive_datetime_is_refused(space, member, book):
    with pytest.raises(services.BookingRefused) as exc_info:
        book(space("meeting-room"), member, datetime(2026, 12, 1, 9), datetime(2026, 12, 1, 10))  # noqa: DTZ001
    assert isinstance(refused(exc_info), refusals.NaiveTime)


def test_long_meeting_needs_approval_and_staff_decide(space, member, staff, book, now):
    room = space("meeting-room")
    booking = book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 13))  # over 3 hours
    assert booking.status == "pending"
    approved = services.approve(db.session, services.context(staff, now=now), booking.id)
    assert approved.status == "confirmed"
    assert approved.revision == 1
    assert approved.decided_by_id == staff.id
    with pytest.raises(services.AlreadyDecided) as exc_info:
        services.reject(db.session, services.context(staff, now=now), booking.id, "重复点击")
    assert exc_info.value.status == "confirmed"
    assert exc_info.value.decided_by == "李静"
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.booking_id == booking.id).order_by(AuditEvent.id)
    ).all()
    assert actions == ["request", "confirmed"]


def test_reject_needs_a_reason_and_members_cannot_decide(space, member, staff, book, now):
    booking = book(space("exhibition"), member, shanghai(2026, 12, 10), shanghai(2026, 12, 12))
    assert booking.status == "pending"
    with pytest.raises(services.NotPermitted):
        services.approve(db.session, services.context(member, now=now), booking.id)
    with pytest.raises(services.ReasonRequired):
        services.reject(db.session, services.context(staff, now=now), booking.id, "  ")
    rejected = services.reject(db.session, services.context(staff, now=now), booking.id, "展期与已定活动冲突")
    assert (rejected.status, rejected.decision_reason) == ("rejected", "展期与已定活动冲突")


def test_approve_rechecks_capacity(space, member, make_user, staff, book, now):
    room = space("exhibition")
    first = book(room, member, shanghai(2026, 12, 10), shanghai(2026, 12, 12))
    # staff book the same days for someone else first: staff bookings confirm at once
    other = make_user()
    with pytest.raises(services.BookingRefused):
        book(room, other, shanghai(2026, 12, 11), shanghai(2026, 12, 13), actor=staff)
    services.cancel(db.session, services.context(member, now=now), first.id)
    taken = book(room, other, shanghai(2026, 12, 11), shanghai(2026, 12, 13), actor=staff)
    assert taken.status == "confirmed"
    assert taken.created_by_id == staff.id
    assert taken.requester_id == other.id


def test_cancel_rules(space, member, make_user, staff, book, now):
    room = space("meeting-room")
    mine = book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 10))
    theirs = book(room, make_user(), shanghai(*TUE, 10), shanghai(*TUE, 11))
    with pytest.raises(services.NotPermitted):
        services.cancel(db.session, services.context(member, now=now), theirs.id)
    with pytest.raises(services.ReasonRequired):
        services.cancel(db.session, services.context(staff, now=now), theirs.id)
    after_start = now + timedelta(days=1, minutes=30)
    with pytest.raises(services.NotPermitted):
        services.cancel(db.session, services.context(member, now=after_start), mine.id)
    cancelled = services.cancel(db.session, services.context(member, now=now), mine.id)
    assert (cancelled.status, cancelled.revision) == ("cancelled", 1)
    with pytest.raises(services.AlreadyDecided):
        services.cancel(db.session, services.context(member, now=now), mine.id)
    by_staff = services.cancel(db.session, services.context(staff, now=after_start), theirs.id, "临时闭馆")
    assert (by_staff.status, by_staff.decision_reason) == ("cancelled", "临时闭馆")
    # cancelled bookings hold nothing: the slot is free again
    assert book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 10)).status == "confirmed"


def test_expire_pending(space, member, book, now):
    booking = book(space("exhibition"), member, shanghai(2026, 12, 10), shanghai(2026, 12, 11))
    assert services.expire_pending(db.session, services.context(None, now=now)) == 0
    later = shanghai(2026, 12, 10, 0, 1)
    assert services.expire_pending(db.session, services.context(None, now=later)) == 1
    db.session.refresh(booking)
    assert booking.status == "expired"
    assert services.expire_pending(db.session, services.context(None, now=later)) == 0


def test_staff_override_is_recorded(space, member, staff, book):
    room = space("meeting-room")
    with pytest.raises(services.BookingRefused):
        book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 14), actor=staff)  # 5 h > max 4 h
    booking = book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 14), actor=staff, override_reason="年度大会")
    assert (booking.status, booking.override_reason) == ("confirmed", "年度大会")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.booking_id == booking.id))
    assert (event.reason, event.details) == ("年度大会", {"override": "too_long"})
    # an override never lifts capacity, closures or the grid
    with pytest.raises(services.BookingRefused) as exc_info:
        book(room, member, shanghai(*TUE, 13), shanghai(*TUE, 14), actor=staff, override_reason="急用")
    assert isinstance(refused(exc_info), refusals.Conflict)
    with pytest.raises(services.BookingRefused) as exc_info:
        book(room, member, shanghai(*TUE, 14, 15), shanghai(*TUE, 15), actor=staff, override_reason="急用")
    assert isinstance(refused(exc_info), refusals.OffGrid)


def test_members_cannot_override(space, member, book):
    with pytest.raises(services.BookingRefused) as exc_info:
        book(space("meeting-room"), member, shanghai(*TUE, 9), shanghai(*TUE, 14), override_reason="please")
    assert isinstance(refused(exc_info), refusals.TooLong)


def test_feed_watermarks_move_on_every_change(space, member, book, now):
    room = space("meeting-room")
    before = (room.version, member.version)
    booking = book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 10))
    db.session.refresh(room)
    db.session.refresh(member)
    assert (room.version, member.version) == (before[0] + 1, before[1] + 1)
    assert room.changed_at == now
    later = now + timedelta(minutes=5)
    services.cancel(db.session, services.context(member, now=later), booking.id)
    db.session.refresh(room)
    db.session.refresh(member)
    assert (room.version, member.version) == (before[0] + 2, before[1] + 2)
    assert room.changed_at == member.changed_at == later


def test_watermarks_never_go_back_when_the_clock_does(space, member, book, now):
    """A host whose clock is behind (or a clock stepped back) still moves the version, and
    leaves the later time where it is, so no conditional GET is fooled."""
    room = space("meeting-room")
    first = book(room, member, shanghai(*TUE, 9), shanghai(*TUE, 10))
    db.session.refresh(room)
    version = room.version
    earlier = now - timedelta(hours=1)
    services.cancel(db.session, services.context(member, now=earlier), first.id)
    db.session.refresh(room)
    db.session.refresh(member)
    assert room.version == version + 1
    assert room.changed_at == member.changed_at == now  # not the earlier clock
