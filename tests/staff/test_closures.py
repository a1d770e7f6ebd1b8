"""Closures: bookings in the way are listed first, then cancelled with the closure's reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from booking.bookings import services
from booking.bookings.models import AuditEvent, Booking
from booking.extensions import db
from booking.spaces.models import Closure
from tests.staff.conftest import at, login, weekday_ahead


def closure_form(space_id, day, reason="空调检修", start="00:00", end="24:00", last=None):
    return {
        "space": space_id,
        "first_day": day.isoformat(),
        "start": start,
        "last_day": (last or day).isoformat(),
        "end": end,
        "reason": reason,
    }


def test_closure_over_bookings_lists_them_then_cancels_them(client, staff, member, make_user, space, book, real_now):
    room, reading = space("meeting-room"), space("reading-room")
    day = weekday_ahead(3)
    first = book(room, member, at(day, 10), at(day, 11), now=real_now, title="部门例会")
    second = book(reading, make_user(display_name="读者"), at(day, 14), at(day, 16), now=real_now)
    elsewhere = book(room, member, at(day + timedelta(days=1), 10), at(day + timedelta(days=1), 11), now=real_now)
    login(client, staff)

    preview = client.post("/staff/closures", data=closure_form(0, day, reason="消防演练，全站关闭"))
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "部门例会" in text
    assert "读者" in text
    assert db.session.scalar(select(Closure)) is None  # nothing happens before staff confirm
    db.session.expire_all()
    assert db.session.get(Booking, first.id).status == "confirmed"

    confirm = closure_form(0, day, reason="消防演练，全站关闭") | {
        "confirm": "1",
        "expected": [str(first.id), str(second.id)],
    }
    response = client.post("/staff/closures", data=confirm, follow_redirects=True)
    assert "2 bookings were cancelled" in response.get_data(as_text=True)
    db.session.expire_all()
    for booking_id in (first.id, second.id):
        cancelled = db.session.get(Booking, booking_id)
        assert (cancelled.status, cancelled.decision_reason, cancelled.decided_by_id) == (
            "cancelled",
            "消防演练，全站关闭",
            staff.id,
        )
    assert db.session.get(Booking, elsewhere.id).status == "confirmed"
    closure = db.session.scalar(select(Closure))
    assert (closure.space_id, closure.reason) == (None, "消防演练，全站关闭")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "closure"))
    assert event.actor_id == staff.id
    assert sorted(event.details["cancelled"]) == sorted([first.id, second.id])
    assert "消防演练" in client.get("/staff/closures").get_data(as_text=True)


def test_closure_without_bookings_is_created_at_once(client, staff, space):
    room = space("meeting-room")
    login(client, staff)
    day = weekday_ahead(3)
    response = client.post("/staff/closures", data=closure_form(room.id, day, start="13:00", end="15:00"))
    assert response.status_code == 302
    closure = db.session.scalar(select(Closure))
    assert (closure.space_id, closure.start_at, closure.end_at) == (room.id, at(day, 13), at(day, 15))


def test_a_booking_made_after_the_preview_is_shown_before_it_is_cancelled(
    client, staff, member, make_user, space, book, real_now
):
    room = space("meeting-room")
    day = weekday_ahead(3)
    seen = book(room, member, at(day, 10), at(day, 11), now=real_now)
    login(client, staff)
    client.post("/staff/closures", data=closure_form(room.id, day))
    unseen = book(room, make_user(), at(day, 15), at(day, 16), now=real_now)
    confirm = closure_form(room.id, day) | {"confirm": "1", "expected": [str(seen.id)]}
    response = client.post("/staff/closures", data=confirm)
    assert "New bookings appeared" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Booking, unseen.id).status == "confirmed"
    assert db.session.get(Booking, seen.id).status == "confirmed"
    assert db.session.scalar(select(Closure)) is None


def test_close_service_notifies_each_cancellation(app, staff, member, space, book, real_now):
    room = space("meeting-room")
    day = weekday_ahead(3)
    booking = book(room, member, at(day, 10), at(day, 11), now=real_now)
    heard = []

    def listener(session, changed, kind, actor, reason):
        heard.append((changed.id, kind, reason))

    services.listeners.append(listener)
    try:
        services.close(
            db.session,
            services.context(staff),
            location_id=room.location_id,
            space_id=room.id,
            start=at(day, 0),
            end=at(day + timedelta(days=1), 0),
            reason="停电检修",
            expected_booking_ids={booking.id},
        )
    finally:
        services.listeners.remove(listener)
    assert heard == [(booking.id, "cancelled", "停电检修")]


def test_members_cannot_close(app, member, space):
    room = space("meeting-room")
    day = weekday_ahead(3)
    with pytest.raises(services.NotPermitted):
        services.close(
            db.session,
            services.context(member),
            location_id=room.location_id,
            space_id=room.id,
            start=at(day, 0),
            end=at(day, 12),
            reason="x",
        )
