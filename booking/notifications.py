"""Mail about bookings, in each recipient's language, queued atomically with the change.

`services` calls `on_booking_change` inside the write transaction after every change.
It only INSERTs OutgoingMail rows; `booking.mail` sends them after the commit. What goes
to whom:

| change                        | to                                   | calendar        |
|-------------------------------|--------------------------------------|-----------------|
| requested (approval needed)   | requester; every active staff/admin  |                 |
| confirmed (at once or approved)| requester                           | REQUEST         |
| rejected                      | requester, with the reason           | CANCEL, if it had been confirmed |
| cancelled                     | requester, by whom and why           | CANCEL, if it had been confirmed |
| expired                       | requester                            | CANCEL, if it had been confirmed |
| reminder (`send-reminders`)   | requester, the day before            |                 |

Invitations reuse the feeds' UID (`booking-<id>@<BOOKING_HOST>`) and SEQUENCE
(`booking.revision`), so Outlook, Apple Mail and Thunderbird add, move and remove
one event rather than duplicating it.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import exists, insert, select, update
from sqlalchemy.orm import Session, joinedload

from booking import mail
from booking.auth.models import Organisation, User
from booking.bookings import services
from booking.bookings.models import AuditEvent, Booking, OutgoingMail, Status
from booking.db import write_transaction
from booking.feeds.ical import CalendarMeta, FeedEvent, render_calendar
from booking.i18n import format_span
from booking.spaces.models import Space

log = logging.getLogger(__name__)

STAFF_ROLES = ("staff", "admin")


def init_app(app: Flask) -> None:
    # create_app runs once per test: the listener list is process-wide, register once
    if on_booking_change not in services.listeners:
        services.listeners.append(on_booking_change)
    mail.init_app(app)


def on_booking_change(session: Session, booking: Booking, kind: str, actor: User | None, reason: str | None) -> None:
    queue_booking_mail(session, booking, kind, actor, reason)


@dataclass(frozen=True)
class Message:
    recipient: User
    kind: str  # request_received, staff_request, confirmed, rejected, cancelled, expired, reminder
    ics_method: str | None = None  # REQUEST or CANCEL: attach the booking as an invitation


def queue_booking_mail(
    session: Session,
    booking: Booking,
    kind: str,
    actor: User | None = None,
    reason: str | None = None,
    *,
    send_after_commit: bool = True,
) -> list[int]:
    """Queue the mail a booking change calls for; call inside the change's transaction.

    For closures and series too: cancelling bookings for a closure is `kind="cancelled"`
    with the closure's reason. Only the facts are written here, in one INSERT; the
    sender composes them after the commit (`compose_row`), so templates and the
    invitation never run under the write lock, and a template bug costs a retried
    send, never the booking. Returns the outbox ids.
    """
    messages = plan(session, booking, kind, actor)
    if not messages:
        return []
    facts = booking_facts(booking, actor, reason)
    rows = [
        {
            "booking_id": booking.id,
            "kind": message.kind,
            "recipient": message.recipient.email,
            "ics_method": message.ics_method,
            "facts": {**facts, "recipient": [message.recipient.display_name, message.recipient.language]},
        }
        for message in messages
    ]
    conn = session.connection()
    if len(rows) == 1:  # the usual case: one plain INSERT, not the executemany machinery
        ids = [conn.execute(_outbox_insert(many=False), rows[0]).scalar_one()]
    else:
        ids = list(conn.execute(_outbox_insert(many=True), rows).scalars())
    if send_after_commit:
        mail.schedule(session, ids)
    return ids


@functools.cache
def _outbox_insert(*, many: bool) -> Any:
    """Built once: every booking change on the write path runs it."""
    table = OutgoingMail.__table__
    return insert(table).returning(table.c.id, sort_by_parameter_order=many)


def booking_facts(booking: Booking, actor: User | None, reason: str | None) -> dict[str, Any]:
    """What a message about this change says, frozen now: the booking may change again before it is composed."""
    return {
        "booking": {
            "id": booking.id,
            "space_id": booking.space_id,
            "requester_id": booking.requester_id,
            "organisation_id": booking.organisation_id,
            "title": booking.title,
            "start_at": booking.start_at.isoformat(),
            "end_at": booking.end_at.isoformat(),
            "units": booking.units,
            "attendees": booking.attendees,
            "revision": booking.revision,
            "updated_at": booking.updated_at.isoformat(),
        },
        "actor": None if actor is None else [actor.id, actor.display_name, actor.is_staff],
        "reason": reason,
    }


def plan(session: Session, booking: Booking, kind: str, actor: User | None) -> list[Message]:
    requester = booking.requester
    if kind == "requested":
        staff = session.scalars(
            select(User)
            .where(User.role.in_(STAFF_ROLES), User.active.is_(True), User.id != requester.id)
            .order_by(User.id)
        ).all()
        return [Message(requester, "request_received")] + [Message(user, "staff_request") for user in staff]
    if kind == "confirmed":
        return [Message(requester, "confirmed", "REQUEST")]
    if kind in ("cancelled", "rejected", "expired"):
        # Withdrawn by any path: a CANCEL with the same UID for an event the requester's calendar
        # was sent (a booking once confirmed, then sent back to the queue and rejected, say);
        # a request that was only ever pending never was
        return [Message(requester, kind, "CANCEL" if _was_confirmed(session, booking) else None)]
    if kind == "reminder":
        return [Message(requester, kind)]
    log.warning("no mail for booking change %r", kind)
    return []


def _was_confirmed(session: Session, booking: Booking) -> bool:
    return bool(
        session.scalar(
            select(exists().where(AuditEvent.booking_id == booking.id, AuditEvent.to_status == Status.CONFIRMED.value))
        )
    )


@dataclass(frozen=True)
class MailBooking:
    """The booking as the facts recorded it, with its space, requester and member unit as they are now."""

    id: int
    space: Space
    requester: User
    requester_id: int
    organisation: Organisation | None
    title: str
    start_at: datetime
    end_at: datetime
    units: int
    attendees: int
    revision: int
    updated_at: datetime


@dataclass(frozen=True)
class MailActor:
    id: int
    display_name: str
    is_staff: bool


@dataclass(frozen=True)
class Composed:
    subject: str
    body_text: str
    body_html: str
    ics: str | None


def compose_row(session: Session, row: OutgoingMail) -> Composed:
    """Subject, bodies and invitation of a queued row, every word in the recipient's language."""
    facts = row.facts or {}
    b = facts["booking"]
    space = session.get_one(Space, b["space_id"], options=[joinedload(Space.location)])
    booking = MailBooking(
        id=b["id"],
        space=space,
        requester=session.get_one(User, b["requester_id"]),
        requester_id=b["requester_id"],
        organisation=session.get(Organisation, b["organisation_id"]) if b["organisation_id"] else None,
        title=b["title"],
        start_at=datetime.fromisoformat(b["start_at"]),
        end_at=datetime.fromisoformat(b["end_at"]),
        units=b["units"],
        attendees=b["attendees"],
        revision=b["revision"],
        updated_at=datetime.fromisoformat(b["updated_at"]),
    )
    actor = MailActor(*facts["actor"]) if facts.get("actor") else None
    name, language = facts["recipient"]
    return compose(booking, row.kind, name, language, actor, facts.get("reason"), row.ics_method)


