"""What each booking change queues in the outbox, for whom, in which language.

These tests read the OutgoingMail rows; tests/test_mail.py sends them through a real
SMTP server. With no MAIL_SERVER (the default here) "sending" is logging.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import func, select, update

from booking import clock, create_app, mail, notifications
from booking.bookings import services
from booking.bookings.models import Booking, OutgoingMail
from booking.db import write_transaction
from booking.extensions import db
from tests.conftest import shanghai

START, END = shanghai(2026, 12, 1, 14), shanghai(2026, 12, 1, 15)


def outbox(**where: Any) -> list[OutgoingMail]:
    db.session.rollback()  # a fresh snapshot: the sender commits on its own connection
    mail.compose_pending()  # queued as facts; the sender would compose them before sending
    stmt = select(OutgoingMail).order_by(OutgoingMail.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(OutgoingMail, key) == value)
    return list(db.session.scalars(stmt))


def one(**where: Any) -> OutgoingMail:
    rows = outbox(**where)
    assert len(rows) == 1, [(r.kind, r.recipient) for r in rows]
    return rows[0]


def calendar_of(row: OutgoingMail) -> Any:
    assert row.ics is not None
    cal = Calendar.from_ical(row.ics)
    assert str(cal["METHOD"]) == row.ics_method
    (event,) = cal.walk("VEVENT")
    return cal, event


@pytest.fixture
def english(make_user: Any) -> Any:
    return make_user(email="emily@example.com", display_name="Emily Chen", language="en")


@pytest.fixture
def chinese(make_user: Any) -> Any:
    return make_user(email="wang@example.com", display_name="王小明", language="zh_Hans_CN")


def test_confirmed_booking_queues_an_invitation_in_english(app, space, english, book):
    booking = book(space("meeting-room"), english, START, END, title="Quarterly review")

    row = one(booking_id=booking.id)
    assert (row.kind, row.recipient, row.ics_method) == ("confirmed", "emily@example.com", "REQUEST")
    assert row.subject == "Confirmed: Quarterly review, Tue, Dec 1, 2026 14:00–15:00"
    assert "Hello Emily Chen," in row.body_text
    assert "Shared meeting room" in row.body_text
    assert f"http://127.0.0.1:5000/bookings/{booking.id}" in row.body_text
    assert '<html lang="en">' in row.body_html
    assert row.sent_at is None  # queued; sent after the request or command, or by cron

    cal, event = calendar_of(row)
    assert str(event["UID"]) == f"booking-{booking.id}@station.test"
    assert event["SEQUENCE"] == booking.revision == 0
    assert str(event["STATUS"]) == "CONFIRMED"
    assert event["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert event["DTSTART"].dt == START
    assert event["DTEND"].dt == END
    assert str(event["ORGANIZER"]) == "mailto:station@station.local"
    assert str(event["ATTENDEE"]) == "mailto:emily@example.com"
    assert cal.get_missing_tzids() == set()


def test_a_chinese_reader_gets_chinese_dates_and_names(app, space, chinese, book):
    booking = book(space("meeting-room"), chinese, START, END)

    row = one(booking_id=booking.id)
    assert "2026年12月1日" in row.subject
    assert "2026年12月1日周二 14:00–15:00" in row.body_text
    assert "共享会议室" in row.body_text
    assert "外滩金融品巷" in row.body_text  # the station, by its Chinese name
    assert '<html lang="zh-Hans">' in row.body_html
    _, event = calendar_of(row)
    assert "共享会议室" in str(event["LOCATION"])


def test_a_request_needing_approval_goes_to_the_requester_and_every_active_staff_member(
    app, space, english, make_user, book
):
    staff_zh = make_user(email="staff-zh@example.com", display_name="李静", role="staff", language="zh_Hans_CN")
    admin_en = make_user(email="admin@example.com", display_name="Ada", role="admin", language="en")
    make_user(email="gone@example.com", role="staff", active=False)

    booking = book(space("meeting-room", approval="always"), english, START, END, title="Roadshow")

    rows = outbox(booking_id=booking.id)
    assert {(r.kind, r.recipient) for r in rows} == {
        ("request_received", "emily@example.com"),
        ("staff_request", staff_zh.email),
        ("staff_request", admin_en.email),
    }
    assert all(r.ics is None for r in rows)  # nothing goes into a calendar before it is confirmed
    received = one(kind="request_received")
    assert received.subject.startswith("Request received: Roadshow")
    to_admin = one(recipient=admin_en.email)
    assert to_admin.subject == "Approval needed: Shared meeting room, Tue, Dec 1, 2026 14:00–15:00"
    assert "Emily Chen" in to_admin.body_text
    assert "http://127.0.0.1:5000/staff/queue" in to_admin.body_text
    to_staff = one(recipient=staff_zh.email)
    assert "共享会议室" in to_staff.subject  # each staff member in their own language


def test_approve_then_cancel_sends_request_then_cancel_with_a_higher_sequence(app, space, english, staff, book, now):
    booking = book(space("meeting-room", approval="always"), english, START, END)
    services.approve(db.session, services.context(staff, now=now), booking.id)
    services.cancel(db.session, services.context(staff, now=now), booking.id, reason="Water leak in the room")

    confirmed = one(booking_id=booking.id, kind="confirmed")
    _, request_event = calendar_of(confirmed)
    assert confirmed.ics_method == "REQUEST"
    assert request_event["SEQUENCE"] == 1

    cancelled = one(booking_id=booking.id, kind="cancelled")
    cal, cancel_event = calendar_of(cancelled)
    assert cancelled.ics_method == "CANCEL"
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(cancel_event["STATUS"]) == "CANCELLED"
    assert str(cancel_event["UID"]) == str(request_event["UID"])
    assert cancel_event["SEQUENCE"] == 2 > request_event["SEQUENCE"]
    assert "李静 of the station's staff cancelled this booking." in cancelled.body_text
    assert "Reason: Water leak in the room" in cancelled.body_text
    assert "removes it from your calendar" in cancelled.body_text


def test_a_member_cancelling_reads_that_they_did(app, space, english, book, now):
    booking = book(space("meeting-room"), english, START, END)
    services.cancel(db.session, services.context(english, now=now), booking.id)

    row = one(booking_id=booking.id, kind="cancelled")
    assert "You cancelled this booking." in row.body_text
    assert calendar_of(row)[1]["SEQUENCE"] == 1


def test_cancelling_a_pending_request_sends_no_calendar_cancel(app, space, english, book, now):
    booking = book(space("meeting-room", approval="always"), english, START, END)
    services.cancel(db.session, services.context(english, now=now), booking.id)

    row = one(booking_id=booking.id, kind="cancelled")
    assert row.ics is None
    assert row.ics_method is None
    assert "removes it from your calendar" not in row.body_text


def test_a_rejection_carries_the_reason(app, space, chinese, staff, book, now):
    booking = book(space("meeting-room", approval="always"), chinese, START, END)
    services.reject(db.session, services.context(staff, now=now), booking.id, "该时段已安排党建活动")

    row = one(booking_id=booking.id, kind="rejected")
    assert row.recipient == chinese.email
    assert "该时段已安排党建活动" in row.body_text
    assert "该时段已安排党建活动" in row.body_html
    assert row.ics is None


def test_an_expired_request_is_reported(app, space, english, book, now):
    booking = book(space("meeting-room", approval="always"), english, START, END)
    services.expire_pending(db.session, services.context(None, now=END))

    row = one(booking_id=booking.id, kind="expired")
    assert row.subject.startswith("Request expired:")


def test_whole_day_bookings_read_as_inclusive_dates(app, space, english, staff, book, now):
    exhibition = space("exhibition")
    booking = book(exhibition, english, shanghai(2026, 12, 10), shanghai(2026, 12, 13), title="Green finance")
    services.approve(db.session, services.context(staff, now=now), booking.id)

    row = one(booking_id=booking.id, kind="confirmed")
    assert "Dec 10\u2009–\u200912, 2026" in row.body_text  # the last day booked, not the exclusive end
    _, event = calendar_of(row)
    assert event["DTSTART"].dt == date(2026, 12, 10)
    assert event["DTEND"].dt == date(2026, 12, 13)  # DTEND;VALUE=DATE is exclusive


def test_user_text_is_escaped_in_html_and_kept_out_of_headers(app, space, english, book):
    booking = book(space("meeting-room"), english, START, END, title='<b>"Board"</b>\nBcc: x@example.com')

    row = one(booking_id=booking.id)
    assert "<b>" not in row.body_html
    assert "&lt;b&gt;" in row.body_html
    assert "\n" not in row.subject


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    # migrations/env.py's fileConfig() disables every logger that exists when a migration
    # runs in this process (test_migrations does); these tests read ours
    for name in ("booking.mail", "booking.notifications"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    return caplog


def test_a_broken_template_costs_a_retry_never_the_booking(app, space, english, book, monkeypatch, logs):
    booking = book(space("meeting-room"), english, START, END, title="Kept")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("template bug")

    monkeypatch.setattr(notifications, "compose", broken)
    with logs.at_level(logging.ERROR, logger="booking.mail"):
        assert mail.send_pending(app) == (0, 1)
    db.session.rollback()
    assert db.session.get(Booking, booking.id).status == "confirmed"
    (row,) = db.session.scalars(select(OutgoingMail)).all()
    assert (row.sent_at, row.body_text) == (None, None)
    assert "RuntimeError: template bug" in (row.last_error or "")
    assert "could not be composed" in logs.text

    monkeypatch.undo()  # the fixed release sends it, composed from the facts of the change
    db.session.execute(update(OutgoingMail).values(last_error=None))
    db.session.commit()
    assert mail.send_pending(app) == (1, 0)
    assert one().subject.startswith("Confirmed: Kept")


def test_mail_says_what_happened_then_even_if_the_booking_changed_since(app, space, english, book, now):
    booking = book(space("meeting-room"), english, START, END, title="Before")
    db.session.execute(update(Booking).where(Booking.id == booking.id).values(title="After", revision=7))
    db.session.commit()

    row = one(booking_id=booking.id)
    assert row.subject.startswith("Confirmed: Before")
    _, event = calendar_of(row)
    assert (str(event["SUMMARY"]), int(event["SEQUENCE"])) == ("Before", 0)


def test_without_mail_server_messages_go_to_the_log(app, space, english, book, logs):
    book(space("meeting-room"), english, START, END, title="Logged")
    with logs.at_level(logging.INFO, logger="booking.mail"):
        assert mail.send_pending(app) == (1, 0)
    assert one().sent_at is not None
    assert "mail (MAIL_SERVER not set) to emily@example.com: Confirmed: Logged" in logs.text
    assert "Hello Emily Chen," in logs.text


def test_the_listener_is_registered_once_however_many_apps(app, database_url):
    more = [create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url}) for _ in range(2)]
    assert services.listeners.count(notifications.on_booking_change) == 1
    for other in more:
        with other.app_context():
            db.engine.dispose()


# -- reminders ------------------------------------------------------------------------------


def test_reminders_cover_confirmed_bookings_in_the_next_day_once(app, space, english, chinese, book, now):
    room = space("meeting-room")
    due = book(room, english, START, END, title="Tomorrow")
    later = book(room, chinese, shanghai(2026, 12, 3, 10), shanghai(2026, 12, 3, 11), title="Thursday")
    gone = book(room, chinese, shanghai(2026, 12, 1, 16), shanghai(2026, 12, 1, 17), title="Cancelled")
    services.cancel(db.session, services.context(chinese, now=now), gone.id)
    evening = shanghai(2026, 11, 30, 18)

    assert notifications.queue_reminders(db.session, now=evening, within=timedelta(hours=36)) == 1
    assert notifications.queue_reminders(db.session, now=evening, within=timedelta(hours=36)) == 0

    reminder = one(kind="reminder")
    assert (reminder.booking_id, reminder.recipient) == (due.id, english.email)
    assert reminder.subject == "Reminder: Tomorrow, Tue, Dec 1, 2026 14:00–15:00"
    assert reminder.sent_at is None  # the command sends the whole outbox next
    db.session.rollback()
    assert db.session.get(Booking, due.id).reminded_at == evening
    assert db.session.get(Booking, later.id).reminded_at is None


def test_send_reminders_twice_reminds_once(app, space, english, book, runner):
    # the command reads the application's clock: book for tomorrow 10:00 station time, 10 to 34 hours away
    room = space("meeting-room", opening_hours={str(d): [["08:00", "22:00"]] for d in range(7)})
    real_now = clock.now().astimezone(START.tzinfo)
    start = datetime.combine(real_now.date() + timedelta(days=1), datetime.min.time(), tzinfo=START.tzinfo)
    start += timedelta(hours=10)
    book(room, english, start, start + timedelta(hours=1), now=real_now)

    first = runner.invoke(args=["booking", "send-reminders"])
    second = runner.invoke(args=["booking", "send-reminders"])

    assert first.exit_code == 0, first.output
    assert "reminders: 1 queued; mail: 2 sent, 0 failed" in first.output  # and the queued confirmation
    assert "reminders: 0 queued; mail: 0 sent, 0 failed" in second.output
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(OutgoingMail.kind == "reminder")) == 1


def test_a_confirmed_booking_sent_back_to_the_queue_and_rejected_is_cancelled_in_the_calendar(
    app, space, english, staff, book, now
):
    room = space("meeting-room", approval="always")
    booking = book(room, english, START, END)
    ctx = services.context(staff, now=now)
    services.approve(db.session, ctx, booking.id)
    # back to the queue (as a change that needs approval will send it), through the one transition
    with write_transaction(db.session):
        services.lock_space(db.session, room.id)
        services.transition(
            db.session,
            ctx,
            db.session.get(Booking, booking.id),
            from_statuses=["confirmed"],
            to_status="pending",
            reason=None,
            action="requested",
        )
    services.reject(db.session, ctx, booking.id, reason="The room is needed for the council")

    request_event = calendar_of(one(booking_id=booking.id, kind="confirmed"))[1]
    rejected = one(booking_id=booking.id, kind="rejected")
    assert rejected.ics_method == "CANCEL"
    cal, cancel_event = calendar_of(rejected)
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(cancel_event["UID"]) == str(request_event["UID"])
    assert cancel_event["SEQUENCE"] > request_event["SEQUENCE"]


def test_rejecting_a_request_never_confirmed_sends_no_calendar_cancel(app, space, english, staff, book, now):
    booking = book(space("meeting-room", approval="always"), english, START, END)
    services.reject(db.session, services.context(staff, now=now), booking.id, reason="Not this week")
    row = one(booking_id=booking.id, kind="rejected")
    assert (row.ics, row.ics_method) == (None, None)
