"""Booking mail through a real SMTP server (aiosmtpd on a loopback port).

What arrives, in which language, with which calendar; and that a dead server neither
undoes nor blocks a booking change, the outbox keeps the message, and
`booking send-pending-mail` delivers it once the server is back.
"""

from __future__ import annotations

import email
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask, request
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import select, update

from booking import mail
from booking.auth.models import User
from booking.bookings import services
from booking.bookings.models import Booking, OutgoingMail
from booking.db import utcnow
from booking.extensions import db
from tests.conftest import shanghai

START, END = shanghai(2026, 12, 1, 14), shanghai(2026, 12, 1, 15)


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.envelopes: list[Any] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            time.sleep(self.delay)  # a slow server: keeps two senders' batches overlapping
        with self.lock:
            self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [email.message_from_bytes(e.original_content, policy=policy.default) for e in self.envelopes]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SMTPServer:
    def __init__(self, port: int, delay: float = 0.0) -> None:
        self.port = port
        self.inbox = Inbox(delay)
        self.controller: Controller | None = None

    def start(self) -> Inbox:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self.inbox

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(app: Flask) -> Iterator[SMTPServer]:
    """A configured but not yet started server: call .start() (tests of a dead server don't)."""
    server = SMTPServer(free_port())
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, MAIL_TIMEOUT=5)
    yield server
    server.stop()


@pytest.fixture
def inbox(smtp: SMTPServer) -> Inbox:
    return smtp.start()


@pytest.fixture
def english(make_user: Any) -> Any:
    return make_user(email="emily@example.com", display_name="Emily Chen", language="en")


@pytest.fixture
def chinese(make_user: Any) -> Any:
    return make_user(email="wang@example.com", display_name="王小明", language="zh_Hans_CN")


def calendar_part(message: EmailMessage) -> tuple[EmailMessage, Any]:
    """The text/calendar alternative, checked against the body: MIME method == METHOD."""
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    part = parts[0]
    cal = Calendar.from_ical(part.get_content())
    assert part.get_param("method") == str(cal["METHOD"])
    assert part.get_content_charset() == "utf-8"
    return part, cal


def attached_ics(message: EmailMessage) -> str:
    (attachment,) = [p for p in message.iter_attachments() if p.get_filename() == "invite.ics"]
    assert attachment.get_content_type() == "application/ics"
    return attachment.get_content().decode("utf-8")


