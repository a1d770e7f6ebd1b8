"""Booking rows → the serializer's ``FeedEvent``s (and free/busy periods).

Shared by the feeds and by the single-booking ``/bookings/<id>.ics`` view, so
a booking reads the same (UID, times, SEQUENCE) wherever a calendar meets it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from booking.feeds.ical import FeedEvent

if TYPE_CHECKING:
    from booking.bookings.models import Booking

__all__ = ["BOOKED", "booking_event", "busy_periods", "event_status", "event_uid"]

# SUMMARY of a busy block in the public feed, per language.
BOOKED = {"zh": "已预订", "en": "Booked"}

_STATUS = {
    "confirmed": "CONFIRMED",
    "pending": "TENTATIVE",
    "cancelled": "CANCELLED",
    "rejected": "CANCELLED",
    "expired": "CANCELLED",
}


def event_uid(booking_id: int, host: str) -> str:
    """Never change this: subscribers match events by UID for years."""
    return f"booking-{booking_id}@{host}"


def event_status(status: str) -> str:
    return _STATUS[status]


def booked_label(locale: str) -> str:
    return BOOKED["zh"] if locale.startswith("zh") else BOOKED["en"]


def booking_event(
    booking: Booking,
    *,
    host: str,
    public_url: str,
    locale: str,
    detail: bool = True,
    description: str | None = None,
) -> FeedEvent:
    """One booking as a calendar event.

    ``detail=False`` is the public busy block: "已预订"/"Booked" unless the
    requester marked the title public; never a name, e-mail or member unit.
    ``description`` is for the staff feed (requester and unit); leave it None
    anywhere the public can read.
    """
    space = booking.space
    location = space.location
    tz = location.tz
    start: datetime | date
    end: datetime | date
    if space.whole_days:
        # stored as local midnights; DTEND;VALUE=DATE is exclusive, i.e. the day after the last one
        start = booking.start_at.astimezone(tz).date()
        last = (booking.end_at - timedelta(microseconds=1)).astimezone(tz).date()
        end = max(last + timedelta(days=1), start + timedelta(days=1))
    else:
        start = booking.start_at.astimezone(tz)
        end = booking.end_at.astimezone(tz)
    summary = booking.title if detail or booking.title_public else booked_label(locale)
    updated = booking.updated_at
    if updated.tzinfo is None:  # SQLite returns what UTCDateTime stored; be safe anyway
        updated = updated.replace(tzinfo=UTC)
    return FeedEvent(
        uid=event_uid(booking.id, host),
        start=start,
        end=end,
        summary=summary,
        status=event_status(booking.status),
        sequence=booking.revision,
        last_modified=updated,
        location=f"{space.name(locale)} · {location.name(locale)}",
        description=description,
        # the public busy block links to the space's week, which anyone may open; a booking's
        # own page is for its requester and staff
        url=f"{public_url.rstrip('/')}/bookings/{booking.id}"
        if detail
        else f"{public_url.rstrip('/')}/spaces/{space.slug}",
    )


def busy_periods(holds: Iterable[tuple[datetime, datetime, int]], capacity: int) -> list[tuple[datetime, datetime]]:
    """When a space has no unit left: a sweep over (start, end, units) holds, like domain.capacity.

    Releases sort before takes at the same instant, so back-to-back bookings do
    not make a zero-length busy period; adjacent full periods are merged.
    """
    points: list[tuple[datetime, int]] = []
    for start, end, units in holds:
        if end > start:
            points.append((start, units))
            points.append((end, -units))
    points.sort(key=lambda point: (point[0], point[1]))
    busy: list[tuple[datetime, datetime]] = []
    held = 0
    full_since: datetime | None = None
    index = 0
    while index < len(points):
        instant = points[index][0]
        while index < len(points) and points[index][0] == instant:
            held += points[index][1]
            index += 1
        if held >= capacity and full_since is None:
            full_since = instant
        elif held < capacity and full_since is not None:
            if busy and busy[-1][1] == full_since:
                busy[-1] = (busy[-1][0], instant)
            else:
                busy.append((full_since, instant))
            full_since = None
    return busy
