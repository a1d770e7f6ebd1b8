"""Half-open time intervals on aware datetimes, and the local-time helpers around them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


class NaiveDatetimeError(ValueError):
    """A datetime without a zone reached the rules; we never guess which zone was meant."""


def require_aware(value: datetime) -> datetime:
    if value.tzinfo is UTC:  # what the database hands back: no need to ask the zone
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(f"naive datetime {value.isoformat()}")
    return value


@dataclass(frozen=True, order=True)
class Interval:
    """[start, end): 09:00–10:00 and 10:00–11:00 touch but do not overlap."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_aware(self.start)
        require_aware(self.end)
        if self.end <= self.start:
            raise ValueError("an interval must end after it starts")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end

    def shifted(self, delta: timedelta) -> Interval:
        return Interval(self.start + delta, self.end + delta)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def local_at(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A wall-clock time on a local day; 24:00 is written as time(0) of the next day by callers."""
    return datetime.combine(day, at, tzinfo=tz)


def day_interval(day: date, tz: ZoneInfo) -> Interval:
    return Interval(local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz))


def whole_days(first: date, last: date, tz: ZoneInfo) -> Interval:
    """People say "1 to 3 December": both days booked, so the interval ends at midnight after `last`."""
    if last < first:
        raise ValueError("the last day comes before the first")
    return Interval(local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz))


def local_dates(interval: Interval, tz: ZoneInfo) -> Iterator[date]:
    """Every local date the interval touches (its end is exclusive)."""
    day = interval.start.astimezone(tz).date()
    last = (interval.end - timedelta(microseconds=1)).astimezone(tz).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Union of intervals; touching ones join, so 09–12 and 12–18 read as 09–18."""
    merged: list[Interval] = []
    for current in sorted(intervals):
        if merged and current.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, current.end))
        else:
            merged.append(current)
    return merged


def to_utc(value: datetime) -> datetime:
    return require_aware(value).astimezone(UTC)
