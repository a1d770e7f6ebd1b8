"""Sending the outbox: OutgoingMail rows go out only after the change they report commits.

When mail is sent
-----------------
`booking.notifications` INSERTs OutgoingMail rows (the facts of the change, composed into
text by the sender, see `_compose`) inside the booking's write transaction and hands their
ids to `schedule()`, which parks them in `session.info`. A SQLAlchemy
`after_commit` listener picks them up once the database has committed (a rollback drops
them with the rows), and sends them when the work that made the change is over:

- in a web request, after the response has gone to the browser
  (`response.call_on_close`), so nobody waits for an SMTP server to click "book";
- in a CLI command (`expire-pending`, `demo`, …), when the command finishes;
- anywhere else (a shell, a worker thread, a test calling the services) they stay in
  the outbox for `send_pending()` or the cron job below. Sending in the middle of
  someone else's unit of work would only make it slower.

Either way the booking is already committed, and no exception from sending leaves this
module: a failed send is logged, counted in `attempts`, described in `last_error`, and
retried by `flask booking send-pending-mail` (run it from cron every few minutes: it is
the safety net for all of the above) or `flask booking send-reminders`.

Claiming a row
--------------
Several gunicorn workers and cron runs may look at the same unsent row. Each send first
claims it with a compare-and-swap on `attempts` (UPDATE … WHERE sent_at IS NULL AND
attempts = <seen>): exactly one claimer wins, and the claim writes a lease into
`last_error` ("sending since <UTC time>") that others respect. A lease outlives any
send (many times MAIL_TIMEOUT), so a worker that died mid-send only delays its row.
No transaction is held open while talking to SMTP: SQLite would stop every booking.

Without MAIL_SERVER "sending" means logging the message at INFO and marking it sent.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Protocol

import click
from flask import Flask, Response, current_app, g, has_request_context
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from booking.bookings.models import OutgoingMail
from booking.db import utcnow, write_transaction
from booking.extensions import db

log = logging.getLogger(__name__)

# Headers and bodies 7-bit clean (base64 / quoted-printable, RFC 2047 headers) with CRLF
# line ends: no reliance on the relay announcing 8BITMIME, and the iCalendar part keeps
# the CRLFs RFC 5545 asks for.
MAIL_POLICY = policy.SMTP.clone(cte_type="7bit")

_SESSION_IDS = "booking.mail.pending_ids"
_SESSION_APP = "booking.mail.app"
_G_IDS = "booking_mail_after_response"
_CLICK_IDS = "booking.mail.after_command"
_LEASE_PREFIX = "sending since "
_LEASE_RE = re.compile(r"^sending since (\S+)")

# Errors about one message; anything else (refused connection, timeout, dropped link,
# failed login) is about the server, and the rest of the batch is not tried against it.
_MESSAGE_ERRORS = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPNotSupportedError,
    UnicodeError,
    ValueError,
)


@dataclass(frozen=True)
class MailConfig:
    server: str
    port: int
    use_tls: bool
    username: str
    password: str
    sender: str  # MAIL_FROM as configured: "station@host" or "Name <station@host>"
    timeout: float
    host: str  # BOOKING_HOST, for Message-IDs

    @classmethod
    def from_app(cls, app: Flask) -> MailConfig:
        c = app.config
        return cls(
            server=c.get("MAIL_SERVER") or "",
            port=int(c.get("MAIL_PORT") or 25),
            use_tls=bool(c.get("MAIL_USE_TLS")),
            username=c.get("MAIL_USERNAME") or "",
            password=c.get("MAIL_PASSWORD") or "",
            sender=c.get("MAIL_FROM") or "station@station.local",
            timeout=float(c.get("MAIL_TIMEOUT") or 10),
            host=c.get("BOOKING_HOST") or "station.local",
        )

    @property
    def envelope_sender(self) -> str:
        return parseaddr(self.sender)[1] or self.sender

    @property
    def lease(self) -> timedelta:
        """Longer than any single send: connect, TLS, login and the SMTP dialogue each get MAIL_TIMEOUT."""
        return max(timedelta(minutes=5), timedelta(seconds=20 * self.timeout))


# -- after-commit scheduling ----------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Hook sending onto commits (once per process) and onto this app's responses."""
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
    app.after_request(_send_after_response)


