"""Repeating bookings in the member pages: the repeat form, the preview, booking the free ones,
the series in My bookings (the rule in words), and cancelling one, the following ones or all.

The views use the real clock, so dates are picked relative to today in Shanghai.

The Chinese wording of the rule is defined here (ZH_WORDING) and handed to the translator;
the tests put it in front of the real catalog so they check the sentence the code builds,
whatever the catalog holds on a given day.
"""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.support import Translations
from flask import Flask
from flask_babel import get_domain, refresh
from sqlalchemy import func, select

from booking.bookings import series as series_service
from booking.bookings import services
from booking.bookings.forms import describe_recurrence
from booking.bookings.models import Booking, Series
from booking.domain.recurrence import LAST, Frequency, Recurrence
from booking.extensions import db
from tests.spaces.helpers import SHANGHAI, at, login, today

# msgid (or (singular, plural), or (context, msgid)) -> Chinese; proposed to the translator
ZH_WORDING: dict[Any, Any] = {
    "Every day": "每天",
    ("Every %(num)d day", "Every %(num)d days"): ("每 %(num)d 天",),
    "Every %(days)s": "每%(days)s",
    ("Every %(num)d week on %(days)s", "Every %(num)d weeks on %(days)s"): ("每 %(num)d 周的%(days)s",),
    "Monthly on day %(day)d": "每月 %(day)d 日",
    ("Every %(num)d month on day %(day)d", "Every %(num)d months on day %(day)d"): ("每 %(num)d 个月的 %(day)d 日",),
    "Monthly on the %(nth)s %(weekday)s": "每月%(nth)s%(weekday)s",
    ("Every %(num)d month on the %(nth)s %(weekday)s", "Every %(num)d months on the %(nth)s %(weekday)s"): (
        "每 %(num)d 个月的%(nth)s%(weekday)s",
    ),
    ("month", "first"): "第一个",
    ("month", "second"): "第二个",
    ("month", "third"): "第三个",
    ("month", "fourth"): "第四个",
    ("month", "last"): "最后一个",
    "%(rule)s %(time)s": "%(rule)s %(time)s",
    ("%(rule)s, %(num)d time", "%(rule)s, %(num)d times"): ("%(rule)s，共 %(num)d 次",),
    "%(rule)s, until %(date)s": "%(rule)s，至 %(date)s",
}


def _wording_translations() -> Translations:
    catalog = Catalog(locale="zh_Hans_CN")
    for key, string in ZH_WORDING.items():
        if isinstance(key, tuple) and isinstance(string, tuple):
            catalog.add(key, string)
        elif isinstance(key, tuple):
            catalog.add(key[1], string, context=key[0])
        else:
            catalog.add(key, string)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


@pytest.fixture
def zh_wording(app: Flask) -> None:
    """The Chinese catalog with this file's wording of the rule in front of it."""
    with app.test_request_context("/"):
        domain = get_domain()
        real = Translations.load(domain.translation_directories[0], ["zh_Hans_CN"], "messages")
        mine = _wording_translations()
        mine.add_fallback(real)
        mine.plural = lambda n: 0  # type: ignore[method-assign]  # Chinese: one form
        domain.cache[("zh_Hans_CN", "messages")] = mine


# -- describe_recurrence --------------------------------------------------------------------

START = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)  # a Tuesday
END = START + timedelta(hours=1)

