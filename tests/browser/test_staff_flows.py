"""Staff run the station, in a browser: decide requests (one, and a whole series), close a space
over a booking after a preview, read the report; then the member sees each outcome.

The phone and desktop runs share the live server's database, so each run books its own days
and times (exhibition days two or three weeks ahead, meeting-room evenings), never the
mornings the member flows use.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from booking.auth.models import User
from booking.bookings import series as series_service
from booking.bookings import services
from booking.domain.recurrence import Frequency, Recurrence
from booking.extensions import db
from booking.spaces.models import RULE_COLUMNS, Space
from tests.browser.conftest import DESKTOP, axe_violations, log_in, next_weekday, shot, unique_email

MONDAY, FRIDAY, SATURDAY, SUNDAY = 0, 4, 5, 6


def is_phone(page: Any) -> bool:
    return page.viewport_size["width"] < DESKTOP["width"]


def at(day: datetime, hhmm: str) -> datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return day.replace(hour=hours, minute=minutes)


def request(server: Any, member: User, slug: str, start: datetime, end: datetime, title: str) -> int:
    """A member's request, made through the service as the member pressing "book" would."""
    with server.app.app_context():
        space = db.session.scalar(select(Space).where(Space.slug == slug))
        made = services.request_booking(
            db.session,
            services.context(member),
            space_id=space.id,
            requester=member,
            start=start,
            end=end,
            title=title,
        )
        return made.id


def fresh_meeting_room(name: str) -> Space:
    """A room with the meeting room's rules that no other browser test books (they share one server)."""
    model = db.session.scalar(select(Space).where(Space.slug == "meeting-room"))
    fields = {column: getattr(model, column) for column in RULE_COLUMNS}
    space = Space(
        location_id=model.location_id, slug=f"room-{uuid.uuid4().hex[:8]}", name_zh=name, name_en=name, **fields
    )
    space.max_future_bookings = None
    db.session.add(space)
    db.session.commit()
    return space


def request_series(server: Any, member: User, first_start: datetime, first_end: datetime, title: str) -> int:
    """Four weekday bookings over three hours in a room of their own: each needs approval."""
    with server.app.app_context():
        space = fresh_meeting_room("第二会议室")
        ctx = services.context(member)
        fields = {
            "space_id": space.id,
            "requester": member,
            "first_start": first_start,
            "first_end": first_end,
            "rule": Recurrence(Frequency.WEEKLY, weekdays=(0, 1, 2, 3), count=4),
        }
        seen = series_service.preview(db.session, ctx, **fields)
        assert seen.needs_approval
        assert len(seen.free) == 4, [o.refusal for o in seen.refused]
        made = series_service.request_series(
            db.session, ctx, title=title, expected_fingerprint=seen.fingerprint, **fields
        )
        return made.id


def statuses_of_series(server: Any, series_id: int) -> list[str]:
    with server.app.app_context():
        return [b.status for b in series_service.occurrences_of(db.session, series_id)]


def space_id(server: Any, slug: str) -> int:
    with server.app.app_context():
        return db.session.scalar(select(Space.id).where(Space.slug == slug))


def flash(page: Any, kind: str) -> str:
    alert = page.locator(f"main .alert-{kind}, .alert-{kind}").first
    alert.wait_for()
    return alert.inner_text()


