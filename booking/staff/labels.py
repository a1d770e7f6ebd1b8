"""Words for the codes the audit trail stores: actions, statuses, rule fields and their values.

The database keeps stable codes (`confirmed`, `space_rules`, `max_units_per_booking`); a page
never shows one. Field labels are the staff forms' own, so the audit trail and the editor
use the same words.
"""

from __future__ import annotations

from typing import Any

from babel import dates as babel_dates
from flask_babel import get_locale
from flask_babel import gettext as _
from wtforms.fields.core import UnboundField

from booking.staff.forms import APPROVAL_CHOICES, ROLE_CHOICES, TIME_MODE_CHOICES, SpaceRulesForm, UserForm


def action_label(action: str) -> str:
    """'Confirmed' / '已确认' for an audit action code."""
    labels = {
        "request": _("Booking requested"),
        "requested": _("Sent back for approval"),
        "confirmed": _("Confirmed"),
        "rejected": _("Rejected"),
        "cancelled": _("Cancelled"),
        "expired": _("Expired"),
        "moved": _("Moved"),
        "closure": _("Closure"),
        "space_rules": _("Space rules changed"),
        "account": _("Account changed"),
    }
    return labels.get(action, _("Other change"))


def override_label(code: str) -> str:
    """The policy a staff override lifted, in words (the refusal's code is what is stored)."""
    words = {
        "too_soon": _("minimum notice"),
        "too_far_ahead": _("how far ahead"),
        "too_long": _("maximum length"),
        "too_short": _("minimum length"),
        "too_many_units": _("units per booking"),
        "too_many_attendees": _("people per booking"),
        "too_many_future_bookings": _("bookings per member"),
    }
    return ", ".join(words.get(part.strip(), _("a policy limit")) for part in str(code).split(","))


def status_label(status: str | None) -> str:
    labels = {
        "pending": _("Waiting for approval"),
        "confirmed": _("Confirmed"),
        "rejected": _("Rejected"),
        "cancelled": _("Cancelled"),
        "expired": _("Expired"),
    }
    return "—" if status is None else labels.get(status, _("Other change"))


def field_label(key: str) -> str:
    """The form's label of a changed column ('Capacity (units)'), else the key in words."""
    if key == "organisation_id":
        key = "organisation"
    if key == "opening_hours":  # the editor has a field per weekday
        return _("Opening hours")
    for form in (SpaceRulesForm, UserForm):
        field = getattr(form, key, None)
        if isinstance(field, UnboundField) and field.args:
            return str(field.args[0])
    return key.replace("_", " ")


_CHOICES = {
    "approval": dict(APPROVAL_CHOICES),
    "time_mode": dict(TIME_MODE_CHOICES),
    "role": dict(ROLE_CHOICES),
}


def value_label(key: str, value: Any, names: dict[int, str] | None = None) -> str:
    """A stored value as a person reads it: Yes/No, a choice's words, a unit's name, "—" for none."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if key in _CHOICES and value in _CHOICES[key]:
        return str(_CHOICES[key][value])
    if key == "organisation_id" and names and value in names:
        return names[value]
    if isinstance(value, dict):  # opening hours: {"0": [["08:00", "20:00"]]}
        return "; ".join(
            f"{_weekday(int(day))} " + ", ".join(f"{a}–{b}" for a, b in spans) for day, spans in sorted(value.items())
        )
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _weekday(day: int) -> str:
    """'周一' / 'Mon' (0 is Monday), from Babel's locale data like the week grid's."""
    return str(babel_dates.get_day_names("abbreviated", locale=str(get_locale()))[day % 7])
