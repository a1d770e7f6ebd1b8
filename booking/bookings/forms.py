"""The booking form, shaped by the space's time mode, and refusals turned into sentences.

Forms check shape only (a real date, a time on the space's grid, end after start, a
title that fits); whether the request may be held is the domain's answer, given by the
service and shown through `refusal_message`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from babel import dates as babel_dates
from babel.lists import format_list
from flask_babel import get_locale, gettext, ngettext, pgettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from booking import clock
from booking.domain import refusals
from booking.domain.intervals import Interval, local_at, local_midnight
from booking.domain.recurrence import LAST, MAX_OCCURRENCES, Frequency, Recurrence
from booking.domain.rules import SpaceRules, TimeMode, parse_hhmm
from booking.i18n import format_short_day, format_span
from booking.spaces.models import Space

TITLE_MAX = 200
# A date further than this from today is a typo (or a probe), never a booking.
FAR_DATES = timedelta(days=3 * 366)
# The most whole days the form accepts before asking the rules; the rules then say the real limit.
MAX_FORM_DAYS = 366
# Any Monday: the weekdays of this week give every opening time a space may offer.
_SAMPLE_WEEK = [date(2024, 1, 1) + timedelta(days=n) for n in range(7)]


def format_duration(value: timedelta) -> str:
    """'3 hours', '1 hour 30 minutes', '14 days', '30 minutes' — in the reader's language."""
    minutes = int(value.total_seconds() // 60)
    if minutes and minutes % 1440 == 0:
        days = minutes // 1440
        return ngettext("%(num)d day", "%(num)d days", days)
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(ngettext("%(num)d hour", "%(num)d hours", hours))
    if rest or not parts:
        parts.append(ngettext("%(num)d minute", "%(num)d minutes", rest))
    return " ".join(parts)


def _units_left(left: int, space: Space) -> str:
    # "Only 2 of 20 seats left at that time."
    return gettext(
        "Only %(left)d of %(capacity)s left at that time.", left=left, capacity=count_units(space.capacity, space)
    )


def _when(value: datetime, space: Space) -> str:
    tz = space.location.tz
    local = value.astimezone(tz)
    if space.whole_days:
        return _date_text(local.date())
    return f"{_date_text(local.date())} {local:%H:%M}"


def _date_text(day: date) -> str:
    return format_short_day(day)


def _span_text(interval: Interval, space: Space) -> str:
    return format_span(interval.start, interval.end, whole_days=space.whole_days, tz=space.location.tz)


def refusal_message(refusal: refusals.Refusal, space: Space, *, own: Sequence[tuple[str, Interval]] = ()) -> str:
    """One sentence per refusal type, naming what is in the way, in the reader's language.

    `own` are the reader's own bookings among those in the way (title and time), named as such;
    other people's are only ever "booked", never by whom.
    """
    rules = space.rules()
    match refusal:
        case refusals.Conflict(left=left):
            if own:
                title, interval = own[0]
                text = gettext(
                    "You already have “%(title)s” %(span)s here.", title=title, span=_span_text(interval, space)
                )
                if not space.exclusive and left > 0:
                    text += " " + _units_left(left, space)
                return text
            if space.exclusive or left == 0:
                return gettext("That time is already booked.")
            return _units_left(left, space)
        case refusals.Closed(reason=reason, interval=interval):
            return gettext("The space is closed %(span)s: %(reason)s", span=_span_text(interval, space), reason=reason)
        case refusals.TooSoon(earliest=earliest):
            return gettext(
                "Bookings here need %(notice)s notice: the earliest start now is %(when)s.",
                notice=format_duration(rules.min_notice),
                when=_when(earliest, space),
            )
        case refusals.TooFarAhead(latest=latest):
            return gettext(
                "You can book at most %(days)s ahead, so up to %(when)s.",
                days=format_duration(rules.max_advance),
                when=_when(latest, space),
            )
        case refusals.TooShort(minimum=minimum):
            return gettext("Book at least %(duration)s.", duration=format_duration(minimum))
        case refusals.TooLong(maximum=maximum):
            return gettext("Book at most %(duration)s at a time.", duration=format_duration(maximum))
        case refusals.TooManyUnits(maximum=maximum):
            return gettext("At most %(units)s per booking.", units=count_units(maximum, space))
        case refusals.TooManyAttendees(maximum=maximum):
            return ngettext("At most %(num)d person fits here.", "At most %(num)d people fit here.", maximum)
        case refusals.TooManyFutureBookings(maximum=maximum):
            return ngettext(
                "You already have %(num)d upcoming booking here, the most allowed. Cancel one to book again.",
                "You already have %(num)d upcoming bookings here, the most allowed. Cancel one to book again.",
                maximum,
            )
        case refusals.OffGrid(grid_minutes=grid):
            if grid >= 1440:
                return gettext("This space is booked by whole days.")
            return gettext(
                "Bookings start and end on the %(duration)s grid, such as 09:00 or 09:30.",
                duration=format_duration(timedelta(minutes=grid)),
            )
        case refusals.NotASlot():
            return gettext("Pick one of the listed time slots.")
        case refusals.OutsideOpeningHours():
            return gettext("The space is not open for all of that time.")
        case refusals.InThePast():
            return gettext("That time has already passed.")
        case refusals.NotPositive():
            return gettext("Seats and people are counted from one.")
        case refusals.NaiveTime():
            return gettext("The time could not be read. Please pick it again.")
        case refusals.NothingFree():
            return gettext("None of the repeated dates can be booked: each one is taken, closed or outside the rules.")
        case refusals.NotBookable():
            return gettext("This space is walk-in only: no booking is needed.")
    return gettext("The booking could not be made.")


def count_units(count: int, space: Space) -> str:
    """'3 seats' / '3 座': unit labels are stored singular, and only English adds a plural."""
    locale = str(get_locale() or "zh")
    label = space.unit_label(locale)
    if locale.startswith("en") and count != 1 and not label.endswith("s"):
        label += "s"
    return f"{count} {label}"


def _unit(space: Space) -> str:
    return space.unit_label(str(get_locale() or "zh"))


def approval_notice(space: Space) -> str | None:
    """Said before submitting: will staff have to approve this?"""
    rules = space.rules()
    if rules.approval.value == "always":
        return gettext("Staff review every request for this space; you will see their answer under My bookings.")
    if rules.approval.value == "over_duration" and rules.approval_over is not None:
        return gettext(
            "Bookings longer than %(duration)s need staff approval; shorter ones are confirmed at once.",
            duration=format_duration(rules.approval_over),
        )
    return None


# -- choices from the space's rules ------------------------------------------------------


def _hhmm(moment: datetime, rules: SpaceRules, *, end: bool = False) -> str:
    local = moment.astimezone(rules.tz)
    if end and local.time() == time(0):
        return "24:00"
    return f"{local:%H:%M}"


def grid_times(rules: SpaceRules) -> tuple[list[str], list[str]]:
    """Every start and end time the space offers on any weekday, in order."""
    starts: set[str] = set()
    ends: set[str] = set()
    for day in _SAMPLE_WEEK:
        for cell in rules.slots_on(day):
            starts.add(_hhmm(cell.start, rules))
            ends.add(_hhmm(cell.end, rules, end=True))
    return sorted(starts), sorted(ends)


def slot_choices(rules: SpaceRules) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for day in _SAMPLE_WEEK:
        for cell in rules.slots_on(day):
            seen.setdefault(_hhmm(cell.start, rules), f"{_hhmm(cell.start, rules)}–{_hhmm(cell.end, rules, end=True)}")
    return sorted(seen.items())


def _at(day: date, hhmm: str, tz: Any) -> datetime:
    if hhmm == "24:00":
        return local_midnight(day + timedelta(days=1), tz)
    return local_at(day, parse_hhmm(hhmm), tz)


# -- the forms ---------------------------------------------------------------------------


class BookingForm(FlaskForm):
    """Fields every space asks for; subclasses add the time fields of each time mode."""

    title = StringField(
        _l("Title or purpose"),
        validators=[
            DataRequired(message=_l("Say in a few words what the booking is for.")),
            Length(max=TITLE_MAX, message=_l("At most %(max)d characters, please.")),
        ],
    )
    units = IntegerField(_l("How many"), default=1)
    attendees = IntegerField(_l("People"), default=1)
    title_public = BooleanField(_l("Show the title in the station's public calendar"))

    def __init__(self, space: Space, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.space = space
        self.rules = space.rules()
        if self.rules.capacity == 1:
            del self.units
        else:
            self.units.label.text = gettext("How many (%(unit)s)", unit=_unit(space))
        if not self.asks_attendees(space):
            del self.attendees
        if not space.titles_public:
            del self.title_public

    def validate_title(self, field: StringField) -> None:
        # PostgreSQL text cannot hold NUL, and no one means a control character in a title
        if field.data and any(ord(c) < 32 and c not in "\t\n\r" for c in field.data):
            raise ValidationError(gettext("The title contains characters that cannot be stored."))

    @staticmethod
    def asks_attendees(space: Space) -> bool:
        # where a unit is a seat for one person, the number of seats is the number of people
        return space.people_capacity is not None and space.people_capacity != space.capacity

    @property
    def max_units(self) -> int:
        return min(self.rules.capacity, self.rules.max_units_per_booking)

    def validate_units(self, field: IntegerField) -> None:
        if field.data is None:
            raise ValidationError(gettext("Enter a number."))
        if not 1 <= field.data <= self.max_units:
            raise ValidationError(gettext("Choose from 1 to %(units)s.", units=count_units(self.max_units, self.space)))

    def validate_attendees(self, field: IntegerField) -> None:
        most = self.rules.people_capacity or 1
        if field.data is None:
            raise ValidationError(gettext("Enter a number."))
        if not 1 <= field.data <= most:
            raise ValidationError(
                ngettext("At most %(num)d person fits here.", "At most %(num)d people fit here.", most)
            )

    def interval(self) -> Interval:  # pragma: no cover - every subclass says how
        raise NotImplementedError

    @property
    def units_value(self) -> int:
        return self.units.data if "units" in self else 1

    @property
    def attendees_value(self) -> int:
        if "attendees" in self:
            return int(self.attendees.data)
        return self.units_value


def _check_date(field: DateField) -> None:
    if field.data is None:
        raise ValidationError(gettext("Pick a date."))
    if abs(field.data - clock.now().date()) > FAR_DATES:  # a coarse sanity bound, a day either way is fine
        raise ValidationError(gettext("That date is too far away."))


# -- repeating --------------------------------------------------------------------------

REPEAT_NONE = "none"
# interval beyond this is a typo: no space books a year ahead
MAX_REPEAT_INTERVAL = 12


def nth_of_month(day: date) -> int:
    """Which of its weekday in the month `day` is: 1–4, or LAST for a fifth one."""
    nth = (day.day - 1) // 7 + 1
    return LAST if nth > 4 else nth


class RepeatForm(BookingForm):
    """The booking form with a "repeat" section (grid and fixed-slot spaces; see `repeats`).

    Without repeat (the default, and what a form without these fields posts) it is the
    plain booking form; with one, `recurrence()` gives the rule for the series preview.
    """

    repeat = RadioField(
        _l("Repeat"),
        choices=[
            SelectChoice(REPEAT_NONE, _l("Does not repeat")),
            SelectChoice("daily", _l("Daily")),
            SelectChoice("weekly", _l("Weekly, on the days ticked below")),
            SelectChoice("monthly_day", _l("Monthly, on the same date")),
            SelectChoice("monthly_nth", _l("Monthly, on the same weekday (such as the second Tuesday)")),
        ],
        default=REPEAT_NONE,
    )
    repeat_interval = IntegerField(_l("Every how many days, weeks or months"), default=1)
    repeat_weekdays = SelectMultipleField(
        _l("On these days (weekly)"),
        coerce=int,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validators=[Optional()],
    )
    repeat_nth = SelectField(_l("Which one in the month (monthly on a weekday)"), coerce=int, default=1)
    repeat_end = RadioField(
        _l("Ends"),
        choices=[SelectChoice("count", _l("After a number of times")), SelectChoice("until", _l("On a date"))],
        default="count",
    )
    repeat_count = IntegerField(_l("Number of times"), default=8)
    repeat_until = DateField(_l("Last date"), validators=[Optional()])

    def __init__(self, space: Space, *args: Any, **kwargs: Any) -> None:
        super().__init__(space, *args, **kwargs)
        days = babel_dates.get_day_names("wide", locale=str(get_locale() or "zh"))
        self.repeat_weekdays.choices = [(n, days[n]) for n in range(7)]
        self.repeat_nth.choices = [
            (1, pgettext("month", "first")),
            (2, pgettext("month", "second")),
            (3, pgettext("month", "third")),
            (4, pgettext("month", "fourth")),
            (LAST, pgettext("month", "last")),
        ]

    @property
    def repeating(self) -> bool:
        return bool(self.repeat.data) and self.repeat.data != REPEAT_NONE

    def start_day(self) -> date | None:
        value = self.day.data  # type: ignore[attr-defined]
        return value if isinstance(value, date) else None

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if not self.repeating:
            return valid
        interval = self.repeat_interval.data
        if interval is None or not 1 <= interval <= MAX_REPEAT_INTERVAL:
            self.repeat_interval.errors = [*self.repeat_interval.errors, gettext("Choose from 1 to 12.")]
            valid = False
        if self.repeat.data == "weekly" and not self.repeat_weekdays.data:
            self.repeat_weekdays.errors = [*self.repeat_weekdays.errors, gettext("Tick at least one day.")]
            valid = False
        if self.repeat_end.data == "until":
            first, until = self.start_day(), self.repeat_until.data
            if until is None:
                self.repeat_until.errors = [*self.repeat_until.errors, gettext("Pick the last date.")]
                valid = False
            elif first is not None and until < first:
                self.repeat_until.errors = [*self.repeat_until.errors, gettext("The last date comes before the first.")]
                valid = False
            elif first is not None and until - first > FAR_DATES:
                self.repeat_until.errors = [*self.repeat_until.errors, gettext("That date is too far away.")]
                valid = False
        else:
            count = self.repeat_count.data
            if count is None or not 1 <= count <= MAX_OCCURRENCES:
                self.repeat_count.errors = [
                    *self.repeat_count.errors,
                    gettext("Choose from 1 to %(num)d times.", num=MAX_OCCURRENCES),
                ]
                valid = False
        return valid

    def recurrence(self) -> Recurrence | None:
        """The rule the form asks for, or None when it does not repeat. Call after `validate`."""
        if not self.repeating:
            return None
        first = self.start_day()
        assert first is not None  # noqa: S101 - validated
        ends: dict[str, Any] = (
            {"until": self.repeat_until.data} if self.repeat_end.data == "until" else {"count": self.repeat_count.data}
        )
        interval = self.repeat_interval.data or 1
        kind = self.repeat.data
        if kind == "daily":
            return Recurrence(Frequency.DAILY, interval=interval, **ends)
        if kind == "weekly":
            return Recurrence(Frequency.WEEKLY, interval=interval, weekdays=tuple(self.repeat_weekdays.data), **ends)
        if kind == "monthly_day":
            return Recurrence(Frequency.MONTHLY, interval=interval, month_day=first.day, **ends)
        return Recurrence(
            Frequency.MONTHLY, interval=interval, nth=self.repeat_nth.data, weekdays=(first.weekday(),), **ends
        )


def repeat_defaults(day: date | None) -> dict[str, Any]:
    """Prefill for the repeat section: weekly on the chosen day's weekday, the same nth in the month."""
    if day is None:
        return {}
    return {"repeat_weekdays": [day.weekday()], "repeat_nth": nth_of_month(day)}


def _wall_time(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None:
        return None
    end_local = end.astimezone(start.tzinfo)
    if end_local.date() > start.date() and end_local.time() == time(0):
        return f"{start:%H:%M}–24:00"
    return f"{start:%H:%M}–{end_local:%H:%M}"


def describe_recurrence(rule: Recurrence, first_start: datetime | None, first_end: datetime | None, locale: str) -> str:
    """A series' rule as people say it: '每星期二 09:00–10:00，共 8 次' / 'Every Tuesday 09:00–10:00, 8 times'.

    `first_start` and `first_end` are the first occurrence in the location's zone (as the
    Series row stores them); the wording comes from the catalog, the day names from Babel.
    """
    day_names = babel_dates.get_day_names("wide", locale=locale)
    names = format_list([day_names[d] for d in rule.weekdays], locale=locale) if rule.weekdays else ""
    n = rule.interval
    if rule.frequency is Frequency.DAILY:
        words = gettext("Every day") if n == 1 else ngettext("Every %(num)d day", "Every %(num)d days", n)
    elif rule.frequency is Frequency.WEEKLY:
        if n == 1:
            words = gettext("Every %(days)s", days=names)
        else:
            words = ngettext("Every %(num)d week on %(days)s", "Every %(num)d weeks on %(days)s", n, days=names)
    elif rule.month_day is not None:
        if n == 1:
            words = gettext("Monthly on day %(day)d", day=rule.month_day)
        else:
            words = ngettext(
                "Every %(num)d month on day %(day)d", "Every %(num)d months on day %(day)d", n, day=rule.month_day
            )
    else:
        nth = {
            1: pgettext("month", "first"),
            2: pgettext("month", "second"),
            3: pgettext("month", "third"),
            4: pgettext("month", "fourth"),
            LAST: pgettext("month", "last"),
        }[rule.nth or LAST]
        if n == 1:
            words = gettext("Monthly on the %(nth)s %(weekday)s", nth=nth, weekday=names)
        else:
            words = ngettext(
                "Every %(num)d month on the %(nth)s %(weekday)s",
                "Every %(num)d months on the %(nth)s %(weekday)s",
                n,
                nth=nth,
                weekday=names,
            )
    clock = _wall_time(first_start, first_end)
    if clock:
        words = gettext("%(rule)s %(time)s", rule=words, time=clock)
    if rule.count is not None:
        return ngettext("%(rule)s, %(num)d time", "%(rule)s, %(num)d times", rule.count, rule=words)
    assert rule.until is not None  # noqa: S101 - a rule ends one way or the other
    until = babel_dates.format_date(rule.until, "medium", locale=locale)
    return gettext("%(rule)s, until %(date)s", rule=words, date=until)


class GridBookingForm(RepeatForm):
    day = DateField(_l("Date"), validators=[InputRequired(message=_l("Pick a date."))])
    start_time = SelectField(_l("From"))
    end_time = SelectField(_l("Until"))

    def __init__(self, space: Space, *args: Any, **kwargs: Any) -> None:
        super().__init__(space, *args, **kwargs)
        starts, ends = grid_times(self.rules)
        self.start_time.choices = [(t, t) for t in starts]
        self.end_time.choices = [(t, t) for t in ends]

    def validate_day(self, field: DateField) -> None:
        _check_date(field)

    def validate_end_time(self, field: SelectField) -> None:
        start, end = self.start_time.data or "", field.data or ""
        if start and end and end != "24:00" and end <= start:
            raise ValidationError(gettext("The end must come after the start."))

    def interval(self) -> Interval:
        tz = self.rules.tz
        return Interval(_at(self.day.data, self.start_time.data, tz), _at(self.day.data, self.end_time.data, tz))


class SlotBookingForm(RepeatForm):
    day = DateField(_l("Date"), validators=[InputRequired(message=_l("Pick a date."))])
    slot = SelectField(_l("Time slot"))
    slot_count = SelectField(_l("Length"), coerce=int)

    def __init__(self, space: Space, *args: Any, **kwargs: Any) -> None:
        super().__init__(space, *args, **kwargs)
        self.slot.choices = slot_choices(self.rules)
        slot_length = self.rules.step
        most = max(1, int(self.rules.max_duration / slot_length))
        self.slot_count.choices = [(n, format_duration(slot_length * n)) for n in range(1, most + 1)]

    def validate_day(self, field: DateField) -> None:
        _check_date(field)

    def interval(self) -> Interval:
        """The chosen slot and the ones right after it; a gap or closing time is the rules' to refuse."""
        tz = self.rules.tz
        start = _at(self.day.data, self.slot.data, tz)
        slots = [s for s in self.rules.slots_on(self.day.data) if s.start >= start]
        run = slots[: self.slot_count.data]
        if len(run) == self.slot_count.data and run and run[0].start == start:
            return Interval(start, run[-1].end)
        # not a run of listed slots on that day: the service says why (closed day, not a slot)
        return Interval(start, start + self.rules.step * self.slot_count.data)


class DaysBookingForm(BookingForm):
    first_day = DateField(_l("First day"), validators=[InputRequired(message=_l("Pick a date."))])
    last_day = DateField(_l("Last day"), validators=[InputRequired(message=_l("Pick a date."))])

    def validate_first_day(self, field: DateField) -> None:
        _check_date(field)

    def validate_last_day(self, field: DateField) -> None:
        _check_date(field)
        first = self.first_day.data
        if first is None or field.data is None:
            return
        if field.data < first:
            raise ValidationError(gettext("The last day comes before the first."))
        if (field.data - first).days + 1 > MAX_FORM_DAYS:
            raise ValidationError(
                gettext("Book at most %(duration)s at a time.", duration=format_duration(self.rules.max_duration))
            )

    def interval(self) -> Interval:
        tz = self.rules.tz
        return Interval(
            local_midnight(self.first_day.data, tz), local_midnight(self.last_day.data + timedelta(days=1), tz)
        )


def form_class(space: Space) -> type[BookingForm]:
    mode = TimeMode(space.time_mode)
    if mode is TimeMode.WHOLE_DAYS:
        return DaysBookingForm
    if mode is TimeMode.FIXED_SLOTS:
        return SlotBookingForm
    return GridBookingForm


def prefill(space: Space, start: str | None, end: str | None) -> dict[str, Any]:
    """Form data from the grid's link (`?start=2026-12-01T09:00&end=…`); anything unreadable is ignored."""
    rules = space.rules()
    data: dict[str, Any] = {}
    try:
        if rules.time_mode is TimeMode.WHOLE_DAYS:
            if start:
                data["first_day"] = date.fromisoformat(start[:10])
                data["last_day"] = date.fromisoformat(end[:10]) if end else data["first_day"]
            return data
        if not start:
            return data
        start_at = datetime.fromisoformat(start)
        data["day"] = start_at.date()
        if rules.time_mode is TimeMode.FIXED_SLOTS:
            data["slot"] = f"{start_at:%H:%M}"
            if end:
                end_at = datetime.fromisoformat(end)
                count = int((end_at - start_at) / rules.step)
                if count >= 1:
                    data["slot_count"] = count
            return data
        data["start_time"] = f"{start_at:%H:%M}"
        if end:
            end_at = datetime.fromisoformat(end)
            data["end_time"] = (
                "24:00" if end_at.date() > start_at.date() and end_at.time() == time(0) else f"{end_at:%H:%M}"
            )
    except (ValueError, TypeError, OverflowError):
        return {}
    return data


def link_params(space: Space, interval: Interval) -> dict[str, str]:
    """The query string that opens the form on this interval: dates for whole days, local times otherwise."""
    tz = space.location.tz
    start, end = interval.start.astimezone(tz), interval.end.astimezone(tz)
    if space.whole_days:
        return {"start": start.date().isoformat(), "end": (end - timedelta(days=1)).date().isoformat()}
    return {"start": f"{start:%Y-%m-%dT%H:%M}", "end": f"{end:%Y-%m-%dT%H:%M}"}


class CancelForm(FlaskForm):
    reason = TextAreaField(_l("Reason (the requester reads it)"), validators=[Length(max=500)])