def schedule(session: Session, ids: Iterable[int]) -> None:
    """Send these outbox rows once the session's transaction commits."""
    ids = list(ids)
    if not ids:
        return
    session.info.setdefault(_SESSION_IDS, []).extend(ids)
    session.info[_SESSION_APP] = current_app._get_current_object()  # type: ignore[attr-defined]


def _after_commit(session: Session) -> None:
    ids = session.info.pop(_SESSION_IDS, None)
    app = session.info.pop(_SESSION_APP, None)
    if not ids or app is None:
        return
    if has_request_context():  # first: `flask run` may serve requests inside its command
        g.setdefault(_G_IDS, []).extend(ids)
        return
    command = click.get_current_context(silent=True)
    if command is not None:
        pending = command.meta.get(_CLICK_IDS)
        if pending is None:
            pending = command.meta[_CLICK_IDS] = []
            command.call_on_close(lambda: send_quietly(app, command.meta.pop(_CLICK_IDS, [])))
        pending.extend(ids)
        return
    log.debug("mail %s queued; send_pending() or `booking send-pending-mail` sends it", ids)


def _after_rollback(session: Session) -> None:
    # the rows went with the transaction
    session.info.pop(_SESSION_IDS, None)
    session.info.pop(_SESSION_APP, None)


def _send_after_response(response: Response) -> Response:
    ids = g.pop(_G_IDS, None)
    if ids:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        response.call_on_close(lambda: send_quietly(app, ids))
    return response


def send_quietly(app: Flask, ids: Sequence[int] | None = None) -> tuple[int, int]:
    """send_pending that never raises: for hooks that run after a booking change."""
    try:
        return send_pending(app, ids=ids)
    except Exception:  # a broken outbox must not turn a committed booking into an error page
        log.exception("sending queued mail failed; `flask booking send-pending-mail` retries it")
        return 0, len(ids or ())


# -- sending --------------------------------------------------------------------------------


class Transport(Protocol):
    def send(self, message: EmailMessage, sender: str, recipient: str) -> None: ...

    def close(self) -> None: ...


class LogTransport:
    """No MAIL_SERVER: the message goes to the log, in full, so a demo or a developer sees it."""

    def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        log.info("mail (MAIL_SERVER not set) to %s: %s\n%s", recipient, message["Subject"], text)

    def close(self) -> None:
        pass


class SMTPTransport:
    """One SMTP connection for a batch. Port 465 means implicit TLS; MAIL_USE_TLS means STARTTLS."""

    def __init__(self, config: MailConfig) -> None:
        context = ssl.create_default_context()
        self.smtp: smtplib.SMTP
        if config.port == 465:
            self.smtp = smtplib.SMTP_SSL(config.server, config.port, timeout=config.timeout, context=context)
        else:
            self.smtp = smtplib.SMTP(config.server, config.port, timeout=config.timeout)
        try:
            self.smtp.ehlo()
            if config.use_tls and config.port != 465:
                self.smtp.starttls(context=context)
                self.smtp.ehlo()
            if config.username:
                self.smtp.login(config.username, config.password)
        except BaseException:
            self.smtp.close()
            raise

    def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        self.smtp.send_message(message, from_addr=sender, to_addrs=[recipient])

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()


def open_transport(config: MailConfig) -> Transport:
    return SMTPTransport(config) if config.server else LogTransport()


