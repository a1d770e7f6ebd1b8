"""Locations, their spaces with every rule of DESIGN.md, and closures."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.db import Base, UTCDateTime, utcnow
from booking.domain.rules import Approval, SpaceRules, TimeMode, TimeRange, parse_hhmm


class Location(Base):
    __tablename__ = "location"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    address_zh: Mapped[str] = mapped_column(String(300), default="")
    address_en: Mapped[str] = mapped_column(String(300), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")

    spaces: Mapped[list[Space]] = relationship(back_populates="location", order_by="Space.sort_order")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


class Space(Base):
    __tablename__ = "space"
    __table_args__ = (
        CheckConstraint("capacity >= 1", name="capacity_positive"),
        CheckConstraint("time_mode IN ('grid', 'whole_days', 'fixed_slots')", name="known_time_mode"),
        CheckConstraint("approval IN ('never', 'always', 'over_duration')", name="known_approval"),
        CheckConstraint("grid_minutes > 0", name="grid_positive"),
        CheckConstraint("min_duration_minutes <= max_duration_minutes", name="durations_ordered"),
        CheckConstraint("max_units_per_booking >= 1", name="units_per_booking_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("location.id"), index=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    bookable: Mapped[bool] = mapped_column(default=True)
    sort_order: Mapped[int] = mapped_column(default=0)
    color: Mapped[str] = mapped_column(String(32), default="steelblue")  # CSS3 name, also the feed COLOR

    capacity: Mapped[int] = mapped_column(default=1)
    unit_label_zh: Mapped[str] = mapped_column(String(32), default="间")
    unit_label_en: Mapped[str] = mapped_column(String(32), default="room")
    people_capacity: Mapped[int | None] = mapped_column(default=None)

    time_mode: Mapped[str] = mapped_column(String(16), default=TimeMode.GRID.value)
    grid_minutes: Mapped[int] = mapped_column(default=30)
    # [["10:00", "10:30"], …] for fixed-slot spaces
    fixed_slots: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    # {"0": [["08:30", "12:00"], ["13:00", "21:00"]], …}; Monday is "0", a missing day is closed
    opening_hours: Mapped[dict[str, list[list[str]]]] = mapped_column(JSON, default=dict)

    min_duration_minutes: Mapped[int] = mapped_column(default=30)
    max_duration_minutes: Mapped[int] = mapped_column(default=240)
    min_notice_minutes: Mapped[int] = mapped_column(default=0)
    max_advance_days: Mapped[int] = mapped_column(default=60)
    max_units_per_booking: Mapped[int] = mapped_column(default=1)
    max_future_bookings: Mapped[int | None] = mapped_column(default=None)
    approval: Mapped[str] = mapped_column(String(16), default=Approval.NEVER.value)
    approval_over_minutes: Mapped[int | None] = mapped_column(default=None)
    titles_public: Mapped[bool] = mapped_column(default=False)  # may a booking show its title in the public feed

    # the space's watermark, moved by every change of what its pages and feeds show (bookings,
    # deletions included, closures, rules): `version` only goes up and is what caches and ETags
    # key on; `changed_at` never goes back and is the feeds' Last-Modified
    version: Mapped[int] = mapped_column(default=0, server_default="0")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    location: Mapped[Location] = relationship(back_populates="spaces")

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en

    def unit_label(self, locale: str) -> str:
        return self.unit_label_zh if locale.startswith("zh") else self.unit_label_en

    @property
    def whole_days(self) -> bool:
        return self.time_mode == TimeMode.WHOLE_DAYS.value

    @property
    def exclusive(self) -> bool:
        return self.capacity == 1

    def rules(self) -> SpaceRules:
        return rules_from(self, self.location.tz)

    def rule_snapshot(self) -> dict[str, Any]:
        """The editable rules as plain data, for the audit trail's before → after."""
        return {column: getattr(self, column) for column in RULE_COLUMNS}


def rules_from(space: Any, tz: ZoneInfo) -> SpaceRules:
    """The rules of a space from anything with its columns as attributes: a Space, or a Core row
    of the space table (the write path reads one under its lock, without the ORM)."""

    def ranges(raw: list[list[str]]) -> tuple[TimeRange, ...]:
        return tuple((parse_hhmm(a), parse_hhmm(b)) for a, b in raw)

    return SpaceRules(
        tz=tz,
        capacity=space.capacity,
        time_mode=TimeMode(space.time_mode),
        grid_minutes=space.grid_minutes,
        fixed_slots=ranges(space.fixed_slots or []),
        opening_hours={int(day): ranges(spans) for day, spans in (space.opening_hours or {}).items()},
        min_duration=timedelta(minutes=space.min_duration_minutes),
        max_duration=timedelta(minutes=space.max_duration_minutes),
        min_notice=timedelta(minutes=space.min_notice_minutes),
        max_advance=timedelta(days=space.max_advance_days),
        max_units_per_booking=space.max_units_per_booking,
        max_future_bookings=space.max_future_bookings,
        people_capacity=space.people_capacity,
        approval=Approval(space.approval),
        approval_over=(
            timedelta(minutes=space.approval_over_minutes) if space.approval_over_minutes is not None else None
        ),
    )


RULE_COLUMNS = (
    "bookable",
    "capacity",
    "people_capacity",
    "time_mode",
    "grid_minutes",
    "fixed_slots",
    "opening_hours",
    "min_duration_minutes",
    "max_duration_minutes",
    "min_notice_minutes",
    "max_advance_days",
    "max_units_per_booking",
    "max_future_bookings",
    "approval",
    "approval_over_minutes",
    "titles_public",
)


def hours(*spans: tuple[str, str]) -> list[list[str]]:
    return [[a, b] for a, b in spans]


class Closure(Base):
    """The whole station (space_id NULL) or one space is shut over [start_at, end_at)."""

    __tablename__ = "closure"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="ends_after_start"),
        Index("ix_closure_location_span", "location_id", "start_at", "end_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("location.id"))
    space_id: Mapped[int | None] = mapped_column(ForeignKey("space.id"), index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    space: Mapped[Space | None] = relationship()
