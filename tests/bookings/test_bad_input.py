"""Whatever arrives in a URL or a form, the answer is a clear page, never a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from booking.bookings.models import Booking
from booking.extensions import db
from tests.spaces.helpers import local, login, today, weekday_ahead


@pytest.fixture
def logged_in(client, member):
    login(client, member.email)
    return client


def bookings():
    return db.session.scalars(select(Booking)).all()


@pytest.mark.parametrize(
    "value",
    ["bad", "2026-13-01", "2026-02-30", "99999-01-01", "0001-01-01", "2026-1-1", "2026-12-01T09:00", "%00", "２０２６"],
)
def test_malformed_week_date_falls_back_to_this_week(client, value):
    response = client.get("/spaces/meeting-room", query_string={"date": value})
    assert response.status_code == 200
    assert "That date could not be read" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        "start=garbage&end=x",
        "start=2026-12-01T25:00&end=2026-12-01T26:00",
        "start=99999-01-01T09:00",
        "start=2026-12-01T09:17&end=2026-12-01T09:43",
        "end=2026-12-01T09:00",
        "start=2026-12-01T10:00&end=2026-12-01T09:00",
    ],
)
@pytest.mark.parametrize("slug", ["meeting-room", "cafe", "exhibition", "reading-room"])
def test_malformed_prefill_still_shows_the_form(logged_in, slug, query):
    assert logged_in.get(f"/spaces/{slug}/book?{query}").status_code == 200


def meeting(on=None, **fields):
    on = on or weekday_ahead(3)
    data = {"title": "周会", "day": on.isoformat(), "start_time": "09:00", "end_time": "10:00", "attendees": 4}
    data.update(fields)
    return data


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start_time": "11:00", "end_time": "10:00"}, "The end must come after the start."),
        ({"start_time": "10:00", "end_time": "10:00"}, "The end must come after the start."),
        ({"start_time": "09:17"}, None),  # WTForms' own message, translated by its catalog
        ({"end_time": "25:00"}, None),
        ({"day": "2026-02-30"}, None),
        ({"day": "9999-12-31"}, "That date is too far away."),
        ({"day": ""}, "Pick a date."),
        ({"attendees": "13"}, "At most 12 people fit here."),
        ({"attendees": "0"}, "At most 12 people fit here."),
        ({"attendees": "-5"}, "At most 12 people fit here."),
        ({"attendees": str(10**30)}, "At most 12 people fit here."),
        ({"attendees": "twelve"}, None),
        ({"title": ""}, "Say in a few words"),
        ({"title": "   "}, "Say in a few words"),
        ({"title": "长" * 10_000}, "At most 200 characters"),
        ({"title": "bad\x00title"}, "cannot be stored"),
    ],
)
def test_bad_meeting_room_forms_get_errors(logged_in, fields, message):
    response = logged_in.post("/spaces/meeting-room/book", data=meeting(**fields))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "invalid-feedback" in html
    if message:
        assert message in html
    assert bookings() == []


def test_reversed_whole_day_range(logged_in):
    first = today() + timedelta(days=10)
    response = logged_in.post(
        "/spaces/exhibition/book",
        data={"title": "展", "first_day": first.isoformat(), "last_day": (first - timedelta(days=2)).isoformat()},
    )
    assert response.status_code == 422
    assert "The last day comes before the first." in response.get_data(as_text=True)


@pytest.mark.parametrize("last", ["2099-12-31", "9999-12-31"])
def test_huge_whole_day_range(logged_in, last):
    first = today() + timedelta(days=10)
    response = logged_in.post(
        "/spaces/exhibition/book", data={"title": "展", "first_day": first.isoformat(), "last_day": last}
    )
    assert response.status_code == 422
    assert bookings() == []


def test_too_long_but_plausible_whole_day_range_is_the_rules_refusal(logged_in):
    first = today() + timedelta(days=10)
    response = logged_in.post(
        "/spaces/exhibition/book",
        data={"title": "展", "first_day": first.isoformat(), "last_day": (first + timedelta(days=30)).isoformat()},
    )
    assert response.status_code == 409
    assert "Book at most 14 days at a time." in response.get_data(as_text=True)


@pytest.mark.parametrize(("units", "status"), [("0", 422), ("5", 422), ("-1", 422), ("x", 422), ("4", 302)])
def test_units_are_checked(logged_in, units, status):
    day = today() + timedelta(days=2)
    response = logged_in.post(
        "/spaces/reading-room/book",
        data={"title": "自习", "day": day.isoformat(), "start_time": "10:00", "end_time": "11:00", "units": units},
    )
    assert response.status_code == status


def test_cafe_slot_outside_the_list(logged_in):
    day = weekday_ahead(2)
    data = {"title": "x", "day": day.isoformat(), "slot": "09:00", "slot_count": "1", "units": 1, "attendees": 2}
    assert logged_in.post("/spaces/cafe/book", data=data).status_code == 422
    data.update(slot="16:30", slot_count="2")  # the last slot has no next one
    response = logged_in.post("/spaces/cafe/book", data=data)
    assert response.status_code == 409
    assert bookings() == []


def test_chinese_and_emoji_title_is_kept_intact(logged_in):
    title = "🏦 外滩金融读书会：《陆家嘴》第 3 章 👩‍💼👨‍💼 — naïve café"
    response = logged_in.post("/spaces/meeting-room/book", data=meeting(title=title))
    assert response.status_code == 302
    db.session.expire_all()
    assert bookings()[0].title == title
    assert title in logged_in.get(response.headers["Location"]).get_data(as_text=True)


def test_title_of_exactly_200_characters_is_fine(logged_in):
    response = logged_in.post("/spaces/meeting-room/book", data=meeting(title="好" * 200))
    assert response.status_code == 302


def test_past_time_is_refused_not_crashed(logged_in):
    day = today() - timedelta(days=7)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    response = logged_in.post("/spaces/meeting-room/book", data=meeting(on=day))
    assert response.status_code == 409
    assert "That time has already passed." in response.get_data(as_text=True)


def test_walk_in_space_cannot_be_booked(logged_in):
    response = logged_in.post("/spaces/cycling-stop/book", data={"title": "x"})
    assert response.status_code == 302
    assert logged_in.get("/spaces/nowhere/book").status_code == 404


@pytest.mark.parametrize("path", ["/bookings/abc", "/bookings/-1", "/bookings/99999999999999999999.ics"])
def test_odd_booking_ids(logged_in, path):
    assert logged_in.get(path).status_code == 404


def test_prefill_keeps_local_time(logged_in):
    day = weekday_ahead(3)
    html = logged_in.get(f"/spaces/meeting-room/book?start={local(day, 20, 30)}&end={local(day, 21)}").get_data(
        as_text=True
    )
    assert '<option selected value="20:30">' in html
    assert '<option selected value="21:00">' in html