RULES = [
    (Recurrence(Frequency.DAILY, count=5), "Every day 09:00–10:00, 5 times", "每天 09:00–10:00，共 5 次"),
    (
        Recurrence(Frequency.DAILY, interval=3, count=4),
        "Every 3 days 09:00–10:00, 4 times",
        "每 3 天 09:00–10:00，共 4 次",
    ),
    (
        Recurrence(Frequency.WEEKLY, weekdays=(1,), count=8),
        "Every Tuesday 09:00–10:00, 8 times",
        "每星期二 09:00–10:00，共 8 次",
    ),
    (
        Recurrence(Frequency.WEEKLY, weekdays=(1,), count=1),
        "Every Tuesday 09:00–10:00, 1 time",
        "每星期二 09:00–10:00，共 1 次",
    ),
    (
        Recurrence(Frequency.WEEKLY, weekdays=(3, 1, 4), count=12),
        "Every Tuesday, Thursday, and Friday 09:00–10:00, 12 times",
        "每星期二、星期四和星期五 09:00–10:00，共 12 次",
    ),
    (
        Recurrence(Frequency.WEEKLY, interval=2, weekdays=(0,), until=date(2027, 2, 22)),
        "Every 2 weeks on Monday 09:00–10:00, until Feb 22, 2027",
        "每 2 周的星期一 09:00–10:00，至 2027年2月22日",
    ),
    (
        Recurrence(Frequency.MONTHLY, month_day=31, count=6),
        "Monthly on day 31 09:00–10:00, 6 times",
        "每月 31 日 09:00–10:00，共 6 次",
    ),
    (
        Recurrence(Frequency.MONTHLY, interval=2, month_day=1, count=3),
        "Every 2 months on day 1 09:00–10:00, 3 times",
        "每 2 个月的 1 日 09:00–10:00，共 3 次",
    ),
    (
        Recurrence(Frequency.MONTHLY, nth=2, weekdays=(1,), count=4),
        "Monthly on the second Tuesday 09:00–10:00, 4 times",
        "每月第二个星期二 09:00–10:00，共 4 次",
    ),
    (
        Recurrence(Frequency.MONTHLY, nth=LAST, weekdays=(4,), until=date(2027, 6, 30)),
        "Monthly on the last Friday 09:00–10:00, until Jun 30, 2027",
        "每月最后一个星期五 09:00–10:00，至 2027年6月30日",
    ),
    (
        Recurrence(Frequency.MONTHLY, interval=3, nth=1, weekdays=(0,), count=2),
        "Every 3 months on the first Monday 09:00–10:00, 2 times",
        "每 3 个月的第一个星期一 09:00–10:00，共 2 次",
    ),
]


@pytest.mark.parametrize(("rule", "english", "chinese"), RULES, ids=[r[1] for r in RULES])
def test_describe_recurrence_in_both_languages(app, zh_wording, rule, english, chinese):
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert describe_recurrence(rule, START, END, "en") == english
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        refresh()
        assert describe_recurrence(rule, START, END, "zh_Hans_CN") == chinese


def test_describe_recurrence_to_midnight_and_without_times(app):
    rule = Recurrence(Frequency.DAILY, count=2)
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        late = datetime(2026, 12, 1, 22, 0, tzinfo=SHANGHAI)
        assert describe_recurrence(rule, late, late + timedelta(hours=2), "en") == "Every day 22:00–24:00, 2 times"
        assert describe_recurrence(rule, None, None, "en") == "Every day, 2 times"


# -- the form and the preview -----------------------------------------------------------------


def next_tuesday(at_least: int = 2) -> date:
    day = today() + timedelta(days=at_least)
    while day.weekday() != 1:
        day += timedelta(days=1)
    return day


@pytest.fixture
def room(space: Any) -> Any:
    """The meeting room, with room for an eight-week series."""
    return space("meeting-room", max_future_bookings=None, max_advance_days=90)


def weekly_form(first: date, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "周二例会",
        "day": first.isoformat(),
        "start_time": "09:00",
        "end_time": "10:00",
        "attendees": 4,
        "repeat": "weekly",
        "repeat_weekdays": ["1"],
        "repeat_interval": "1",
        "repeat_end": "count",
        "repeat_count": "8",
        "repeat_nth": "1",
    }
    data.update(extra)
    return data


def take(space: Any, make_user: Any, day: date, hour: int = 9) -> Booking:
    other = make_user()
    return services.request_booking(
        db.session,
        services.context(other),
        space_id=space.id,
        requester=other,
        start=at(day, hour),
        end=at(day, hour + 1),
        title="别人的会",
    )


def fingerprint(html: str) -> str:
    found = re.search(r'name="fingerprint" value="([0-9a-f]+)"', html)
    assert found, "the preview carries its fingerprint"
    return found.group(1)


