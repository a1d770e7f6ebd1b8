"""Recurring bookings: a rule, and its expansion into the occurrences a space can host.

A series is booked as one request but stored as one Booking per occurrence, so this
module only answers "which intervals?" — capacity, closures and policy are checked per
occurrence by `check.check_request`, exactly as for a single booking.

Semantics, chosen to match iCalendar's RRULE so a series reads the same everywhere:

- The first start gives the wall-clock time and the first date. Occurrences are the
  dates matching the rule on or after that date; every occurrence keeps the first one's
  local wall-clock start and duration, whatever the UTC offset does in between.
- `count` counts the rule's instances, as RRULE's COUNT does: a day the space is closed
  is an instance that cannot be booked (it is reported), while "31 April" is no instance
  at all (it is reported too, but does not use up the count).
- `until` is a local date, inclusive.
- A series never has more than MAX_OCCURRENCES instances, and never reaches past the
  space's `max_advance` from now; what the rule asked for beyond either is reported as a
  `Cut`, never dropped silently.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from booking.domain.check import within_opening_hours
from booking.domain.intervals import Interval, require_aware
from booking.domain.rules import SpaceRules

MAX_OCCURRENCES = 52
# `until` further than this from the first date is a typo, not a plan: no space books that far ahead.
MAX_UNTIL_SPAN = timedelta(days=5 * 366)
LAST = -1  # `nth` for "the last <weekday> of the month"


class RecurrenceError(ValueError):
    """The rule itself is malformed; the message says what to fix, in English, for logs and forms."""


class Frequency(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"  # on `weekdays`
    MONTHLY = "monthly"  # on `month_day`, or on the `nth` of `weekdays[0]`


@dataclass(frozen=True)
class Recurrence:
    """How a series repeats: every `interval` days, weeks or months, until a date or for a count.

    - daily:                         Recurrence(DAILY, count=10)
    - every Tuesday and Thursday:    Recurrence(WEEKLY, weekdays=(1, 3), until=date(2027, 1, 28))
    - every other week on Monday:    Recurrence(WEEKLY, interval=2, weekdays=(0,), count=6)
    - monthly on the 31st:           Recurrence(MONTHLY, month_day=31, count=6)
    - the last Friday of each month: Recurrence(MONTHLY, nth=LAST, weekdays=(4,), count=6)

    Weekdays count from Monday = 0, as `date.weekday()` does. Weekdays are stored sorted
    and without repeats, so equal rules compare equal.
    """

    frequency: Frequency
    interval: int = 1
    weekdays: tuple[int, ...] = ()
    month_day: int | None = None  # 1–31, monthly only
    nth: int | None = None  # 1–4, or LAST (-1), monthly only, with exactly one weekday
    until: date | None = None  # inclusive, local date
    count: int | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "frequency", Frequency(self.frequency))
        except ValueError as exc:
            raise RecurrenceError(f"unknown frequency {self.frequency!r}: daily, weekly or monthly") from exc
        object.__setattr__(self, "weekdays", tuple(sorted(set(self.weekdays))))
        self._validate()

    def _validate(self) -> None:
        if isinstance(self.interval, bool) or not isinstance(self.interval, int) or self.interval < 1:
            raise RecurrenceError("the interval must be a whole number of at least 1")
        if (self.count is None) == (self.until is None):
            raise RecurrenceError("a series ends either after a count or on an until date: give exactly one")
        if self.count is not None and not 1 <= self.count <= MAX_OCCURRENCES:
            raise RecurrenceError(f"a series has between 1 and {MAX_OCCURRENCES} occurrences")
        if any(not 0 <= day <= 6 for day in self.weekdays):
            raise RecurrenceError("weekdays run from 0 (Monday) to 6 (Sunday)")
        if self.frequency is Frequency.DAILY:
            if self.weekdays or self.month_day is not None or self.nth is not None:
                raise RecurrenceError("a daily series takes no weekdays, day of the month or nth")
        elif self.frequency is Frequency.WEEKLY:
            if not self.weekdays:
                raise RecurrenceError("a weekly series needs at least one weekday")
            if self.month_day is not None or self.nth is not None:
                raise RecurrenceError("a weekly series takes no day of the month or nth")
        elif (self.month_day is None) == (self.nth is None):
            raise RecurrenceError("a monthly series repeats on a day of the month or on an nth weekday: give one")
        elif self.month_day is not None:
            if not 1 <= self.month_day <= 31:
                raise RecurrenceError("the day of the month runs from 1 to 31")
            if self.weekdays:
                raise RecurrenceError("a monthly series on a day of the month takes no weekdays")
        else:
            if self.nth not in (1, 2, 3, 4, LAST):
                raise RecurrenceError("nth is 1 to 4, or -1 for the last weekday of the month")
            if len(self.weekdays) != 1:
                raise RecurrenceError("a monthly series on the nth weekday needs exactly one weekday")

    # -- as JSON (the Series row stores this) ----------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; `from_dict(as_dict())` gives the same rule back."""
        data: dict[str, Any] = {"frequency": self.frequency.value, "interval": self.interval}
        if self.weekdays:
            data["weekdays"] = list(self.weekdays)
        if self.month_day is not None:
            data["month_day"] = self.month_day
        if self.nth is not None:
            data["nth"] = self.nth
        if self.until is not None:
            data["until"] = self.until.isoformat()
        if self.count is not None:
            data["count"] = self.count
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recurrence:
        unknown = set(data) - {"frequency", "interval", "weekdays", "month_day", "nth", "until", "count"}
        if unknown:
            raise RecurrenceError(f"unknown recurrence fields: {', '.join(sorted(unknown))}")
        if "frequency" not in data:
            raise RecurrenceError("a recurrence needs a frequency: daily, weekly or monthly")
        until = data.get("until")
        try:
            until_date = date.fromisoformat(until) if isinstance(until, str) else until
        except ValueError as exc:
            raise RecurrenceError("until is a date, YYYY-MM-DD") from exc
        return cls(
            frequency=data["frequency"],
            interval=data.get("interval", 1),
            weekdays=tuple(data.get("weekdays", ())),
            month_day=data.get("month_day"),
            nth=data.get("nth"),
            until=until_date,
            count=data.get("count"),
        )


