"""The audit trail page: a booking's events, with who decided, for whom, and why."""

from __future__ import annotations

from datetime import timedelta

from booking.bookings import services
from booking.extensions import db
from tests.staff.conftest import at, login, weekday_ahead


def test_a_bookings_trail_names_the_requester_and_the_reason(client, staff, make_user, space, book, real_now):
    requester = make_user(display_name="赵申请")
    day = weekday_ahead(10)
    room = space("exhibition", max_future_bookings=None)
    request = book(room, requester, at(day, 0), at(day + timedelta(days=1), 0), now=real_now)
    services.reject(db.session, services.context(staff), request.id, "展期冲突")
    login(client, staff)
    response = client.get(f"/staff/audit?booking={request.id}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "赵申请" in text  # the subject of each event, named
    assert "展期冲突" in text
