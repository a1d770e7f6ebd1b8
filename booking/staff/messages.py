"""Refusals and stale decisions as sentences for staff, in their language."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from booking import i18n
from booking.bookings.forms import refusal_message as member_refusal_message
from booking.bookings.services import AlreadyDecided
from booking.domain import refusals as r
from booking.spaces.models import Space

STATUS_WORDS = {
    "pending": _l("waiting for approval"),
    "confirmed": _l("confirmed"),
    "rejected": _l("rejected"),
    "cancelled": _l("cancelled"),
    "expired": _l("expired"),
}


def refusal_message(refusal: r.Refusal, space: Space) -> str:
    """The member's sentence for the refusal, plus what staff can do about it."""
    text = member_refusal_message(refusal, space)
    if isinstance(refusal, r.Conflict):
        if refusal.blocking:
            ids = ", ".join(f"#{i}" for i in refusal.blocking if i > 0)
            if ids:
                text += " " + _("In the way: bookings %(ids)s.", ids=ids)
        if refusal.nearest_free is not None:
            span = i18n.format_span(refusal.nearest_free.start, refusal.nearest_free.end, whole_days=space.whole_days)
            text += " " + _("Nearest free time: %(span)s.", span=span)
    if isinstance(refusal, r.POLICY_REFUSALS):
        text += " " + _("Give an override reason to lift this limit.")
    return text


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
