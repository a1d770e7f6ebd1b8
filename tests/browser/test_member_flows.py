"""A member's flows on a phone and a desktop: book from the week grid, seats, refusals, languages.

Each test picks its own days and times per viewport (the phone and desktop runs share one
database), so the tests never depend on order or on each other.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, axe_violations, log_in, next_weekday, shot, unique_email
from tests.conftest import PASSWORD

MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY = range(6)


def is_phone(page: Any) -> bool:
    return page.viewport_size["width"] < DESKTOP["width"]


def pick(page: Any, phone: Any, desktop: Any) -> Any:
    """The phone and desktop runs share a database, so each books its own time."""
    return phone if is_phone(page) else desktop


def slot(day: datetime, hhmm: str) -> str:
    return f"{day:%Y-%m-%d}T{hhmm}"


def open_week(page: Any, server: Any, space: str, day: datetime) -> None:
    """The week around `day`; on a phone, tap that day's tab (one day is shown at a time)."""
    page.goto(f"{server.url}/spaces/{space}?date={day:%Y-%m-%d}")
    if is_phone(page):
        page.click(f".day-tabs [data-day='{day:%Y-%m-%d}']")


def cell(page: Any, start: str) -> Any:
    """The visible grid cell (table on a desktop, day list on a phone) that starts at `start`."""
    return page.locator(f"[data-slot='{start}']").filter(visible=True)


def seats_left(page: Any, start: str) -> int:
    """The number in the cell's "N left" (or "Yours · N left") text, whatever the language."""
    text = " ".join(cell(page, start).locator(".cell-state, .cell-extra").all_inner_texts())
    numbers = re.findall(r"\d+", text)
    assert len(numbers) == 1, f"expected one 'N left' in {text!r}"
    return int(numbers[0])


