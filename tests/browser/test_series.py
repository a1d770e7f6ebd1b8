"""A member books a weekly series on a phone and a desktop: the preview with one conflict,
booking the free ones, the series in My bookings, and cancelling the following dates.

The phone and desktop runs share one database, so each books its own evening hour.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from booking.bookings import services
from booking.bookings.models import Booking
from booking.extensions import db
from booking.spaces.models import Space
from tests.browser.conftest import DESKTOP, SHANGHAI, axe_violations, log_in, shot, unique_email

TUESDAY = 1


def first_tuesday() -> datetime:
    """The first Tuesday at least two days ahead: four weekly dates stay inside the room's 30 days."""
    day = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    while day.weekday() != TUESDAY:
        day += timedelta(days=1)
    return day


def test_book_a_weekly_series_and_cancel_the_following_dates(page: Any, live_server: Any) -> None:
    phone = page.viewport_size["width"] < DESKTOP["width"]
    start_h, start_m, end_h, end_m = (18, 0, 19, 0) if phone else (19, 30, 20, 30)
    first = first_tuesday()
    at = lambda day, h, m: day.replace(hour=h, minute=m)  # noqa: E731
    member = live_server.make_user(email=unique_email("series"), display_name="周例会组织者")
    other = live_server.make_user(email=unique_email("series-other"), display_name="先到的人")
    third = first + timedelta(weeks=2)
    with live_server.app.app_context():
        room = db.session.scalar(db.select(Space).where(Space.slug == "meeting-room"))
        taken_by = db.session.get(type(other), other.id)
        services.request_booking(
            db.session,
            services.context(taken_by),
            space_id=room.id,
            requester=taken_by,
            start=at(third, start_h, start_m),
            end=at(third, end_h, end_m),
            title="先到先得",
        )

    log_in(page, live_server, member.email)
    start, end = at(first, start_h, start_m), at(first, end_h, end_m)
    page.goto(f"{live_server.url}/spaces/meeting-room/book?start={start:%Y-%m-%dT%H:%M}&end={end:%Y-%m-%dT%H:%M}")
    page.fill("input[name=title]", "读书会")
    page.click("details.repeat-section summary")
    page.check("input[name=repeat][value=weekly]")
    assert page.is_checked(f"input[name=repeat_weekdays][value='{TUESDAY}']")  # the chosen day, ticked
    page.fill("input[name=repeat_count]", "4")
    shot(page, "series-form")
    page.click("form.booking-form button[type=submit]")

    # the preview: four dates, one taken, nothing written yet
    page.wait_for_selector(".occurrence-list")
    assert page.locator(".occurrence").count() == 4
    assert page.locator(".occurrence-conflict").count() == 1
    assert page.locator(".occurrence-conflict .nearest-free").count() == 1
    assert "3" in page.inner_text("button[name=confirm]")
    shot(page, "series-preview")
    assert axe_violations(page) == []
    with live_server.app.app_context():
        assert db.session.scalar(db.select(db.func.count(Booking.id)).where(Booking.requester_id == member.id)) == 0

    page.click("button[name=confirm]")
    page.wait_for_url(re.compile(r"/bookings$"))
    series = page.locator(".series-item")
    assert series.count() == 1
    assert "读书会" in series.inner_text()
    assert series.locator(".series-rule").inner_text().strip()
    page.click(".series-item details summary")
    assert series.locator(".series-date-list li").count() == 3
    shot(page, "series-mine")
    assert axe_violations(page) == []

    # cancel the second date and the ones after it; the first stays
    series.locator(".series-date-list li a").nth(1).click()
    page.wait_for_url(re.compile(r"/bookings/\d+$"))
    assert page.locator(".series-cancel form").count() == 3
    shot(page, "series-detail")
    assert axe_violations(page) == []
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(".series-cancel form.cancel-following button[type=submit]")
    page.wait_for_url(re.compile(r"/bookings$"))
    with live_server.app.app_context():
        statuses = db.session.scalars(
            db.select(Booking.status).where(Booking.requester_id == member.id).order_by(Booking.start_at)
        ).all()
    assert statuses == ["confirmed", "cancelled", "cancelled"]
    assert page.locator(".series-item .series-left").count() == 1
    shot(page, "series-after-cancel")