class SkipReason(enum.StrEnum):
    CLOSED = "closed"  # the space's opening hours do not cover the occurrence (Saturday in a weekday room)
    NO_SUCH_DAY = "no_such_day"  # the month has no such day (31 April): not an instance, not counted


@dataclass(frozen=True)
class Skipped:
    """A date the rule names but the series does not book.

    For NO_SUCH_DAY `day` is the first of the month that lacks the rule's `month_day`
    (there is no date "31 April" to give); only its year and month mean anything.
    """

    day: date
    reason: SkipReason


class CutReason(enum.StrEnum):
    LIMIT = "limit"  # more than MAX_OCCURRENCES instances
    MAX_ADVANCE = "max_advance"  # beyond how far ahead the space may be booked


@dataclass(frozen=True)
class Cut:
    """The rule goes on, the series stops: from `first_day`, `dropped` more instances are not booked."""

    reason: CutReason
    first_day: date
    dropped: int
    latest: datetime | None = None  # MAX_ADVANCE: the latest start the space accepts now


@dataclass(frozen=True)
class Expansion:
    """Where a rule lands on a space: the occurrences to check, and everything it skipped, said."""

    occurrences: tuple[Interval, ...]
    skipped: tuple[Skipped, ...] = ()
    cut: Cut | None = None

    @property
    def instances(self) -> int:
        """Rule instances taken into the series: occurrences plus closed days (what `count` counts)."""
        return len(self.occurrences) + sum(1 for s in self.skipped if s.reason is SkipReason.CLOSED)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    """The nth (1–4) or last (-1) `weekday` of a month; both always exist."""
    days_in_month = calendar.monthrange(year, month)[1]
    if nth == LAST:
        last = date(year, month, days_in_month)
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))


