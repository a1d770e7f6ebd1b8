"""Staff forms: shape only. The rules themselves are checked by the domain and the services."""

from __future__ import annotations

import re
from datetime import time

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional, ValidationError

from booking.domain.rules import MAX_SPAN, divides_day, format_hhmm, parse_hhmm, validate_ranges

WEEKDAY_LABELS = (
    _l("Monday"),
    _l("Tuesday"),
    _l("Wednesday"),
    _l("Thursday"),
    _l("Friday"),
    _l("Saturday"),
    _l("Sunday"),
)

_RANGE = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-–~]\s*(\d{1,2}:\d{2})\s*$")


def parse_ranges(text: str) -> list[list[str]]:
    """'08:30-12:00, 13:00-21:00' → [['08:30', '12:00'], ['13:00', '21:00']]; blank is closed."""
    spans: list[list[str]] = []
    for part in re.split(r"[,，;；]", text or ""):
        if not part.strip():
            continue
        match = _RANGE.match(part)
        if not match:
            raise ValueError(part.strip())
        start, end = (parse_hhmm(v) for v in match.groups())
        spans.append([format_hhmm(start), format_hhmm(end, end=True)])
    spans.sort()
    return spans


def format_ranges(spans: list[list[str]] | None) -> str:
    return ", ".join(f"{a}-{b}" for a, b in spans or [])


def ranges_field(label: object) -> StringField:
    def check(form: FlaskForm, field: StringField) -> None:
        try:
            spans = parse_ranges(field.data)
            validate_ranges(tuple((parse_hhmm(a), parse_hhmm(b)) for a, b in spans))
        except ValueError as exc:
            if "overlap" in str(exc):
                raise ValidationError(_l("These intervals overlap.")) from exc
            raise ValidationError(
                _l("Write intervals like 08:30-12:00, 13:00-21:00; each must end after it starts.")
            ) from exc

    return StringField(label, validators=[Optional(), Length(max=300), check])


def choices(pairs: list[tuple[object, object]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]  # type: ignore[arg-type]


def half_hours() -> list[SelectChoice]:
    """Start and end choices on the half hour; 24:00 ends a day."""
    times = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]
    return choices([(t, t) for t in [*times, "24:00"]])


def as_time(value: str) -> time:
    return parse_hhmm(value)


class ReasonForm(FlaskForm):
    """Reject or cancel: the reason is shown to the requester."""

    reason = TextAreaField(
        _l("Reason (the requester reads it)"),
        validators=[DataRequired(message=_l("Give a reason: the requester reads it.")), Length(max=500)],
    )


class EmptyForm(FlaskForm):
    """Approve: nothing but the CSRF token."""


class BookForMemberForm(FlaskForm):
    member = EmailField(_l("Member's email"), validators=[DataRequired(), Email(), Length(max=254)])
    space = SelectField(_l("Space"), coerce=int, validators=[DataRequired()])
    day = DateField(_l("Date (first day)"), validators=[DataRequired()])
    last_day = DateField(_l("Last day (whole-day spaces)"), validators=[Optional()])
    start = SelectField(_l("From"), choices=half_hours(), default="09:00")
    end = SelectField(_l("To"), choices=half_hours(), default="10:00")
    title = StringField(_l("Purpose"), validators=[DataRequired(), Length(max=200)])
    attendees = IntegerField(_l("People"), default=1, validators=[InputRequired(), NumberRange(min=1, max=1000)])
    units = IntegerField(_l("Units (seats, tables)"), default=1, validators=[InputRequired(), NumberRange(min=1)])
    override_reason = TextAreaField(
        _l("Override reason (lifts policy limits only)"), validators=[Optional(), Length(max=500)]
    )


class ClosureForm(FlaskForm):
    space = SelectField(_l("What closes"), coerce=int)
    first_day = DateField(_l("From date"), validators=[DataRequired()])
    start = SelectField(_l("From time"), choices=half_hours(), default="00:00")
    last_day = DateField(_l("To date"), validators=[DataRequired()])
    end = SelectField(_l("To time"), choices=half_hours(), default="24:00")
    reason = StringField(
        _l("Reason (members read it)"),
        validators=[DataRequired(message=_l("Give a reason: members read it.")), Length(max=500)],
    )


