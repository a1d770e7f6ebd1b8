"""Every model in one import, for Alembic and the shell."""

from booking.auth.models import Organisation, User
from booking.bookings.models import AuditEvent, Booking, OutgoingMail, Series, Status
from booking.spaces.models import Closure, Location, Space
from booking.staff.models import UsageCachePiece, UsageCacheRow, UsageCacheState

__all__ = [
    "AuditEvent",
    "Booking",
    "Closure",
    "Location",
    "Organisation",
    "OutgoingMail",
    "Series",
    "Space",
    "Status",
    "UsageCachePiece",
    "UsageCacheRow",
    "UsageCacheState",
    "User",
]