def bookings_of(user: Any) -> list[Booking]:
    db.session.expire_all()
    return list(db.session.scalars(select(Booking).where(Booking.requester_id == user.id).order_by(Booking.start_at)))


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_form_offers_repeat_prefilled_with_the_day(client, member, room):
    login(client, member.email)
    first = next_tuesday()
    html = client.get(f"/spaces/meeting-room/book?start={first}T09:00&end={first}T10:00").get_data(as_text=True)
    assert '<details class="repeat-section mb-3">' in html  # closed until asked for
    assert '<input checked class="form-check-input" id="repeat-0" name="repeat" type="radio" value="none">' in html
    weekday = first.weekday()  # ticked: the chosen day's weekday
    assert f'<input checked class="form-check-input" id="repeat_weekdays-{weekday}" name="repeat_weekdays"' in html
    assert html.count('<input checked class="form-check-input" id="repeat_weekdays-') == 1


def test_a_repeating_form_shows_the_preview_with_the_conflict_and_writes_nothing(client, member, room, make_user):
    first = next_tuesday()
    taken = take(room, make_user, first + timedelta(weeks=2))
    login(client, member.email)
    response = client.post("/spaces/meeting-room/book", data=weekly_form(first))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Every Tuesday 09:00–10:00, 8 times" in html
    assert "7 of 8 dates are free." in html
    assert html.count("occurrence-conflict") == 1
    assert "That time is already booked." in html
    assert "The nearest free time:" in html
    assert "Book the 7 free ones" in html
    assert "No approval is needed" in html
    assert 'name="back"' in html
    assert 'name="repeat_weekdays" value="1"' in html  # the form's fields travel along
    assert (count(Series), count(Booking)) == (0, 1), "a preview writes nothing"
    assert bookings_of(member) == []
    assert taken.id