def compose(
    booking: MailBooking,
    kind: str,
    recipient_name: str,
    language: str,
    actor: MailActor | None,
    reason: str | None,
    ics_method: str | None,
) -> Composed:
    with force_locale(language):
        context = _context(booking, recipient_name, language, kind, actor, reason)
        context["has_invitation"] = ics_method is not None
        subject = _subject(kind, context)
        text = _render(f"mail/{kind}.txt", subject=subject, **context)
        html = _render(f"mail/{kind}.html", subject=subject, **context)
        ics = invitation(booking, ics_method, language) if ics_method else None
    return Composed(subject=subject[:300], body_text=_tidy(text), body_html=html, ics=ics)


def _context(
    booking: MailBooking, recipient_name: str, locale: str, kind: str, actor: MailActor | None, reason: str | None
) -> dict[str, Any]:
    space = booking.space
    location = space.location
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return {
        "kind": kind,
        "html_lang": "zh-Hans" if locale.startswith("zh") else "en",
        "recipient_name": recipient_name,
        "requester_name": booking.requester.display_name,
        "organisation": booking.organisation.name(locale) if booking.organisation else "",
        "title": booking.title,
        "space_name": space.name(locale),
        "station_name": location.name(locale),
        "when": when(booking, locale),
        "units": booking.units if space.capacity > 1 else None,
        "unit_label": space.unit_label(locale),
        "attendees": booking.attendees,
        "reason": (reason or "").strip() or None,
        "booking_url": f"{base}/bookings/{booking.id}",
        "queue_url": f"{base}/staff/queue",
        "cancel_lead": _cancel_lead(booking, actor) if kind == "cancelled" else "",
    }


