"""Capacity over time, computed exactly with a sweep over start and end points.

Summing every booking that overlaps a request over-counts: on a 20-seat room,
09–10 (10 seats) and 10–11 (10 seats) never hold 20 at once, yet both overlap 09–11.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from booking.domain.intervals import Interval


@dataclass(frozen=True)
class Hold:
    """Units a pending or confirmed booking holds over its interval."""

    booking_id: int
    interval: Interval
    units: int = 1
    requester_id: int | None = None


def peak_units(holds: Iterable[Hold], within: Interval) -> int:
    """The most units held at any instant inside `within`."""
    # POSIX seconds: the holds are UTC and `within` is often local time; comparing aware
    # datetimes of two zones asks the zone for its offset on every comparison
    low, high = within.start.timestamp(), within.end.timestamp()
    events: list[tuple[float, int]] = []
    for hold in holds:
        start, end = hold.interval.start.timestamp(), hold.interval.end.timestamp()
        if start >= high or end <= low:
            continue
        events.append((max(start, low), hold.units))
        events.append((min(end, high), -hold.units))
    # at equal instants releases (-) sort before takes (+): touching bookings coexist
    events.sort()
    held = peak = 0
    for _, delta in events:
        held += delta
        peak = max(peak, held)
    return peak


def units_left(capacity: int, holds: Iterable[Hold], within: Interval) -> int:
    return max(capacity - peak_units(holds, within), 0)


def blocking_holds(holds: Iterable[Hold], within: Interval) -> list[Hold]:
    """The holds in the way of a request, soonest first, for a refusal to name."""
    return sorted((h for h in holds if h.interval.overlaps(within)), key=lambda h: (h.interval.start, h.booking_id))