def submit_booking(page: Any) -> int:
    page.click("form.booking-form button[type=submit]")
    page.wait_for_url(re.compile(r"/bookings/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


@pytest.fixture(scope="session")
def member(live_server: Any) -> Any:
    """One member for the flows that do not need a fresh account (each books its own times)."""
    return live_server.make_user(email=unique_email("member"), display_name="王磊")


def test_register_book_from_grid_download_and_cancel(page, live_server):
    url = live_server.url
    page.goto(f"{url}/auth/register")
    page.fill("input[name=email]", unique_email("flow"))
    page.fill("input[name=display_name]", "李娜")
    page.select_option("select[name=organisation]", index=1)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    page.click("form.card button[type=submit]")
    page.wait_for_url(f"{url}/")
    assert page.locator(".space-card").count() >= 4
    shot(page, "home")
    assert axe_violations(page) == []

    day = next_weekday(pick(page, TUESDAY, WEDNESDAY))
    start = slot(day, "09:00")
    open_week(page, live_server, "meeting-room", day)
    free = cell(page, start)
    assert "cell-free" in free.locator("xpath=..").get_attribute("class")
    shot(page, "week-grid")
    assert axe_violations(page) == []
    free.click()

    page.wait_for_url(re.compile(r"/spaces/meeting-room/book\?"))
    assert page.input_value("input[name=day]") == f"{day:%Y-%m-%d}"
    assert page.input_value("select[name=start_time]") == "09:00"
    page.select_option("select[name=end_time]", "10:30")
    page.fill("input[name=title]", "季度复盘会 Q3 review")
    page.fill("input[name=attendees]", "8")
    shot(page, "booking-form")
    assert axe_violations(page) == []
    booking_id = submit_booking(page)
    assert page.locator(".booking-status .status-confirmed").is_visible()

    page.goto(f"{url}/bookings")
    item = page.locator(".booking-item").filter(has=page.locator(f"a[href='/bookings/{booking_id}']"))
    assert item.locator(".status-confirmed").is_visible()
    assert "季度复盘会" in item.inner_text()
    shot(page, "my-bookings")
    assert axe_violations(page) == []

    item.locator("a.booking-title").click()
    page.wait_for_url(f"{url}/bookings/{booking_id}")
    with page.expect_download() as download_info:
        page.click(f"a[href='/bookings/{booking_id}.ics']")
    download = download_info.value
    assert download.suggested_filename == f"booking-{booking_id}.ics"
    ics = (download.path()).read_text(encoding="utf-8")
    assert ics.startswith("BEGIN:VCALENDAR")
    assert f"UID:booking-{booking_id}" in ics
    assert "季度复盘会" in ics

    page.once("dialog", lambda dialog: dialog.accept())
    page.click(".cancel-form button[type=submit]")
    page.locator(".booking-status .status-cancelled").wait_for()
    assert page.locator(f"a[href='/bookings/{booking_id}.ics']").count() == 0

    page.goto(f"{url}/bookings")
    assert item.locator(".status-cancelled").is_visible()
    open_week(page, live_server, "meeting-room", day)  # the time is free for others again
    assert "cell-free" in cell(page, start).locator("xpath=..").get_attribute("class")


def test_book_two_seats_and_see_left_drop(page, live_server, member):
    log_in(page, live_server, member.email)
    day = next_weekday(pick(page, MONDAY, FRIDAY))
    start = pick(page, slot(day, "10:00"), slot(day, "15:00"))
    open_week(page, live_server, "reading-room", day)
    before = seats_left(page, start)
    cell(page, start).click()

    page.wait_for_url(re.compile(r"/spaces/reading-room/book\?"))
    page.fill("input[name=units]", "2")
    page.fill("input[name=title]", "安静读书")
    booking_id = submit_booking(page)
    assert page.locator(".booking-status .status-confirmed").is_visible()

    open_week(page, live_server, "reading-room", day)
    assert seats_left(page, start) == before - 2
    own = cell(page, start)
    assert own.get_attribute("href") == f"/bookings/{booking_id}"
    assert "cell-own" in own.locator("xpath=..").get_attribute("class")


def test_taken_slot_is_refused_with_the_nearest_free_time(page, live_server, member):
    from booking.auth.models import User
    from booking.bookings import services
    from booking.extensions import db
    from booking.spaces.models import Space
    from tests.browser.conftest import SHANGHAI

    other = live_server.make_user(email=unique_email("other"), display_name="赵敏")
    log_in(page, live_server, member.email)
    day = next_weekday(THURSDAY)
    hour = pick(page, 14, 17)
    start = slot(day, f"{hour}:00")
    open_week(page, live_server, "meeting-room", day)
    cell(page, start).click()
    page.wait_for_url(re.compile(r"/spaces/meeting-room/book\?"))
    page.select_option("select[name=end_time]", f"{hour + 1}:00")
    page.fill("input[name=title]", "客户拜访")

    # while the member fills the form, someone else takes the time
    with live_server.app.app_context():
        requester = db.session.get(User, other.id)
        space = db.session.scalar(db.select(Space).where(Space.slug == "meeting-room"))
        begin = day.replace(hour=hour, tzinfo=SHANGHAI)
        services.request_booking(
            db.session,
            services.context(requester),
            space_id=space.id,
            requester=requester,
            start=begin,
            end=begin + timedelta(hours=1),
            title="先到先得",
        )
        db.session.remove()

    page.click("form.booking-form button[type=submit]")
    refusal = page.locator(".refusal[role=alert]")
    refusal.wait_for()
    assert page.url.split("?")[0].endswith("/spaces/meeting-room/book")
    nearest = refusal.locator("a.nearest-free")
    assert nearest.is_visible()
    shot(page, "refusal")
    assert axe_violations(page) == []

    nearest.click()
    page.wait_for_url(re.compile(r"/spaces/meeting-room/book\?"))
    assert page.locator(".refusal").count() == 0
    assert page.input_value("input[name=day]") == f"{day:%Y-%m-%d}"  # the same day, another hour
    assert page.input_value("select[name=start_time]") != f"{hour}:00"
    page.fill("input[name=title]", "客户拜访")
    booking_id = submit_booking(page)
    assert page.locator(".booking-status .status-confirmed").is_visible()
    page.goto(f"{live_server.url}/bookings")
    assert page.locator(f".booking-item a[href='/bookings/{booking_id}']").is_visible()


def switch_language(page: Any, lang: str) -> None:
    page.click("form.lang-form button")
    page.wait_for_function(f"document.documentElement.lang === '{lang}'")


def test_switch_language_and_every_member_page_passes_axe(page, live_server):
    url = live_server.url
    user = live_server.make_user(email=unique_email("lang"), display_name="Chen Jie")
    page.goto(f"{url}/auth/login")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert axe_violations(page) == []
    switch_language(page, "en")
    assert page.locator("main h1").inner_text() == "Log in"
    assert axe_violations(page) == []
    switch_language(page, "zh-Hans")
    assert page.locator("main h1").is_visible()

    log_in(page, live_server, user.email)
    day = next_weekday(SATURDAY)  # the reading room opens every day
    pages = {
        "home": "/",
        "week": f"/spaces/reading-room?date={day:%Y-%m-%d}",
        "form": f"/spaces/reading-room/book?start={slot(day, '11:00')}&end={slot(day, '12:00')}",
        "mine": "/bookings",
    }
    for language, lang in (("zh", "zh-Hans"), ("en", "en")):
        for name, path in pages.items():
            page.goto(url + path)
            assert page.locator("html").get_attribute("lang") == lang
            assert page.locator("main h1").is_visible()
            assert axe_violations(page) == [], f"{name} in {language}"
        if language == "zh":
            switch_language(page, "en")  # on My bookings: the switch keeps the page
            assert page.url == f"{url}/bookings"
            assert page.locator("main h1").inner_text() == "My bookings"
    shot(page, "my-bookings-en")
    switch_language(page, "zh-Hans")
    assert page.url == f"{url}/bookings"
    assert page.locator("main h1").is_visible()
    assert page.locator("form.lang-form button").inner_text() == "English"
