"""Bookings, series of bookings, the audit trail and the mail outbox."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import DDL, JSON, CheckConstraint, ForeignKey, Index, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.auth.models import Organisation, User
from booking.db import Base, UTCDateTime, utcnow
from booking.spaces.models import Space


class Status(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# Pending and confirmed bookings hold capacity; the others hold nothing.
HOLDING = (Status.PENDING.value, Status.CONFIRMED.value)
_STATUSES = ", ".join(f"'{s.value}'" for s in Status)


class Series(Base):
    """A recurring booking; each occurrence is its own Booking row pointing here."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the recurrence as the form gave it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Booking(Base):
    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        CheckConstraint("units >= 1", name="units_positive"),
        CheckConstraint("attendees >= 1", name="attendees_positive"),
        CheckConstraint("revision >= 0", name="revision_non_negative"),
        CheckConstraint(f"status IN ({_STATUSES})", name="known_status"),
        # the overlap query: one space, bounded below by start_at (see domain.rules.MAX_SPAN)
        Index("ix_booking_space_start", "space_id", "start_at", "end_at"),
        Index("ix_booking_requester_start", "requester_id", "start_at"),
        # max future bookings per member and space
        Index("ix_booking_space_requester_start", "space_id", "requester_id", "start_at"),
        Index("ix_booking_status_start", "status", "start_at"),
        Index("ix_booking_start", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id"), index=True)

    title: Mapped[str] = mapped_column(String(200))
    attendees: Mapped[int] = mapped_column(default=1)
    units: Mapped[int] = mapped_column(default=1)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING.value)
    title_public: Mapped[bool] = mapped_column(default=False)
    # copied from the space when written: PostgreSQL's exclusion constraint guards these rows
    exclusive: Mapped[bool] = mapped_column(default=False)
    revision: Mapped[int] = mapped_column(default=0)  # the iCalendar SEQUENCE

    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    override_reason: Mapped[str | None] = mapped_column(Text)  # staff overrode a policy limit
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    space: Mapped[Space] = relationship()
    requester: Mapped[User] = relationship(foreign_keys=[requester_id])
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    organisation: Mapped[Organisation | None] = relationship()
    series: Mapped[Series | None] = relationship()

    @property
    def holding(self) -> bool:
        return self.status in HOLDING


class AuditEvent(Base):
    """Append-only: who changed what from which state to which, when, why, from where."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"), index=True)
    space_id: Mapped[int | None] = mapped_column(ForeignKey("space.id"), index=True)
    subject_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])


class OutgoingMail(Base):
    """Mail is queued in the same transaction as the change it reports, then sent.

    A dead SMTP server therefore never undoes or blocks a booking change; unsent rows
    are retried by `booking send-pending-mail` (and by `send-reminders`).

    Booking mail is queued as `facts` (the booking as it was at the change, who acted,
    why, the recipient's name and language) and composed into subject and bodies by the
    sender, after the commit: templating never runs under the booking's write lock.
    A row is composed once `body_text` is set.
    """

    __tablename__ = "outgoing_mail"
    __table_args__ = (Index("ix_outgoing_mail_unsent", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, default="")
    ics: Mapped[str | None] = mapped_column(Text)
    ics_method: Mapped[str | None] = mapped_column(String(16))
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# PostgreSQL only: created by the migration, and by create_all in tests.
EXCLUDE_OVERLAP = (
    "ALTER TABLE booking ADD CONSTRAINT booking_no_overlap EXCLUDE USING gist "
    "(space_id WITH =, tstzrange(start_at, end_at, '[)') WITH &&) "
    "WHERE (exclusive AND status IN ('pending', 'confirmed'))"
)
event.listen(
    Base.metadata, "before_create", DDL("CREATE EXTENSION IF NOT EXISTS btree_gist").execute_if(dialect="postgresql")
)
event.listen(Booking.__table__, "after_create", DDL(EXCLUDE_OVERLAP).execute_if(dialect="postgresql"))