# (year, month, day) so that "31 April" has a place in the order; the date, or None for no such day
_Instance = tuple[tuple[int, int, int], date | None]


def _instances(rule: Recurrence, first_day: date) -> Iterator[_Instance]:
    """Every date the rule names on or after `first_day`, in order, forever."""
    step = rule.interval
    if rule.frequency is Frequency.DAILY:
        day = first_day
        while True:
            yield (day.year, day.month, day.day), day
            day += timedelta(days=step)
    elif rule.frequency is Frequency.WEEKLY:
        week = first_day - timedelta(days=first_day.weekday())
        while True:
            for weekday in rule.weekdays:
                day = week + timedelta(days=weekday)
                if day >= first_day:
                    yield (day.year, day.month, day.day), day
            week += timedelta(weeks=step)
    elif rule.month_day is not None:
        month_day, months = rule.month_day, 0
        while True:
            year, month = _add_months(first_day.year, first_day.month, months)
            months += step
            if month_day > calendar.monthrange(year, month)[1]:
                yield (year, month, month_day), None
            elif (found := date(year, month, month_day)) >= first_day:
                yield (year, month, month_day), found
    else:
        nth, weekday, months = rule.nth or LAST, rule.weekdays[0], 0
        while True:
            year, month = _add_months(first_day.year, first_day.month, months)
            months += step
            if (found := _nth_weekday(year, month, weekday, nth)) >= first_day:
                yield (year, month, found.day), found


def expand(rule: Recurrence, first_start: datetime, duration: timedelta, rules: SpaceRules, now: datetime) -> Expansion:
    """The occurrences of `rule` from `first_start`, each `duration` long, in the space's time zone.

    Skips, and says so, the days the space's opening hours do not cover and the months
    without the rule's day; stops, and says so, at MAX_OCCURRENCES instances or at the
    space's booking horizon (`now + max_advance`). Capacity, closures and the other
    policy limits are not looked at here: the caller checks each occurrence.
    """
    require_aware(first_start)
    require_aware(now)
    if duration <= timedelta(0):
        raise RecurrenceError("an occurrence must end after it starts")
    local_start = first_start.astimezone(rules.tz)
    first_day, wall_time = local_start.date(), local_start.timetz().replace(tzinfo=None)
    if rule.until is not None:
        if rule.until < first_day:
            raise RecurrenceError("the series ends before its first date")
        if rule.until - first_day > MAX_UNTIL_SPAN:
            raise RecurrenceError("the series ends too far in the future")
    until_key = (rule.until.year, rule.until.month, rule.until.day) if rule.until is not None else None
    latest = now + rules.max_advance

    occurrences: list[Interval] = []
    skipped: list[Skipped] = []
    cut: tuple[CutReason, date] | None = None
    taken = dropped = 0  # instances of the rule so far, booked or not: what `count` and the limit count
    for key, day in _instances(rule, first_day):
        if until_key is not None and key > until_key:
            break
        if rule.count is not None and taken >= rule.count:
            break
        if day is None:
            if cut is None:
                skipped.append(Skipped(date(key[0], key[1], 1), SkipReason.NO_SUCH_DAY))
            continue
        taken += 1
        if cut is not None:
            dropped += 1
            continue
        # wall-clock arithmetic on aware datetimes of one zone: same local time and duration every date
        start = datetime.combine(day, wall_time, tzinfo=rules.tz)
        interval = Interval(start, start + duration)
        if taken > MAX_OCCURRENCES:
            cut, dropped = (CutReason.LIMIT, day), 1
        elif interval.start > latest:
            cut, dropped = (CutReason.MAX_ADVANCE, day), 1
        elif not within_opening_hours(rules, interval):
            skipped.append(Skipped(day, SkipReason.CLOSED))
        else:
            occurrences.append(interval)
    return Expansion(
        occurrences=tuple(occurrences),
        skipped=tuple(skipped),
        cut=None if cut is None else Cut(cut[0], cut[1], dropped, latest if cut[0] is CutReason.MAX_ADVANCE else None),
    )