def _cancel_lead(booking: MailBooking, actor: MailActor | None) -> str:
    """Who cancelled: the requester reads "you", anyone else reads a name."""
    if actor is None:
        return _("The station cancelled this booking.")
    if actor.id == booking.requester_id:
        return _("You cancelled this booking.")
    if actor.is_staff:
        return _("%(name)s of the station's staff cancelled this booking.", name=actor.display_name)
    return _("%(name)s cancelled this booking.", name=actor.display_name)


def when(booking: Booking | MailBooking, locale: str) -> str:
    """Station-local time in the reader's format; whole days inclusive ('Dec 1 – 3, 2026')."""
    with force_locale(locale):
        return format_span(
            booking.start_at, booking.end_at, whole_days=booking.space.whole_days, tz=booking.space.location.tz
        )


def _subject(kind: str, context: dict[str, Any]) -> str:
    title, when_text, space = context["title"], context["when"], context["space_name"]
    subjects = {
        "request_received": _("Request received: %(title)s, %(when)s", title=title, when=when_text),
        "staff_request": _("Approval needed: %(space)s, %(when)s", space=space, when=when_text),
        "confirmed": _("Confirmed: %(title)s, %(when)s", title=title, when=when_text),
        "rejected": _("Not approved: %(title)s, %(when)s", title=title, when=when_text),
        "cancelled": _("Cancelled: %(title)s, %(when)s", title=title, when=when_text),
        "expired": _("Request expired: %(title)s, %(when)s", title=title, when=when_text),
        "reminder": _("Reminder: %(title)s, %(when)s", title=title, when=when_text),
    }
    return " ".join(subjects[kind].split())  # a title with a line break must not break the header


def _render(name: str, **context: Any) -> str:
    # Not render_template: the app's context processors read the logged-in user and the
    # request, which a CLI command or a cron job does not have.
    return current_app.jinja_env.get_template(name).render(**context)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def invitation(booking: MailBooking, method: str, locale: str) -> str:
    """The booking as an iTIP REQUEST or CANCEL, with the feeds' UID and SEQUENCE."""
    config = current_app.config
    space = booking.space
    location = space.location
    tz = location.tz
    if space.whole_days:
        start: Any = booking.start_at.astimezone(tz).date()
        end: Any = booking.end_at.astimezone(tz).date()  # exclusive, as DTEND;VALUE=DATE wants
    else:
        start, end = booking.start_at, booking.end_at
    address, name = mail.sender_address()
    url = f"{config['PUBLIC_URL'].rstrip('/')}/bookings/{booking.id}"
    event = FeedEvent(
        uid=f"booking-{booking.id}@{config['BOOKING_HOST']}",
        start=start,
        end=end,
        summary=booking.title,
        status="CANCELLED" if method == "CANCEL" else "CONFIRMED",
        sequence=booking.revision,
        last_modified=booking.updated_at,
        location=f"{space.name(locale)}, {location.name(locale)}",
        description=url,
        url=url,
        organizer=(address, name or location.name(locale)),
        attendees=((booking.requester.email, booking.requester.display_name),),
    )
    meta = CalendarMeta(name=location.name(locale), tzid=location.timezone)
    return render_calendar(meta, [event], method=method).decode("utf-8")


# -- reminders ------------------------------------------------------------------------------


def queue_reminders(session: Session, *, now: datetime, within: timedelta = timedelta(hours=36)) -> int:
    """Queue a reminder for each confirmed booking starting within `within`; each is reminded once.

    `reminded_at` is set by a compare-and-swap in the same transaction as the queued
    mail, so two cron runs at once, or a run repeated, never remind twice.
    """
    with write_transaction(session):
        due = session.scalars(
            select(Booking)
            .where(
                Booking.status == Status.CONFIRMED.value,
                Booking.reminded_at.is_(None),
                Booking.start_at > now,
                Booking.start_at <= now + within,
            )
            .order_by(Booking.start_at, Booking.id)
        ).all()
        reminded = 0
        for booking in due:
            claimed = session.execute(
                update(Booking)
                .where(
                    Booking.id == booking.id,
                    Booking.reminded_at.is_(None),
                    Booking.status == Status.CONFIRMED.value,
                )
                .values(reminded_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            # the caller sends the whole outbox next, retries included
            queue_booking_mail(session, booking, "reminder", send_after_commit=False)
            reminded += 1
    return reminded
