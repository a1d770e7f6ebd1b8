"""Why a request was refused, as values the UI turns into a sentence in the user's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from booking.domain.intervals import Interval


@dataclass(frozen=True)
class Refusal:
    code = "refused"


@dataclass(frozen=True)
class NaiveTime(Refusal):
    code = "naive_time"


@dataclass(frozen=True)
class NotPositive(Refusal):
    """Units and attendees are counted from one."""

    code = "not_positive"


@dataclass(frozen=True)
class InThePast(Refusal):
    code = "in_the_past"


@dataclass(frozen=True)
class OffGrid(Refusal):
    grid_minutes: int
    code = "off_grid"


@dataclass(frozen=True)
class NotASlot(Refusal):
    code = "not_a_slot"


@dataclass(frozen=True)
class OutsideOpeningHours(Refusal):
    code = "outside_hours"


@dataclass(frozen=True)
class Closed(Refusal):
    closure_id: int
    reason: str
    interval: Interval
    code = "closed"


@dataclass(frozen=True)
class TooShort(Refusal):
    minimum: timedelta
    code = "too_short"


@dataclass(frozen=True)
class TooLong(Refusal):
    maximum: timedelta
    code = "too_long"


@dataclass(frozen=True)
class TooSoon(Refusal):
    """Starts before the minimum notice has passed."""

    earliest: datetime
    code = "too_soon"


@dataclass(frozen=True)
class TooFarAhead(Refusal):
    latest: datetime
    code = "too_far_ahead"


@dataclass(frozen=True)
class TooManyUnits(Refusal):
    maximum: int
    code = "too_many_units"


@dataclass(frozen=True)
class TooManyAttendees(Refusal):
    maximum: int
    code = "too_many_attendees"


@dataclass(frozen=True)
class TooManyFutureBookings(Refusal):
    maximum: int
    code = "too_many_future_bookings"


@dataclass(frozen=True)
class Conflict(Refusal):
    """Capacity is taken: `blocking` are the booking ids in the way, `left` the units still free."""

    blocking: tuple[int, ...]
    left: int
    nearest_free: Interval | None = None
    code = "conflict"


@dataclass(frozen=True)
class NotBookable(Refusal):
    code = "not_bookable"


# Refusals a member of staff may override with a recorded reason. Capacity, closures,
# the grid and opening hours hold for everyone.
POLICY_REFUSALS: tuple[type[Refusal], ...] = (
    TooShort,
    TooLong,
    TooSoon,
    TooFarAhead,
    TooManyUnits,
    TooManyFutureBookings,
)


@dataclass(frozen=True)
class NothingFree(Refusal):
    """A recurring request of which no occurrence can be held: there is nothing to book."""

    code = "nothing_free"