def plain(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def deliver(app: Flask) -> tuple[int, int]:
    """What cron's `send-pending-mail` does; services called outside a request leave mail queued."""
    return mail.send_pending(app)


@pytest.fixture
def web(app: Flask, now: Any) -> FlaskClient:
    """A client for a test-only route that calls a service inside a real request, as the views do."""

    @app.post("/test-only/<action>/<int:booking_id>")
    def act(action: str, booking_id: int) -> str:
        actor = db.session.get(User, int(request.form["actor"]))
        ctx = services.context(actor, now=now)
        reason = request.form.get("reason")
        if action == "approve":
            return services.approve(db.session, ctx, booking_id).status
        if action == "reject":
            return services.reject(db.session, ctx, booking_id, reason or "").status
        return services.cancel(db.session, ctx, booking_id, reason).status

    return app.test_client()


def outbox() -> list[OutgoingMail]:
    db.session.rollback()
    return list(db.session.scalars(select(OutgoingMail).order_by(OutgoingMail.id)))


def test_a_confirmation_arrives_with_its_invitation(app, space, english, book, inbox):
    booking = book(space("meeting-room"), english, START, END, title="Quarterly review")
    assert deliver(app) == (1, 0)

    (message,) = inbox.to("emily@example.com")
    assert message["Subject"] == "Confirmed: Quarterly review, Tue, Dec 1, 2026 14:00–15:00"
    assert message["From"] == "station@station.local"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/mixed"
    assert "Hello Emily Chen," in plain(message)
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    assert "Quarterly review" in html.get_content()
    assert inbox.envelopes[0].rcpt_tos == ["emily@example.com"]

    part, cal = calendar_part(message)
    assert part.get_param("method") == "REQUEST"
    (event,) = cal.walk("VEVENT")
    assert str(event["UID"]) == f"booking-{booking.id}@station.test"
    assert event["SEQUENCE"] == 0
    assert event["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert event["DTSTART"].dt == START
    assert event["DTEND"].dt == END
    assert event["DTSTART"].dt.tzinfo.key == "Asia/Shanghai"
    assert "\r\nMETHOD:REQUEST\r\n" in part.get_content()  # CRLF survives the trip
    assert attached_ics(message) == part.get_content()

    (row,) = outbox()
    assert row.sent_at is not None
    assert row.last_error is None
    assert row.attempts == 1


def test_a_chinese_member_reads_chinese(app, space, chinese, book, inbox):
    book(space("meeting-room"), chinese, START, END, title="部门周例会")
    deliver(app)

    (message,) = inbox.to("wang@example.com")
    assert "部门周例会" in message["Subject"]
    assert "2026年12月1日周二 14:00–15:00" in message["Subject"]  # Babel's Chinese date
    text = plain(message)
    assert "共享会议室" in text
    assert "2026年12月1日周二 14:00–15:00" in text
    _, cal = calendar_part(message)
    (event,) = cal.walk("VEVENT")
    assert str(event["SUMMARY"]) == "部门周例会"
    assert "共享会议室" in str(event["LOCATION"])


def test_request_approve_cancel_add_and_remove_one_calendar_event(app, space, english, make_user, book, now, inbox):
    staff = make_user(email="lijing@example.com", display_name="李静", role="staff", language="zh_Hans_CN")
    booking = book(space("meeting-room", approval="always"), english, START, END, title="Roadshow")
    assert deliver(app) == (2, 0)
    (to_staff,) = inbox.to(staff.email)
    assert "共享会议室" in to_staff["Subject"]  # staff read Chinese, the requester English
    (received,) = inbox.to(english.email)
    assert received["Subject"].startswith("Request received: Roadshow")
    assert not [p for p in received.walk() if p.get_content_type() == "text/calendar"]

    services.approve(db.session, services.context(staff, now=now), booking.id)
    deliver(app)
    confirmed = inbox.to(english.email)[-1]
    assert confirmed["Subject"].startswith("Confirmed: Roadshow")
    request_part, request_cal = calendar_part(confirmed)
    assert request_part.get_param("method") == "REQUEST"
    (request_event,) = request_cal.walk("VEVENT")

    services.cancel(db.session, services.context(staff, now=now), booking.id, reason="Water leak")
    deliver(app)
    cancelled = inbox.to(english.email)[-1]
    assert cancelled["Subject"].startswith("Cancelled: Roadshow")
    assert "李静 of the station's staff cancelled this booking." in plain(cancelled)
    assert "Reason: Water leak" in plain(cancelled)
    cancel_part, cancel_cal = calendar_part(cancelled)
    assert cancel_part.get_param("method") == "CANCEL"
    (cancel_event,) = cancel_cal.walk("VEVENT")
    assert str(cancel_event["STATUS"]) == "CANCELLED"
    assert str(cancel_event["UID"]) == str(request_event["UID"])
    assert cancel_event["SEQUENCE"] > request_event["SEQUENCE"]
    assert "METHOD:CANCEL" in attached_ics(cancelled)


def test_a_rejection_arrives_with_its_reason(app, space, english, staff, book, web, inbox):
    booking = book(space("meeting-room", approval="always"), english, START, END)
    reason = "The room is booked for a council meeting"
    with web.post(f"/test-only/reject/{booking.id}", data={"actor": staff.id, "reason": reason}) as response:
        assert response.get_data(as_text=True) == "rejected"

    (rejected,) = inbox.to(english.email)  # sent after the response; the request mail is still queued
    assert rejected["Subject"].startswith("Not approved:")
    assert f"Reason: {reason}" in plain(rejected)


def test_in_a_request_mail_goes_out_after_the_response(app, space, english, book, web, inbox):
    booking = book(space("meeting-room"), english, START, END)
    assert deliver(app) == (1, 0)
    inbox.envelopes.clear()

    response = web.post(f"/test-only/cancel/{booking.id}", data={"actor": english.id})
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "cancelled"
    assert inbox.messages == []  # the browser has its answer before SMTP is touched
    response.close()  # what the WSGI server does once the response is sent

    (message,) = inbox.messages
    assert calendar_part(message)[1]["METHOD"] == "CANCEL"


def test_a_dead_server_neither_undoes_nor_blocks_the_change_and_the_command_delivers_later(
    app, space, english, book, smtp, web, runner
):
    booking = book(space("meeting-room"), english, START, END)  # its confirmation waits in the outbox

    # smtp is configured but not started: the port refuses connections
    started = time.monotonic()
    with web.post(f"/test-only/cancel/{booking.id}", data={"actor": english.id}) as response:
        assert response.status_code == 200
        assert response.get_data(as_text=True) == "cancelled"
    assert time.monotonic() - started < 5  # refused at once, well inside MAIL_TIMEOUT

    db.session.rollback()
    assert db.session.get(Booking, booking.id).status == "cancelled"  # committed all the same
    confirmed, cancelled = outbox()
    assert (confirmed.kind, confirmed.sent_at, confirmed.attempts) == ("confirmed", None, 0)
    assert (cancelled.kind, cancelled.sent_at, cancelled.attempts) == ("cancelled", None, 1)
    assert "ConnectionRefusedError" in cancelled.last_error

    failing = runner.invoke(args=["booking", "send-pending-mail"])
    assert failing.exit_code == 1
    assert "mail: 0 sent, 2 failed" in failing.output
    assert all(r.sent_at is None and r.last_error for r in outbox())

    inbox = smtp.start()
    result = runner.invoke(args=["booking", "send-pending-mail"])

    assert result.exit_code == 0, result.output
    assert "mail: 2 sent, 0 failed" in result.output
    assert [m["Subject"].split(":")[0] for m in inbox.messages] == ["Confirmed", "Cancelled"]
    assert [calendar_part(m)[1]["METHOD"] for m in inbox.messages] == ["REQUEST", "CANCEL"]
    assert [(r.attempts, r.last_error) for r in outbox()] == [(2, None), (3, None)]
    assert all(r.sent_at is not None for r in outbox())
    again = runner.invoke(args=["booking", "send-pending-mail"])
    assert "mail: 0 sent, 0 failed" in again.output
    assert len(inbox.messages) == 2


def test_a_command_sends_its_mail_when_it_finishes(app, space, english, book, runner, inbox):
    # expire-pending reads the real clock: a pending request that started yesterday
    room = space("meeting-room", approval="always", opening_hours={str(d): [["08:00", "22:00"]] for d in range(7)})
    yesterday = utcnow().astimezone(START.tzinfo).replace(hour=10, minute=0, second=0, microsecond=0)
    yesterday -= timedelta(days=1)
    book(room, english, yesterday, yesterday + timedelta(hours=1), now=yesterday - timedelta(days=1))
    assert deliver(app) == (1, 0)
    inbox.envelopes.clear()

    result = runner.invoke(args=["booking", "expire-pending"])

    assert "expired 1 pending requests" in result.output
    (message,) = inbox.messages
    assert message["Subject"].startswith("Request expired:")


def test_two_senders_never_send_a_row_twice(app, space, make_user, book, smtp):
    room = space("reading-room")
    people = [make_user(language="en") for _ in range(6)]
    for person in people:
        book(room, person, START, END)  # outside a request: six rows wait in the outbox
    assert all(r.sent_at is None for r in outbox())

    smtp.inbox.delay = 0.05
    inbox = smtp.start()
    results: list[tuple[int, int]] = []
    barrier = threading.Barrier(2)

    def sender() -> None:
        barrier.wait()
        results.append(mail.send_pending(app))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(sent for sent, _ in results) == 6
    assert sorted(m["To"] for m in inbox.messages) == sorted(p.email for p in people)
    assert len({m["Message-ID"] for m in inbox.messages}) == 6
    assert all(r.sent_at is not None for r in outbox())


def test_a_fresh_claim_is_left_alone_and_a_stale_one_is_taken_over(app, space, english, book, smtp):
    book(space("meeting-room"), english, START, END)
    (row,) = outbox()
    inbox = smtp.start()

    claimed = f"sending since {utcnow().isoformat()} (another-host:1234)"
    db.session.execute(update(OutgoingMail).where(OutgoingMail.id == row.id).values(last_error=claimed))
    db.session.commit()
    assert mail.send_pending(app) == (0, 0)  # another worker may be sending it right now
    assert inbox.messages == []

    stale = f"sending since {(utcnow() - timedelta(hours=1)).isoformat()} (another-host:1234)"
    db.session.execute(update(OutgoingMail).where(OutgoingMail.id == row.id).values(last_error=stale))
    db.session.commit()
    assert mail.send_pending(app) == (1, 0)  # that worker died: the lease has run out
    assert len(inbox.messages) == 1


def test_reminders_arrive_once(app, space, english, book, runner, inbox):
    room = space("meeting-room", opening_hours={str(d): [["08:00", "22:00"]] for d in range(7)})
    real_now = utcnow().astimezone(START.tzinfo)
    start = real_now.replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=1)
    book(room, english, start, start + timedelta(hours=1), now=real_now, title="Tomorrow's meeting")
    assert deliver(app) == (1, 0)
    inbox.envelopes.clear()

    assert runner.invoke(args=["booking", "send-reminders"]).exit_code == 0
    assert runner.invoke(args=["booking", "send-reminders"]).exit_code == 0

    (reminder,) = inbox.messages
    assert reminder["Subject"].startswith("Reminder: Tomorrow's meeting")
    assert "A reminder of your booking:" in plain(reminder)
