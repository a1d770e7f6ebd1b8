"""Every model in one import, for Alembic and the shell."""

from booking.auth.models import Organisation, User
from booking.bookings.models import AuditEvent, Booking, OutgoingMail, Series, Status
from booking.spaces.models import Closure, Location, Space

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
    "User",
]