def send_pending(
    app: Flask | None = None,
    *,
    ids: Sequence[int] | None = None,
    limit: int = 500,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Send unsent rows (these `ids`, or the oldest `limit`); returns (sent, failed).

    Runs in its own short transactions on its own session, never in the caller's.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    config = MailConfig.from_app(app)
    with app.app_context():
        engine = db.engine
    with Session(engine, expire_on_commit=False) as session:
        return _send_batch(app, session, config, ids=ids, limit=limit, now=now)


def compose_pending(app: Flask | None = None) -> int:
    """Compose every queued row that is not yet, without sending: for looking at the outbox.

    The sender composes rows as it sends them; this only lets a test or an operator
    read what will go out. Returns how many rows were composed.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    with app.app_context():
        engine = db.engine
    with Session(engine, expire_on_commit=False) as session:
        rows = session.scalars(
            select(OutgoingMail).where(OutgoingMail.body_text.is_(None)).order_by(OutgoingMail.id)
        ).all()
        session.commit()
        for row in rows:
            _compose(app, session, row)
        return len(rows)


def _compose(app: Flask, session: Session, mail: OutgoingMail) -> None:
    """Booking mail is queued as facts: compose it once, store it, and keep it for retries."""
    from booking.notifications import compose_row  # notifications imports this module

    with app.app_context():
        composed = compose_row(session, mail)
    with write_transaction(session):
        session.execute(
            update(OutgoingMail)
            .where(OutgoingMail.id == mail.id, OutgoingMail.body_text.is_(None))
            .values(
                subject=composed.subject, body_text=composed.body_text, body_html=composed.body_html, ics=composed.ics
            )
            .execution_options(synchronize_session=False)
        )
    for name in ("subject", "body_text", "body_html", "ics"):
        set_committed_value(mail, name, getattr(composed, name))


def _send_batch(
    app: Flask,
    session: Session,
    config: MailConfig,
    *,
    ids: Sequence[int] | None,
    limit: int,
    now: datetime | None,
) -> tuple[int, int]:
    stmt = select(OutgoingMail.id, OutgoingMail.attempts, OutgoingMail.last_error).where(OutgoingMail.sent_at.is_(None))
    if ids is not None:
        stmt = stmt.where(OutgoingMail.id.in_(list(ids)))
    candidates = session.execute(stmt.order_by(OutgoingMail.id).limit(limit)).all()
    session.commit()  # end the read; every claim below is its own short write

    transport: Transport | None = None
    server_error: str | None = None  # once the server failed, the rest of the batch waits for a retry
    sent = failed = 0
    try:
        for mail_id, attempts, last_error in candidates:
            claimed_at = now or utcnow()
            if _leased(last_error, claimed_at, config.lease):
                continue
            mail = _claim(session, mail_id, attempts, claimed_at)
            if mail is None:
                continue
            if server_error is not None:
                _record_failure(session, mail, server_error)
                failed += 1
                continue
            try:
                if mail.body_text is None:
                    _compose(app, session, mail)
            except Exception as exc:  # a template bug: the row waits, with the error, for a fixed release
                log.exception("mail %d (%s) could not be composed", mail.id, mail.kind)
                _record_failure(session, mail, _describe(exc))
                failed += 1
                continue
            try:
                message = build_message(mail, config)
                if transport is None:
                    transport = open_transport(config)
                transport.send(message, config.envelope_sender, mail.recipient)
            except _MESSAGE_ERRORS as exc:
                _record_failure(session, mail, _describe(exc))
                failed += 1
            except Exception as exc:  # the server: refused, timed out, hung up, bad login
                server_error = _describe(exc)
                _record_failure(session, mail, server_error)
                failed += 1
                if transport is not None:
                    transport.close()
                    transport = None
            else:
                _mark_sent(session, mail, now or utcnow())
                sent += 1
    finally:
        if transport is not None:
            transport.close()
    if failed:
        log.warning("mail: %d sent, %d failed (%s); they are retried by send-pending-mail", sent, failed, server_error)
    return sent, failed


def _leased(last_error: str | None, now: datetime, lease: timedelta) -> bool:
    """Another worker claimed this row and may still be sending it."""
    match = _LEASE_RE.match(last_error or "")
    if not match:
        return False
    try:
        claimed = datetime.fromisoformat(match.group(1))
    except ValueError:
        return False
    return claimed.tzinfo is not None and now - claimed < lease


def _claim(session: Session, mail_id: int, seen_attempts: int, now: datetime) -> OutgoingMail | None:
    """Compare-and-swap on `attempts`: exactly one claimer of this attempt wins."""
    lease = f"{_LEASE_PREFIX}{now.isoformat()} ({socket.gethostname()}:{os.getpid()})"
    with write_transaction(session):
        result = session.execute(
            update(OutgoingMail)
            .where(
                OutgoingMail.id == mail_id,
                OutgoingMail.sent_at.is_(None),
                OutgoingMail.attempts == seen_attempts,
            )
            .values(attempts=seen_attempts + 1, last_error=lease)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return session.get(OutgoingMail, mail_id, populate_existing=True)


def _mark_sent(session: Session, mail: OutgoingMail, now: datetime) -> None:
    with write_transaction(session):
        session.execute(
            update(OutgoingMail)
            .where(OutgoingMail.id == mail.id, OutgoingMail.sent_at.is_(None))
            .values(sent_at=now, last_error=None)
            .execution_options(synchronize_session=False)
        )
    log.info("mail %d (%s) sent to %s", mail.id, mail.kind, mail.recipient)


def _record_failure(session: Session, mail: OutgoingMail, error: str) -> None:
    # guarded by our own attempt number: never overwrite a newer claimer's lease
    with write_transaction(session):
        session.execute(
            update(OutgoingMail)
            .where(OutgoingMail.id == mail.id, OutgoingMail.sent_at.is_(None), OutgoingMail.attempts == mail.attempts)
            .values(last_error=error[:2000])
            .execution_options(synchronize_session=False)
        )
    log.warning(
        "mail %d (%s) to %s not sent (attempt %d): %s", mail.id, mail.kind, mail.recipient, mail.attempts, error
    )


def _describe(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


# -- the message ----------------------------------------------------------------------------


def ics_method(ics: str) -> str | None:
    """The calendar's own METHOD: the MIME parameter is taken from here so the two never differ."""
    for line in ics.splitlines():
        if line.upper().startswith("METHOD:"):
            return line.split(":", 1)[1].strip().upper()
        if line.upper().startswith("BEGIN:VEVENT"):
            break
    return None


def build_message(mail: OutgoingMail, config: MailConfig) -> EmailMessage:
    """Plain text, HTML and, for invitations, the iTIP calendar, laid out as Google Calendar does:

    multipart/mixed
      multipart/alternative
        text/plain
        text/html
        text/calendar; method=REQUEST|CANCEL   <- Outlook and Apple Mail act on this part
      application/ics; invite.ics              <- a file to open or import anywhere else

    The `method` parameter is read from the body's METHOD (Outlook ignores a mismatch).
    """
    message = EmailMessage(policy=MAIL_POLICY)
    message["Subject"] = " ".join((mail.subject or "").split())
    message["From"] = config.sender
    message["To"] = mail.recipient
    message["Date"] = format_datetime(mail.created_at)
    # stable across retries, so a relay that got a "failed" send twice can drop the copy
    message["Message-ID"] = f"<mail-{mail.id}.{mail.created_at:%Y%m%d%H%M%S}@{config.host}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message["X-Auto-Response-Suppress"] = "All"  # the same, for Exchange
    message.set_content(mail.body_text or "", subtype="plain", charset="utf-8")
    if mail.body_html:
        message.add_alternative(mail.body_html, subtype="html", charset="utf-8")
    if mail.ics:
        method = ics_method(mail.ics)
        if method is None:
            raise ValueError(f"mail {mail.id}: calendar without METHOD")
        if mail.ics_method and mail.ics_method.upper() != method:
            log.warning("mail %d: ics_method %s differs from the body's METHOD %s", mail.id, mail.ics_method, method)
        message.add_alternative(mail.ics, subtype="calendar", charset="utf-8", params={"method": method})
        message.add_attachment(
            mail.ics.encode("utf-8"),
            maintype="application",
            subtype="ics",
            filename="invite.ics",
        )
    return message


def sender_address(app: Flask | None = None) -> tuple[str, str]:
    """(address, display name) of MAIL_FROM, for the invitation's ORGANIZER."""
    config: dict[str, Any] = (app or current_app).config
    name, address = parseaddr(config.get("MAIL_FROM") or "")
    return address or "station@station.local", name
