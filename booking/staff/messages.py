"""Refusals and stale decisions as sentences for staff, in their language."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from booking import i18n
from booking.bookings.services import AlreadyDecided
from booking.domain import refusals as r

STATUS_WORDS = {
    "pending": _l("waiting for approval"),
    "confirmed": _l("confirmed"),
    "rejected": _l("rejected"),
    "cancelled": _l("cancelled"),
    "expired": _l("expired"),
}


def _minutes(delta: object) -> int:
    return int(delta.total_seconds() // 60)  # type: ignore[attr-defined]


def refusal_message(refusal: r.Refusal, *, whole_days: bool = False) -> str:
    if isinstance(refusal, r.Conflict):
        text = _("That time is taken: %(left)s units left.", left=refusal.left)
        if refusal.blocking:
            text += " " + _("In the way: bookings %(ids)s.", ids=", ".join(f"#{i}" for i in refusal.blocking))
        if refusal.nearest_free is not None:
            text += " " + _(
                "Nearest free time: %(span)s.",
                span=i18n.format_span(refusal.nearest_free.start, refusal.nearest_free.end, whole_days=whole_days),
            )
        return text
    if isinstance(refusal, r.Closed):
        return _(
            "The space is closed then (%(span)s): %(reason)s",
            span=i18n.format_span(refusal.interval.start, refusal.interval.end),
            reason=refusal.reason,
        )
    if isinstance(refusal, r.OffGrid):
        return _("Start and end must be on the %(minutes)s-minute grid.", minutes=refusal.grid_minutes)
    if isinstance(refusal, r.NotASlot):
        return _("Choose one or more whole fixed slots.")
    if isinstance(refusal, r.OutsideOpeningHours):
        return _("That is outside the opening hours.")
    if isinstance(refusal, r.InThePast):
        return _("That time has passed.")
    if isinstance(refusal, r.TooShort):
        return _("Too short: at least %(minutes)s minutes.", minutes=_minutes(refusal.minimum))
    if isinstance(refusal, r.TooLong):
        return (
            _("Too long: at most %(minutes)s minutes.", minutes=_minutes(refusal.maximum))
            + " "
            + _("Give an override reason to lift this limit.")
        )
    if isinstance(refusal, r.TooSoon):
        return (
            _(
                "Too short notice: the earliest start is %(at)s.",
                at=i18n.format_span(refusal.earliest, refusal.earliest),
            )
            + " "
            + _("Give an override reason to lift this limit.")
        )
    if isinstance(refusal, r.TooFarAhead):
        return _("Too far ahead for this space.") + " " + _("Give an override reason to lift this limit.")
    if isinstance(refusal, r.TooManyUnits):
        return (
            _("At most %(n)s units per booking.", n=refusal.maximum)
            + " "
            + _("Give an override reason to lift this limit.")
        )
    if isinstance(refusal, r.TooManyAttendees):
        return _("At most %(n)s people fit.", n=refusal.maximum)
    if isinstance(refusal, r.TooManyFutureBookings):
        return (
            _("The member already has %(n)s future bookings here.", n=refusal.maximum)
            + " "
            + _("Give an override reason to lift this limit.")
        )
    if isinstance(refusal, r.NotBookable):
        return _("This space is not bookable.")
    if isinstance(refusal, r.NotPositive):
        return _("Units and people are counted from one.")
    return _("The request breaks a rule of the space.")


def already_decided_message(exc: AlreadyDecided) -> str:
    status = str(STATUS_WORDS.get(str(exc.status), exc.status))
    if exc.decided_by and exc.decided_at:
        return _(
            "Already decided by %(name)s at %(at)s: %(status)s.",
            name=exc.decided_by,
            at=f"{i18n.format_short_day(exc.decided_at)} {i18n.format_clock(exc.decided_at)}",
            status=status,
        )
    return _("This request is no longer waiting: it is %(status)s.", status=status)