def test_confirming_books_exactly_the_free_ones(client, member, room, make_user):
    first = next_tuesday()
    take(room, make_user, first + timedelta(weeks=2))
    login(client, member.email)
    html = client.post("/spaces/meeting-room/book", data=weekly_form(first)).get_data(as_text=True)
    response = client.post(
        "/spaces/meeting-room/book", data=weekly_form(first, confirm="1", fingerprint=fingerprint(html))
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/bookings")
    booked = bookings_of(member)
    expected = [first + timedelta(weeks=n) for n in range(8) if n != 2]
    assert [b.start_at for b in booked] == [at(day, 9) for day in expected]
    assert {(b.status, b.title, b.attendees) for b in booked} == {("confirmed", "周二例会", 4)}
    assert len({b.series_id for b in booked}) == 1
    page = client.get("/bookings").get_data(as_text=True)
    assert "7 bookings requested and confirmed" in page


def test_a_booking_made_after_the_preview_gives_the_fresh_preview_and_writes_nothing(client, member, room, make_user):
    first = next_tuesday()
    login(client, member.email)
    html = client.post("/spaces/meeting-room/book", data=weekly_form(first)).get_data(as_text=True)
    assert "All 8 dates are free." in html
    take(room, make_user, first + timedelta(weeks=5))  # someone is quicker
    response = client.post(
        "/spaces/meeting-room/book", data=weekly_form(first, confirm="1", fingerprint=fingerprint(html))
    )
    assert response.status_code == 409
    fresh = response.get_data(as_text=True)
    assert "Something changed since you looked" in fresh
    assert "7 of 8 dates are free." in fresh
    assert "Book the 7 free ones" in fresh
    assert fingerprint(fresh) != fingerprint(html)
    assert bookings_of(member) == []
    assert count(Series) == 0


def test_go_back_keeps_what_was_typed(client, member, room):
    first = next_tuesday()
    login(client, member.email)
    response = client.post("/spaces/meeting-room/book", data=weekly_form(first, back="1", repeat_count="6"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<details class="repeat-section mb-3" open>' in html
    assert 'value="周二例会"' in html
    assert 'name="repeat_count" type="number" value="6"' in html or 'value="6"' in html
    assert bookings_of(member) == []


def test_skipped_days_and_the_horizon_are_said(client, member, space):
    space("meeting-room", max_future_bookings=None)  # bookable 30 days ahead
    first = next_tuesday()
    login(client, member.email)
    daily = weekly_form(first, repeat="daily", repeat_count="7")
    html = client.post("/spaces/meeting-room/book", data=daily).get_data(as_text=True)
    assert html.count("the space is closed that day.") == 2  # Saturday and Sunday
    assert "5 of 5 dates are free." in html or "All 5 dates are free." in html
    weekly = weekly_form(first, repeat_count="10")
    html = client.post("/spaces/meeting-room/book", data=weekly).get_data(as_text=True)
    assert "This space can be booked up to 30 days ahead" in html
    assert "are not included yet." in html


def test_nothing_free_is_a_clear_error(client, member, room, make_user):
    first = next_tuesday()
    for week in range(2):
        take(room, make_user, first + timedelta(weeks=week))
    login(client, member.email)
    form = weekly_form(first, repeat_count="2")
    html = client.post("/spaces/meeting-room/book", data=form).get_data(as_text=True)
    assert "None of these dates is free." in html
    assert "Book the" not in html
    response = client.post("/spaces/meeting-room/book", data={**form, "confirm": "1", "fingerprint": fingerprint(html)})
    assert response.status_code == 409
    assert "None of the repeated dates can be booked" in response.get_data(as_text=True)
    assert bookings_of(member) == []


def test_repeat_settings_are_checked(client, member, room):
    first = next_tuesday()
    login(client, member.email)
    response = client.post("/spaces/meeting-room/book", data=weekly_form(first, repeat_weekdays=[], repeat_count="60"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Tick at least one day." in html
    assert "Choose from 1 to 52 times." in html
    response = client.post(
        "/spaces/meeting-room/book",
        data=weekly_form(first, repeat_end="until", repeat_until=(first - timedelta(days=1)).isoformat()),
    )
    assert response.status_code == 422
    assert "The last date comes before the first." in response.get_data(as_text=True)


def test_a_form_without_repeat_books_once(client, member, room):
    first = next_tuesday()
    login(client, member.email)
    data = {k: v for k, v in weekly_form(first).items() if not k.startswith("repeat")}
    response = client.post("/spaces/meeting-room/book", data=data)
    assert response.status_code == 302
    (booking,) = bookings_of(member)
    assert booking.series_id is None


# -- my bookings, the booking page, cancelling ----------------------------------------------


def book_series(room: Any, member: Any, first: date, weeks: int = 8) -> list[Booking]:
    ctx = services.context(member)
    fields: dict[str, Any] = {
        "space_id": room.id,
        "requester": member,
        "first_start": at(first, 9),
        "first_end": at(first, 10),
        "rule": Recurrence(Frequency.WEEKLY, weekdays=(1,), count=weeks),
        "attendees": 3,
    }
    seen = series_service.preview(db.session, ctx, **fields)
    series_service.request_series(db.session, ctx, title="周二例会", expected_fingerprint=seen.fingerprint, **fields)
    return bookings_of(member)


def test_my_bookings_shows_a_series_as_one_entry_in_both_languages(client, member, room, zh_wording):
    first = next_tuesday()
    booked = book_series(room, member, first)
    login(client, member.email)
    html = client.get("/bookings").get_data(as_text=True)
    assert html.count('class="list-group-item booking-item series-item"') == 1
    assert "Every Tuesday 09:00–10:00, 8 times" in html
    assert "8 dates left of 8 booked" in html
    assert html.count("周二例会") == 1  # one entry, not eight
    for booking in booked:
        assert f'/bookings/{booking.id}"' in html  # the dates, folded under the entry
    member.language = "zh_Hans_CN"
    db.session.commit()
    html = client.get("/bookings").get_data(as_text=True)
    assert "每星期二 09:00–10:00，共 8 次" in html


def test_cancel_the_following_ones_leaves_the_earlier_ones(client, member, room):
    first = next_tuesday()
    booked = book_series(room, member, first, weeks=6)
    login(client, member.email)
    page = client.get(f"/bookings/{booked[3].id}").get_data(as_text=True)
    assert "Every Tuesday 09:00–10:00, 6 times" in page
    assert "This and the following dates (3 in all)" in page
    assert "The whole series: 6 dates still to come" in page
    assert "Dates that have already started stay as they are." in page
    confirm = client.get(f"/bookings/{booked[3].id}/cancel?scope=following")
    assert "Cancel this date and the following ones (3 in all)?" in confirm.get_data(as_text=True)
    response = client.post(f"/bookings/{booked[3].id}/cancel", data={"scope": "following"})
    assert response.status_code == 302
    assert [b.status for b in bookings_of(member)] == ["confirmed"] * 3 + ["cancelled"] * 3
    assert "3 bookings of the series are cancelled" in client.get("/bookings").get_data(as_text=True)


def test_cancel_this_one_and_then_all(client, member, room):
    first = next_tuesday()
    booked = book_series(room, member, first, weeks=4)
    login(client, member.email)
    assert client.post(f"/bookings/{booked[1].id}/cancel", data={"scope": "this"}).status_code == 302
    assert [b.status for b in bookings_of(member)] == ["confirmed", "cancelled", "confirmed", "confirmed"]
    assert client.post(f"/bookings/{booked[0].id}/cancel", data={"scope": "all"}).status_code == 302
    assert {b.status for b in bookings_of(member)} == {"cancelled"}


def test_someone_elses_series_is_not_found(client, member, make_user, room):
    first = next_tuesday()
    booked = book_series(room, member, first, weeks=3)
    intruder = make_user()
    login(client, intruder.email)
    assert client.get(f"/bookings/{booked[0].id}").status_code == 404
    assert client.get(f"/bookings/{booked[0].id}/cancel?scope=all").status_code == 404
    assert client.post(f"/bookings/{booked[0].id}/cancel", data={"scope": "all"}).status_code == 404
    assert client.post(f"/bookings/{booked[0].id}/cancel", data={"scope": "following"}).status_code == 404
    assert {b.status for b in bookings_of(member)} == {"confirmed"}
    assert "周二例会" not in client.get("/bookings").get_data(as_text=True)


def test_a_scope_needs_a_series(client, member, room):
    first = next_tuesday()
    login(client, member.email)
    single = services.request_booking(
        db.session,
        services.context(member),
        space_id=room.id,
        requester=member,
        start=at(first, 9),
        end=at(first, 10),
        title="单次",
    )
    assert client.post(f"/bookings/{single.id}/cancel", data={"scope": "all"}).status_code == 400
    assert client.post(f"/bookings/{single.id}/cancel", data={"scope": "nonsense"}).status_code == 400


def test_the_cafe_repeats_a_run_of_slots(client, member, space):
    space("cafe", max_future_bookings=None, max_advance_days=100)
    first = next_tuesday()
    login(client, member.email)
    data = {
        "title": "咖啡时间",
        "day": first.isoformat(),
        "slot": "14:00",
        "slot_count": "2",
        "units": "2",
        "attendees": "5",
        "repeat": "monthly_nth",
        "repeat_nth": "-1",
        "repeat_interval": "1",
        "repeat_end": "count",
        "repeat_count": "2",
    }
    html = client.post("/spaces/cafe/book", data=data).get_data(as_text=True)
    assert "Monthly on the last Tuesday 14:00–15:00, 2 times" in html
    response = client.post("/spaces/cafe/book", data={**data, "confirm": "1", "fingerprint": fingerprint(html)})
    assert response.status_code == 302
    booked = bookings_of(member)
    assert len(booked) == 2
    assert all(b.start_at.astimezone(SHANGHAI).weekday() == 1 for b in booked)
    assert all(
        (b.start_at + timedelta(days=7)).astimezone(SHANGHAI).month != b.start_at.astimezone(SHANGHAI).month
        for b in booked
    )
    assert {(b.units, b.end_at - b.start_at) for b in booked} == {(2, timedelta(hours=1))}
