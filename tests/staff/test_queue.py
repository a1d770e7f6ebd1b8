"""The approval queue and the decisions taken from it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from booking.bookings import services
from booking.bookings.models import AuditEvent, Booking
from booking.extensions import db
from booking.staff import services as staff_services
from tests.staff.conftest import at, login, today, weekday_ahead


def exhibition_request(space, book, member, real_now, first_day, days=1):
    """Exhibition requests always wait for staff."""
    room = space("exhibition", max_future_bookings=None)
    return book(room, member, at(first_day, 0), at(first_day + timedelta(days=days), 0), now=real_now)


def test_queue_lists_pending_soonest_first_with_neighbours(client, staff, member, make_user, space, book, real_now):
    day = weekday_ahead(10)
    later = exhibition_request(space, book, member, real_now, day + timedelta(days=5))
    sooner = exhibition_request(space, book, make_user(), real_now, day)
    neighbour = exhibition_request(space, book, make_user(display_name="邻居"), real_now, day + timedelta(days=1))
    login(client, staff)
    page = client.get("/staff/queue").get_data(as_text=True)
    assert page.index(f"booking-{sooner.id}") < page.index(f"booking-{later.id}")
    assert "邻居" in page  # the request of the day after is shown next to the first
    found = staff_services.pending_page(db.session, page=1, per_page=50)
    assert (found.total, found.dates) == (3, 3)
    first = next(r for r in found.entries if r.booking.id == sooner.id)
    assert [n.id for n in first.neighbours] == [neighbour.id]
    assert first.overlapping == []  # touching days do not overlap


def test_queue_expires_requests_whose_start_passed(client, staff, member, space, book):
    room = space("exhibition", max_future_bookings=None)
    first = today() - timedelta(days=30)
    stale = book(room, member, at(first, 0), at(first + timedelta(days=1), 0), now=at(first - timedelta(days=10), 9))
    login(client, staff)
    client.get("/staff/queue")
    db.session.expire_all()
    assert db.session.get(Booking, stale.id).status == "expired"


def test_approve_from_the_queue(client, staff, member, space, book, real_now):
    pending = exhibition_request(space, book, member, real_now, weekday_ahead(10))
    login(client, staff)
    response = client.post(f"/staff/bookings/{pending.id}/approve", follow_redirects=True)
    assert "Approved booking" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Booking, pending.id).status == "confirmed"


def test_approving_an_already_decided_request_names_who_decided(
    client, staff, make_user, member, space, book, real_now
):
    pending = exhibition_request(space, book, member, real_now, weekday_ahead(10))
    colleague = make_user(display_name="张同事", role="staff")
    services.reject(db.session, services.context(colleague), pending.id, "展期与装修冲突")
    login(client, staff)
    response = client.post(f"/staff/bookings/{pending.id}/approve", follow_redirects=True)
    text = response.get_data(as_text=True)
    assert "Already decided by 张同事" in text
    assert "rejected" in text
    db.session.expire_all()
    assert db.session.get(Booking, pending.id).status == "rejected"


def test_reject_without_a_reason_is_refused(client, staff, member, space, book, real_now):
    pending = exhibition_request(space, book, member, real_now, weekday_ahead(10))
    login(client, staff)
    response = client.post(f"/staff/bookings/{pending.id}/reject", data={"reason": "  "}, follow_redirects=True)
    assert "give a reason" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Booking, pending.id).status == "pending"


def test_reject_with_a_reason_is_recorded_for_the_requester(client, staff, member, space, book, real_now):
    pending = exhibition_request(space, book, member, real_now, weekday_ahead(10))
    login(client, staff)
    client.post(f"/staff/bookings/{pending.id}/reject", data={"reason": "该展期已安排其他活动"})
    db.session.expire_all()
    rejected = db.session.get(Booking, pending.id)
    assert (rejected.status, rejected.decision_reason) == ("rejected", "该展期已安排其他活动")


def test_approve_refused_by_a_closure_says_so(client, staff, member, space, book, real_now):
    day = weekday_ahead(10)
    pending = exhibition_request(space, book, member, real_now, day)
    room = space("exhibition")
    # a closure written behind the service's back (as an older version could have): approval re-checks
    from booking.spaces.models import Closure

    db.session.add(
        Closure(
            location_id=room.location_id, space_id=room.id, start_at=at(day, 0), end_at=at(day, 23), reason="布展维修"
        )
    )
    db.session.commit()
    login(client, staff)
    text = client.post(f"/staff/bookings/{pending.id}/approve", follow_redirects=True).get_data(as_text=True)
    assert "Not approved" in text
    assert "布展维修" in text


def test_staff_cancel_needs_a_reason_and_records_it(client, staff, member, space, book, real_now):
    room = space("meeting-room")
    day = weekday_ahead(3)
    booking = book(room, member, at(day, 10), at(day, 11), now=real_now)
    login(client, staff)
    client.post(f"/staff/bookings/{booking.id}/cancel", data={"reason": ""})
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "confirmed"
    client.post(f"/staff/bookings/{booking.id}/cancel", data={"reason": "会议室设备维修"})
    db.session.expire_all()
    cancelled = db.session.get(Booking, booking.id)
    assert (cancelled.status, cancelled.decision_reason) == ("cancelled", "会议室设备维修")
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.booking_id == booking.id, AuditEvent.action == "cancelled")
    )
    assert event.reason == "会议室设备维修"
    assert event.ip == "127.0.0.1"