def test_staff_decide_close_and_report_then_the_member_sees_it(page, live_server):
    url = live_server.url
    phone = is_phone(page)
    member = live_server.make_user(email=unique_email("exhibitor"), display_name="陈晓")
    planner = live_server.make_user(email=unique_email("planner"), display_name="周会")
    staff = live_server.make_user(email=unique_email("staff"), display_name="值班员", role="staff")

    # the member's requests: two exhibitions (staff always review) and one meeting
    weeks = 2 if phone else 3
    show_day = next_weekday(SATURDAY, weeks_ahead=weeks)
    other_day = next_weekday(SUNDAY, weeks_ahead=weeks)
    approved = request(live_server, member, "exhibition", show_day, show_day + timedelta(days=1), "金融史图片展")
    rejected = request(live_server, member, "exhibition", other_day, other_day + timedelta(days=1), "理财沙龙海报展")
    meeting_day = next_weekday(FRIDAY, weeks_ahead=2)
    hour = ("17:00", "18:00") if phone else ("19:00", "20:00")
    closed = request(
        live_server, member, "meeting-room", at(meeting_day, hour[0]), at(meeting_day, hour[1]), "读书会筹备"
    )
    # another member's series: Monday to Thursday evenings, four hours each
    monday = next_weekday(MONDAY, weeks_ahead=2)
    evening = ("08:30", "12:30") if phone else ("17:00", "21:00")
    series_id = request_series(live_server, planner, at(monday, evening[0]), at(monday, evening[1]), "青年理财讲堂")

    # the queue: each request once, the series once with its four dates
    log_in(page, live_server, staff.email)
    page.goto(f"{url}/staff/queue")
    series_card = page.locator(f"#series-{series_id}")
    assert series_card.locator(".staff-occurrence").count() == 4
    assert page.locator(f"#booking-{approved}").is_visible()
    assert page.locator(f"#booking-{rejected}").is_visible()
    shot(page, "staff-queue")
    assert axe_violations(page) == []

    page.locator(f"#booking-{approved} form[action$='/approve'] button").click()
    assert f"#{approved}" in flash(page, "success")

    card = page.locator(f"#booking-{rejected}")
    card.locator("details.staff-reject summary").click()
    card.locator("textarea[name=reason]").fill("该周展区已安排布展")
    card.locator("form[action$='/reject'] button[type=submit]").click()
    assert f"#{rejected}" in flash(page, "success")

    # the whole series in one step
    page.locator(f"#series-{series_id} form[action$='/series/{series_id}/approve'] button").click()
    flash(page, "success")
    assert page.locator(f"#series-{series_id}").count() == 0
    assert statuses_of_series(live_server, series_id) == ["confirmed"] * 4

    # a closure over the member's meeting: a preview first, then the confirmation
    page.goto(f"{url}/staff/closures")
    assert axe_violations(page) == []
    page.select_option("select[name=space]", str(space_id(live_server, "meeting-room")))
    page.fill("input[name=first_day]", f"{meeting_day:%Y-%m-%d}")
    page.select_option("select[name=start]", hour[0])
    page.fill("input[name=last_day]", f"{meeting_day:%Y-%m-%d}")
    page.select_option("select[name=end]", hour[1])
    page.fill("input[name=reason]", "空调检修")
    page.click("form.card button[type=submit]")
    preview = page.locator("section[aria-labelledby=preview-title]")
    preview.wait_for()
    assert preview.locator(f"a[href='/staff/bookings/{closed}']").is_visible()
    shot(page, "staff-closure-preview")
    assert axe_violations(page) == []
    preview.locator("button[type=submit]").click()
    flash(page, "success")
    assert page.locator("section[aria-labelledby=preview-title]").count() == 0

    # the other staff pages pass axe too
    for path in ("/staff/spaces/meeting-room", f"/staff/audit?booking={rejected}"):
        page.goto(f"{url}{path}")
        assert axe_violations(page) == [], path
    audit = page.locator("main").inner_text()
    assert "该周展区已安排布展" in audit

    # the weeks ahead, where this run's confirmed bookings are: a chart with bars
    first, last = datetime.now(monday.tzinfo).date(), (show_day + timedelta(days=7)).date()
    page.goto(f"{url}/staff/reports?from={first}&to={last}")
    assert page.locator("svg[aria-labelledby^=chart-org-hours] rect").count() >= 1
    chart = page.locator("svg.staff-chart").first
    chart.wait_for()
    assert chart.get_attribute("role") == "img"
    shot(page, "staff-report")
    assert axe_violations(page) == []

    # the member reads every outcome on My bookings
    page.context.clear_cookies()
    log_in(page, live_server, member.email)
    page.goto(f"{url}/bookings")

    def item(booking_id: int) -> Any:
        return page.locator(".booking-item").filter(has=page.locator(f"a[href='/bookings/{booking_id}']"))

    assert item(approved).locator(".status-confirmed").is_visible()
    assert item(rejected).locator(".status-rejected").is_visible()
    assert "该周展区已安排布展" in item(rejected).locator(".status-reason").inner_text()
    assert item(closed).locator(".status-cancelled").is_visible()
    assert "空调检修" in item(closed).locator(".status-reason").inner_text()
