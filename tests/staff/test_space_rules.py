"""Editing a space's rules: validated as a whole, never below what is already held, audited."""

from __future__ import annotations

from sqlalchemy import select

from booking.bookings import services
from booking.bookings.models import AuditEvent
from booking.extensions import db
from booking.spaces.models import Space
from booking.staff.forms import format_ranges
from tests.staff.conftest import at, login, weekday_ahead


def rules_form(space: Space, **changes):
    data = {
        "bookable": "y" if space.bookable else "",
        "capacity": space.capacity,
        "unit_label_zh": space.unit_label_zh,
        "unit_label_en": space.unit_label_en,
        "people_capacity": space.people_capacity or "",
        "time_mode": space.time_mode,
        "grid_minutes": space.grid_minutes,
        "fixed_slots": format_ranges(space.fixed_slots),
        "min_duration_minutes": space.min_duration_minutes,
        "max_duration_minutes": space.max_duration_minutes,
        "min_notice_minutes": space.min_notice_minutes,
        "max_advance_days": space.max_advance_days,
        "max_units_per_booking": space.max_units_per_booking,
        "max_future_bookings": space.max_future_bookings or "",
        "approval": space.approval,
        "approval_over_minutes": space.approval_over_minutes or "",
        "titles_public": "y" if space.titles_public else "",
    }
    for day in range(7):
        data[f"hours_{day}"] = format_ranges((space.opening_hours or {}).get(str(day)))
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def test_form_shows_current_rules(client, staff, space):
    login(client, staff)
    text = client.get("/staff/spaces/meeting-room").get_data(as_text=True)
    assert "08:30-21:00" in text


def test_capacity_below_future_holds_lists_them(client, staff, make_user, space, book, real_now):
    room = space("reading-room")
    day = weekday_ahead(2)
    a = book(room, make_user(display_name="甲"), at(day, 10), at(day, 12), units=4, now=real_now)
    b = book(room, make_user(display_name="乙"), at(day, 11), at(day, 13), units=3, now=real_now)
    book(room, make_user(display_name="丙"), at(day, 15), at(day, 16), units=2, now=real_now)
    login(client, staff)
    response = client.post("/staff/spaces/reading-room", data=rules_form(room, capacity=6))
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Future bookings hold more than 6 units at once" in text
    assert f"#{a.id}" in text
    assert f"#{b.id}" in text
    assert "丙" not in text  # 2 seats alone never exceed 6
    db.session.expire_all()
    assert db.session.get(Space, room.id).capacity == 20
    # exactly what is held at the peak is allowed
    assert client.post("/staff/spaces/reading-room", data=rules_form(room, capacity=7)).status_code == 302
    db.session.expire_all()
    assert db.session.get(Space, room.id).capacity == 7


def test_overlapping_opening_hours_are_refused(client, staff, space):
    room = space("meeting-room")
    login(client, staff)
    response = client.post("/staff/spaces/meeting-room", data=rules_form(room, hours_0="08:30-12:00, 11:00-21:00"))
    assert response.status_code == 200
    assert "These intervals overlap" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Space, room.id).opening_hours["0"] == [["08:30", "21:00"]]


def test_longest_booking_is_capped_at_fifteen_days(client, staff, space):
    room = space("exhibition")
    login(client, staff)
    response = client.post("/staff/spaces/exhibition", data=rules_form(room, max_duration_minutes=16 * 1440))
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Space, room.id).max_duration_minutes == 14 * 1440


def test_changes_are_saved_and_audited_before_and_after(client, staff, space):
    room = space("meeting-room")
    login(client, staff)
    response = client.post(
        "/staff/spaces/meeting-room",
        data=rules_form(room, hours_0="08:30-12:00, 13:00-21:00", max_future_bookings=3, unit_label_en="room"),
    )
    assert response.status_code == 302
    db.session.expire_all()
    saved = db.session.get(Space, room.id)
    assert saved.opening_hours["0"] == [["08:30", "12:00"], ["13:00", "21:00"]]
    assert saved.max_future_bookings == 3
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "space_rules"))
    assert event.actor_id == staff.id
    assert event.space_id == room.id
    assert event.details["before"]["max_future_bookings"] == 5
    assert event.details["after"]["max_future_bookings"] == 3
    assert event.details["after"]["opening_hours"]["0"] == [["08:30", "12:00"], ["13:00", "21:00"]]
    trail = client.get(f"/staff/audit?space={room.id}").get_data(as_text=True)
    assert "Opening hours:" in trail
    assert "Mon 08:30–12:00, 13:00–21:00" in trail
    assert "opening_hours" not in trail.split("<tbody>", 1)[1]


def test_new_opening_hours_that_strand_future_bookings_list_them(client, staff, make_user, space, book, real_now):
    room = space("meeting-room")
    day = weekday_ahead(2)
    late = book(room, make_user(display_name="晚会"), at(day, 19), at(day, 20), now=real_now)
    early = book(room, make_user(display_name="早会"), at(day, 9), at(day, 10), now=real_now)
    weekday = str(day.weekday())
    login(client, staff)
    response = client.post("/staff/spaces/meeting-room", data=rules_form(room, **{f"hours_{weekday}": "08:30-18:00"}))
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "would fall outside the new opening hours" in text
    assert f"#{late.id}" in text
    assert f"#{early.id}" not in text  # 09:00-10:00 still fits
    db.session.expire_all()
    assert db.session.get(Space, room.id).opening_hours[weekday] == [["08:30", "21:00"]]
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "space_rules")) is None

    # closing the whole weekday strands both
    response = client.post("/staff/spaces/meeting-room", data=rules_form(room, **{f"hours_{weekday}": ""}))
    text = response.get_data(as_text=True)
    assert f"#{late.id}" in text
    assert f"#{early.id}" in text

    # once the late booking is cancelled, the shorter day is saved
    services.cancel(db.session, services.context(staff), late.id, reason="evenings close at six")
    response = client.post("/staff/spaces/meeting-room", data=rules_form(room, **{f"hours_{weekday}": "08:30-18:00"}))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Space, room.id).opening_hours[weekday] == [["08:30", "18:00"]]


def test_past_bookings_never_block_new_opening_hours(client, staff, make_user, space, book):
    room = space("meeting-room")
    last_week = weekday_ahead(-9)
    # booked under the old hours, a week ago: history, not in the way
    book(room, make_user(), at(last_week, 19), at(last_week, 20), now=at(last_week, 8))
    login(client, staff)
    changed = {f"hours_{d}": "08:30-18:00" for d in range(5)}
    assert client.post("/staff/spaces/meeting-room", data=rules_form(room, **changed)).status_code == 302


def test_a_grid_that_does_not_divide_the_day_is_refused_in_the_staff_language(client, staff, space):
    room = space("meeting-room")
    login(client, staff)
    response = client.post("/staff/spaces/meeting-room", data=rules_form(room, grid_minutes=7))
    assert response.status_code == 200
    assert "The grid must divide a day" in response.get_data(as_text=True)
    staff.language = "zh_Hans_CN"
    db.session.commit()
    response = client.post("/staff/spaces/meeting-room", data=rules_form(room, grid_minutes=7))
    assert "时间刻度须能整除一天" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Space, room.id).grid_minutes == 30
