"""Staff book on behalf of a member: requester and creator recorded, overrides audited."""

from __future__ import annotations

from sqlalchemy import select

from booking.bookings.models import AuditEvent, Booking
from booking.extensions import db
from tests.staff.conftest import login, weekday_ahead


def form(member, space, day, start="10:00", end="11:00", **extra):
    data = {
        "member": member.email,
        "space": space.id,
        "day": day.isoformat(),
        "start": start,
        "end": end,
        "title": "电话预约：党员学习会",
        "attendees": 8,
        "units": 1,
    }
    data.update(extra)
    return data


def test_staff_book_for_a_member(client, staff, member, space):
    room = space("meeting-room")
    login(client, staff)
    response = client.post("/staff/book", data=form(member, room, weekday_ahead(3)))
    assert response.status_code == 302
    made = db.session.scalar(select(Booking))
    assert (made.requester_id, made.created_by_id, made.status) == (member.id, staff.id, "confirmed")
    assert made.organisation_id == member.organisation_id


def test_policy_refusal_is_shown_and_an_override_lifts_it_with_an_audit_entry(client, staff, member, space):
    room = space("meeting-room")  # at most 4 hours
    login(client, staff)
    day = weekday_ahead(3)
    refused = client.post("/staff/book", data=form(member, room, day, "09:00", "15:00"))
    assert refused.status_code == 200
    text = refused.get_data(as_text=True)
    assert "Book at most 4" in text
    assert "Give an override reason to lift this limit." in text
    assert db.session.scalar(select(Booking)) is None
    client.post(
        "/staff/book", data=form(member, room, day, "09:00", "15:00", override_reason="理事会全体会议，经站长同意")
    )
    made = db.session.scalar(select(Booking))
    assert made.override_reason == "理事会全体会议，经站长同意"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.booking_id == made.id))
    assert (event.actor_id, event.reason) == (staff.id, "理事会全体会议，经站长同意")
    assert event.details == {"override": "too_long"}


def test_an_override_never_lifts_capacity(client, staff, member, make_user, space, book, real_now):
    room = space("meeting-room")
    day = weekday_ahead(3)
    from tests.staff.conftest import at

    book(room, make_user(), at(day, 10), at(day, 11), now=real_now)
    login(client, staff)
    response = client.post("/staff/book", data=form(member, room, day, override_reason="急用"))
    text = response.get_data(as_text=True)
    assert "That time is already booked." in text
    assert "override reason" not in text  # capacity is never lifted


def test_unknown_member_email_is_a_form_error(client, staff, space):
    login(client, staff)
    room = space("meeting-room")

    class Nobody:
        email = "nobody@example.com"

    response = client.post("/staff/book", data=form(Nobody, room, weekday_ahead(3)))
    assert "No active account has this email" in response.get_data(as_text=True)


def test_member_search_lists_matches(client, staff, member):
    login(client, staff)
    text = client.get("/staff/book?q=member@").get_data(as_text=True)
    assert member.display_name in text