APPROVAL_CHOICES = [
    ("never", _l("Never: confirmed at once")),
    ("always", _l("Always: staff review every request")),
    ("over_duration", _l("Above a duration")),
]
TIME_MODE_CHOICES = [
    ("grid", _l("Time grid")),
    ("whole_days", _l("Whole days")),
    ("fixed_slots", _l("Fixed slots")),
]


def minutes_field(label: object, *, required: bool = True, maximum: int | None = None) -> IntegerField:
    validators = [InputRequired() if required else Optional(), NumberRange(min=0, max=maximum)]
    return IntegerField(label, validators=validators)


class SpaceRulesForm(FlaskForm):
    bookable = BooleanField(_l("Bookable online"))
    capacity = IntegerField(_l("Capacity (units)"), validators=[InputRequired(), NumberRange(min=1, max=1000)])
    unit_label_zh = StringField(_l("Unit label (Chinese)"), validators=[DataRequired(), Length(max=32)])
    unit_label_en = StringField(_l("Unit label (English)"), validators=[DataRequired(), Length(max=32)])
    people_capacity = IntegerField(_l("People capacity"), validators=[Optional(), NumberRange(min=1, max=10000)])
    time_mode = SelectField(_l("How time is booked"), choices=choices(TIME_MODE_CHOICES))
    grid_minutes = IntegerField(
        _l("Grid or slot length (minutes)"), validators=[InputRequired(), NumberRange(min=5, max=1440)]
    )
    fixed_slots = ranges_field(_l("Fixed slots"))
    hours_0 = ranges_field(WEEKDAY_LABELS[0])
    hours_1 = ranges_field(WEEKDAY_LABELS[1])
    hours_2 = ranges_field(WEEKDAY_LABELS[2])
    hours_3 = ranges_field(WEEKDAY_LABELS[3])
    hours_4 = ranges_field(WEEKDAY_LABELS[4])
    hours_5 = ranges_field(WEEKDAY_LABELS[5])
    hours_6 = ranges_field(WEEKDAY_LABELS[6])
    min_duration_minutes = minutes_field(_l("Shortest booking (minutes)"))
    max_duration_minutes = minutes_field(
        _l("Longest booking (minutes, at most 15 days = 21600)"), maximum=int(MAX_SPAN.total_seconds() // 60)
    )
    min_notice_minutes = minutes_field(_l("Minimum notice (minutes)"))
    max_advance_days = IntegerField(
        _l("Bookable this many days ahead"), validators=[InputRequired(), NumberRange(min=0, max=730)]
    )
    max_units_per_booking = IntegerField(
        _l("Most units per booking"), validators=[InputRequired(), NumberRange(min=1, max=1000)]
    )
    max_future_bookings = IntegerField(
        _l("Most future bookings per member (blank: no limit)"), validators=[Optional(), NumberRange(min=1)]
    )
    approval = SelectField(_l("Staff approval"), choices=choices(APPROVAL_CHOICES))
    approval_over_minutes = minutes_field(_l("Approval above (minutes)"), required=False)
    titles_public = BooleanField(_l("Titles may appear in the public feed"))

    def validate_grid_minutes(self, field: IntegerField) -> None:
        if self.time_mode.data == "grid" and field.data and not divides_day(field.data):
            raise ValidationError(_l("The grid must divide a day: 5, 10, 15, 20, 30, 60 minutes and so on."))

    def validate_max_duration_minutes(self, field: IntegerField) -> None:
        low = self.min_duration_minutes.data
        if field.data is not None and low is not None and low > field.data:
            raise ValidationError(_l("The longest booking is shorter than the shortest."))

    def validate_approval_over_minutes(self, field: IntegerField) -> None:
        if self.approval.data == "over_duration" and field.data is None:
            raise ValidationError(_l("Give the duration above which staff approve."))


ROLE_CHOICES = [("member", _l("Member")), ("staff", _l("Staff")), ("admin", _l("Administrator"))]


class UserForm(FlaskForm):
    role = SelectField(_l("Role"), choices=choices(ROLE_CHOICES))
    organisation = SelectField(_l("Member unit"), coerce=int)
    active = BooleanField(_l("Active (may log in)"))
