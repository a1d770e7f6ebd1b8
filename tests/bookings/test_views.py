"""Booking in the browser: the form per time mode, refusals with the nearest free time, my bookings, .ics."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from booking.bookings import services
from booking.bookings.forms import refusal_message
from booking.bookings.models import Booking
from booking.domain import refusals
from booking.domain.intervals import Interval
from booking.extensions import db
from booking.spaces.models import Closure, Space
from tests.spaces.helpers import at, book_as, local, login, today, weekday_ahead


def only_booking() -> Booking:
    return db.session.scalars(select(Booking)).one()


def test_form_prefills_from_the_grid(client, member):
    login(client, member.email)
    day = weekday_ahead(3)
    html = client.get(f"/spaces/meeting-room/book?start={local(day, 9)}&end={local(day, 10, 30)}").get_data(
        as_text=True
    )
    assert f'value="{day.isoformat()}"' in html
    assert '<option selected value="09:00">' in html
    assert '<option selected value="10:30">' in html
    assert "need staff approval" in html  # said before submitting
    assert 'name="units"' not in html  # one room: no units to choose


def test_anonymous_is_sent_to_log_in(client):
    response = client.get("/spaces/meeting-room/book")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_booking_from_the_form_is_confirmed(client, member):
    login(client, member.email)
    day = weekday_ahead(3)
    response = client.post(
        "/spaces/meeting-room/book",
        data={"title": "周会 🗓️", "day": day.isoformat(), "start_time": "09:00", "end_time": "10:30", "attendees": 6},
    )
    booking = only_booking()
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/bookings/{booking.id}")
    assert (booking.title, booking.status, booking.attendees) == ("周会 🗓️", "confirmed", 6)
    assert booking.start_at == at(day, 9)
    assert booking.end_at == at(day, 10, 30)
    page = client.get(f"/bookings/{booking.id}").get_data(as_text=True)
    assert "Booked and confirmed" in page
    assert "周会 🗓️" in page


def test_long_meeting_waits_for_approval(client, member):
    login(client, member.email)
    day = weekday_ahead(3)
    client.post(
        "/spaces/meeting-room/book",
        data={"title": "全天培训", "day": day.isoformat(), "start_time": "09:00", "end_time": "12:30", "attendees": 3},
    )
    assert only_booking().status == "pending"
    assert "waiting for approval" in client.get("/bookings").get_data(as_text=True).lower()


def test_exhibition_books_whole_days_inclusive(client, member):
    login(client, member.email)
    first = today() + timedelta(days=10)
    html = client.get(f"/spaces/exhibition/book?start={first}&end={first}").get_data(as_text=True)
    assert "Staff review every request" in html
    assert 'name="title_public"' in html
    response = client.post(
        "/spaces/exhibition/book",
        data={
            "title": "绿色金融主题展",
            "first_day": first.isoformat(),
            "last_day": (first + timedelta(days=2)).isoformat(),
            "title_public": "y",
        },
    )
    assert response.status_code == 302
    booking = only_booking()
    assert booking.status == "pending"
    assert booking.title_public is True
    assert booking.start_at == at(first, 0)
    assert booking.end_at == at(first + timedelta(days=3), 0)  # "1 to 3 December" holds three days


def test_cafe_books_a_run_of_slots_with_tables(client, member):
    login(client, member.email)
    day = weekday_ahead(2)
    html = client.get(f"/spaces/cafe/book?start={local(day, 14)}&end={local(day, 15)}").get_data(as_text=True)
    assert '<option selected value="14:00">14:00–14:30</option>' in html
    assert '<option selected value="2">' in html
    client.post(
        "/spaces/cafe/book",
        data={
            "title": "咖啡时间",
            "day": day.isoformat(),
            "slot": "14:00",
            "slot_count": "2",
            "units": 2,
            "attendees": 5,
        },
    )
    booking = only_booking()
    assert (booking.start_at, booking.end_at, booking.units) == (at(day, 14), at(day, 15), 2)


def test_reading_room_seats_are_the_people(client, member):
    login(client, member.email)
    day = today() + timedelta(days=2)
    html = client.get("/spaces/reading-room/book").get_data(as_text=True)
    assert 'name="units"' in html
    assert 'name="attendees"' not in html
    client.post(
        "/spaces/reading-room/book",
        data={"title": "自习", "day": day.isoformat(), "start_time": "10:00", "end_time": "12:00", "units": 3},
    )
    booking = only_booking()
    assert (booking.units, booking.attendees) == (3, 3)


def test_conflict_shows_the_message_and_the_nearest_free_time(client, member, make_user, space):
    room = space("meeting-room")
    day = weekday_ahead(3)
    other = make_user()
    book_as(other, room, at(day, 10), at(day, 11), "x")
    login(client, member.email)
    response = client.post(
        "/spaces/meeting-room/book",
        data={"title": "撞车", "day": day.isoformat(), "start_time": "10:00", "end_time": "11:00", "attendees": 2},
    )
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "That time is already booked." in html
    assert "nearest-free" in html
    link = re.search(r'<a class="alert-link nearest-free" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert f"start={local(day, 11)}" in link
    assert f"end={local(day, 12)}" in link
    assert 'value="撞车"' in html  # what they typed is kept

    # the nearest free time's link opens the form at that time with everything else they typed
    offered = client.get(link).get_data(as_text=True)
    assert 'value="撞车"' in offered
    attendees = re.search(r'<input[^>]*name="attendees"[^>]*>', offered).group(0)
    assert 'value="2"' in attendees
    start = re.search(r'<select[^>]*name="start_time"[^>]*>(.*?)</select>', offered, re.S).group(1)
    assert re.search(r'<option selected value="11:00">', start)


def test_a_conflict_with_ones_own_booking_names_it_and_others_stay_anonymous(client, member, make_user, space):
    room = space("meeting-room")
    day = weekday_ahead(3)
    book_as(member, room, at(day, 10), at(day, 11), "Weekly sync")
    other = make_user(display_name="路人甲")
    book_as(other, room, at(day, 14), at(day, 15), "Secret board meeting")
    login(client, member.email)

    mine = client.post(
        "/spaces/meeting-room/book",
        data={"title": "again", "day": day.isoformat(), "start_time": "10:30", "end_time": "11:30", "attendees": 2},
    )
    assert mine.status_code == 409
    html = mine.get_data(as_text=True)
    assert "You already have “Weekly sync”" in html
    assert "10:00" in html.split("You already have", 1)[1][:120]

    theirs = client.post(
        "/spaces/meeting-room/book",
        data={"title": "again", "day": day.isoformat(), "start_time": "14:00", "end_time": "15:00", "attendees": 2},
    )
    assert theirs.status_code == 409
    html = theirs.get_data(as_text=True)
    assert "That time is already booked." in html
    assert "Secret board meeting" not in html
    assert "路人甲" not in html


def test_seats_conflict_names_the_units_left(client, member, make_user, space):
    room = space("reading-room")
    day = today() + timedelta(days=2)
    for units in (4, 4, 4, 4, 1):
        person = make_user()
        services.request_booking(
            db.session,
            services.context(person),
            space_id=room.id,
            requester=person,
            start=at(day, 10),
            end=at(day, 11),
            title="x",
            units=units,
        )
    login(client, member.email)
    response = client.post(
        "/spaces/reading-room/book",
        data={"title": "自习", "day": day.isoformat(), "start_time": "10:00", "end_time": "11:00", "units": 4},
    )
    assert response.status_code == 409
    assert "Only 3 of 20 seats left at that time." in response.get_data(as_text=True)


def test_closure_refusal_names_the_reason(client, member, space, staff):
    room = space("meeting-room")
    day = weekday_ahead(3)
    db.session.add(
        Closure(
            location_id=room.location_id, start_at=at(day, 0), end_at=at(day + timedelta(days=1), 0), reason="消防演练"
        )
    )
    db.session.commit()
    login(client, member.email)
    response = client.post(
        "/spaces/meeting-room/book",
        data={"title": "x", "day": day.isoformat(), "start_time": "09:00", "end_time": "10:00", "attendees": 2},
    )
    assert response.status_code == 409
    assert "消防演练" in response.get_data(as_text=True)


def test_too_far_ahead_names_the_limit(client, member):
    login(client, member.email)
    day = weekday_ahead(40)
    response = client.post(
        "/spaces/meeting-room/book",
        data={"title": "x", "day": day.isoformat(), "start_time": "09:00", "end_time": "10:00", "attendees": 2},
    )
    assert response.status_code == 409
    assert "at most 30 days ahead" in response.get_data(as_text=True)


def _sample(cls: type[refusals.Refusal], start):
    values = {
        "grid_minutes": 30,
        "closure_id": 1,
        "reason": "春节闭馆",
        "interval": Interval(start, start + timedelta(hours=2)),
        "minimum": timedelta(minutes=30),
        "maximum": 3,
        "earliest": start,
        "latest": start,
        "blocking": (1,),
        "left": 2,
        "nearest_free": None,
    }
    fields = {f.name: values[f.name] for f in dataclasses.fields(cls)}
    if cls in (refusals.TooShort, refusals.TooLong):
        fields = {next(iter(fields)): timedelta(hours=4)}
    return cls(**fields)


def _all_refusal_types():
    found, todo = [], [refusals.Refusal]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


@pytest.mark.parametrize("slug", ["meeting-room", "reading-room", "exhibition"])
def test_every_refusal_type_has_its_own_sentence(app, slug):
    space = db.session.scalar(select(Space).where(Space.slug == slug))
    start = at(today() + timedelta(days=3), 9)
    generic = "The booking could not be made."
    types = _all_refusal_types()
    assert len(types) >= 16
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        messages = {cls.__name__: refusal_message(_sample(cls, start), space) for cls in types}
        assert refusal_message(refusals.Refusal(), space) == generic
    for name, message in messages.items():
        assert message, name
        assert message != generic, name
    assert "春节闭馆" in messages["Closed"]


def test_my_bookings_lists_upcoming_and_past_with_reasons(client, member, staff, space):
    room = space("meeting-room")
    day = weekday_ahead(3)
    ctx = services.context(member)
    kept = services.request_booking(
        db.session, ctx, space_id=room.id, requester=member, start=at(day, 9), end=at(day, 10), title="保留"
    )
    long = services.request_booking(
        db.session, ctx, space_id=room.id, requester=member, start=at(day, 13), end=at(day, 17), title="太长"
    )
    dropped = services.request_booking(
        db.session, ctx, space_id=room.id, requester=member, start=at(day, 11), end=at(day, 12), title="被取消"
    )
    services.reject(db.session, services.context(staff), long.id, "会议室当天另有安排")
    services.cancel(db.session, services.context(staff), dropped.id, reason="设备故障")
    login(client, member.email)
    html = client.get("/bookings").get_data(as_text=True)
    assert "保留" in html
    assert "Confirmed" in html
    assert "Rejected" in html
    assert "会议室当天另有安排" in html
    assert "Cancelled" in html
    assert "设备故障" in html
    assert "李静" in html
    assert f"/bookings/{kept.id}" in html


def test_detail_cancel_and_confirmation_page(client, member, space):
    room = space("meeting-room")
    day = weekday_ahead(3)
    booking = book_as(member, room, at(day, 9), at(day, 10), "取消我")
    login(client, member.email)
    html = client.get(f"/bookings/{booking.id}").get_data(as_text=True)
    assert "data-confirm=" in html
    assert f"/bookings/{booking.id}.ics" in html
    confirm = client.get(f"/bookings/{booking.id}/cancel")
    assert confirm.status_code == 200
    assert "Yes, cancel it" in confirm.get_data(as_text=True)
    response = client.post(f"/bookings/{booking.id}/cancel")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "cancelled"
    again = client.post(f"/bookings/{booking.id}/cancel", follow_redirects=True)
    assert "Nothing changed" in again.get_data(as_text=True)


def test_ics_is_one_event_with_a_stable_uid(client, member, space):
    room = space("meeting-room")
    day = weekday_ahead(3)
    booking = book_as(member, room, at(day, 9), at(day, 10), "周会, 带逗号; 🗓️")
    login(client, member.email)
    response = client.get(f"/bookings/{booking.id}.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    body = response.get_data(as_text=True)
    assert body.count("BEGIN:VEVENT") == 1
    assert f"UID:booking-{booking.id}@station.test" in body
    assert "SEQUENCE:0" in body
    assert f"DTSTART;TZID=Asia/Shanghai:{day:%Y%m%d}T090000" in body
    assert "周会\\, 带逗号\\; 🗓️" in body


def test_ics_of_whole_days_uses_dates_with_exclusive_end(client, member, space):
    room = space("exhibition")
    first = today() + timedelta(days=10)
    booking = book_as(member, room, at(first, 0), at(first + timedelta(days=3), 0), "展览")
    login(client, member.email)
    body = client.get(f"/bookings/{booking.id}.ics").get_data(as_text=True)
    assert f"DTSTART;VALUE=DATE:{first:%Y%m%d}" in body
    assert f"DTEND;VALUE=DATE:{first + timedelta(days=3):%Y%m%d}" in body
    assert "STATUS:TENTATIVE" in body
