"""The usage report's cache: booking figures rolled up per local day, derived lazily from the bookings.

Nothing writes these tables but `booking.staff.reports`, and nothing in them is a source of
truth: deleting every row (or just the state row) only makes the next report rebuild what it
reads. See `reports.py` for how a change to a booking invalidates the days it touches.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from booking.db import Base, UTCDateTime


class UsageCacheState(Base):
    """One row (id 1): how far the cache has followed the audit trail, and for which set-up.

    `audit_mark` is the highest audit event whose booking change the cached days reflect;
    the columns `mark_*` repeat that event's fields, so a mark whose event was deleted or
    whose id was reused shows up and the cache starts again. `shape` names what the rows
    were computed for (version, time zone, bookable spaces, whole-day spaces): a new version
    or time zone drops them; a space that comes, goes or changes between whole days and
    times has its own figures taken out of the rows and put back as they are now.
    """

    __tablename__ = "usage_cache_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    audit_mark: Mapped[int] = mapped_column(default=0)
    mark_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mark_booking_id: Mapped[int | None]
    mark_action: Mapped[str | None] = mapped_column(String(32))
    shape: Mapped[str] = mapped_column(Text)


class UsageCacheRow(Base):
    """Figures of the bookings that start on one local day: in total, per space, or per member unit.

    kind 'd': the whole day (key 0; one row for every cached day, bookings or not);
    kind 's': one space (key: space id); kind 'o': one member unit (key: its id, 0 for none);
    'W', 'S', 'O': the same summed over a whole week (day: its Monday).
    Durations are whole microseconds, so sums are exact; they count only the confirmed
    bookings that end on their start day in a space booked by the hour. The others are
    rows of UsageCachePiece, clipped to opening hours when the report reads them.
    """

    __tablename__ = "usage_cache_row"

    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    key: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    week: Mapped[date] = mapped_column(Date)  # the Monday of `day`
    bookings: Mapped[int]
    people: Mapped[int]
    cancellations: Mapped[int]
    late_cancellations: Mapped[int]
    micros: Mapped[int] = mapped_column(BigInteger)
    unit_micros: Mapped[int] = mapped_column(BigInteger)
    # bookings of any status (requests too): a space's or member unit's row with none left goes
    entries: Mapped[int]


class UsageCachePiece(Base):
    """A confirmed booking of a cached day that may stick out of opening hours or of a report's range:
    it ends after its start day, or its space is booked by whole days. Few; read one by one."""

    __tablename__ = "usage_cache_piece"
    __table_args__ = (Index("ix_usage_cache_piece_day", "day"),)

    booking_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(Date)
    space_id: Mapped[int]
    organisation_id: Mapped[int | None]
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    units: Mapped[int]
