"""Half-open intervals, whole local days and the UTC/Shanghai conversions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from booking.domain.intervals import (
    Interval,
    NaiveDatetimeError,
    day_interval,
    local_dates,
    local_midnight,
    merge,
    require_aware,
    to_utc,
    whole_days,
)

from .factories import TZ, WED, at, span

NAIVE = datetime(2026, 12, 9, 9, 0)  # noqa: DTZ001 - deliberately naive


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(NAIVE, at(WED, "10:00"), id="naive-start"),
        pytest.param(at(WED, "08:00"), NAIVE, id="naive-end"),
        pytest.param(NAIVE, NAIVE + timedelta(hours=1), id="both-naive"),
    ],
)
def test_interval_refuses_naive_datetimes(start: datetime, end: datetime) -> None:
    with pytest.raises(NaiveDatetimeError, match="naive datetime"):
        Interval(start, end)


def test_naive_datetime_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="naive"):
        require_aware(NAIVE)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param("10:00", "10:00", id="empty"),
        pytest.param("11:00", "10:00", id="reversed"),
    ],
)
def test_interval_must_end_after_it_starts(start: str, end: str) -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        Interval(at(WED, start), at(WED, end))


@pytest.mark.parametrize(
    ("first", "second", "overlaps"),
    [
        pytest.param(("09:00", "10:00"), ("10:00", "11:00"), False, id="touching-9-10-and-10-11"),
        pytest.param(("10:00", "11:00"), ("09:00", "10:00"), False, id="touching-reversed"),
        pytest.param(("09:00", "10:00"), ("09:30", "11:00"), True, id="overlap-by-one-grid-step"),
        pytest.param(("09:00", "10:01"), ("10:00", "11:00"), True, id="overlap-by-one-minute"),
        pytest.param(("09:00", "12:00"), ("10:00", "11:00"), True, id="contains"),
        pytest.param(("09:00", "10:00"), ("09:00", "10:00"), True, id="identical"),
        pytest.param(("09:00", "10:00"), ("11:00", "12:00"), False, id="disjoint"),
    ],
)
def test_overlaps_is_half_open(first: tuple[str, str], second: tuple[str, str], overlaps: bool) -> None:
    a, b = span(WED, *first), span(WED, *second)
    assert a.overlaps(b) is overlaps
    assert b.overlaps(a) is overlaps


@pytest.mark.parametrize(
    ("outer", "inner", "contains"),
    [
        pytest.param(("08:30", "21:00"), ("08:30", "21:00"), True, id="same"),
        pytest.param(("08:30", "21:00"), ("20:30", "21:00"), True, id="ends-at-closing"),
        pytest.param(("08:30", "21:00"), ("20:30", "21:30"), False, id="runs-past-closing"),
        pytest.param(("08:30", "21:00"), ("08:00", "09:00"), False, id="starts-before-opening"),
    ],
)
def test_contains(outer: tuple[str, str], inner: tuple[str, str], contains: bool) -> None:
    assert span(WED, *outer).contains(span(WED, *inner)) is contains


def test_duration_and_shift() -> None:
    interval = span(WED, "09:00", "10:30")
    assert interval.duration == timedelta(minutes=90)
    assert interval.shifted(timedelta(days=1)) == span(WED + timedelta(days=1), "09:00", "10:30")


def test_interval_equality_is_by_instant_not_zone() -> None:
    local = span(WED, "09:00", "10:00")
    utc = Interval(datetime(2026, 12, 9, 1, tzinfo=UTC), datetime(2026, 12, 9, 2, tzinfo=UTC))
    assert local == utc
    assert hash(local) == hash(utc)


@pytest.mark.parametrize(
    ("day", "utc"),
    [
        pytest.param(date(2026, 12, 9), datetime(2026, 12, 8, 16, tzinfo=UTC), id="december"),
        pytest.param(date(2027, 1, 1), datetime(2026, 12, 31, 16, tzinfo=UTC), id="new-year-crosses-year-in-utc"),
        pytest.param(date(2026, 7, 1), datetime(2026, 6, 30, 16, tzinfo=UTC), id="summer-no-dst"),
    ],
)
def test_shanghai_midnight_is_1600_utc_the_day_before(day: date, utc: datetime) -> None:
    midnight = local_midnight(day, TZ)
    assert midnight == utc
    assert to_utc(midnight) == utc
    assert to_utc(midnight).tzinfo is UTC
    assert (to_utc(midnight).date(), to_utc(midnight).hour) == (day - timedelta(days=1), 16)


def test_to_utc_refuses_naive() -> None:
    with pytest.raises(NaiveDatetimeError):
        to_utc(NAIVE)


@pytest.mark.parametrize(
    ("first", "last", "days"),
    [
        pytest.param(date(2026, 12, 1), date(2026, 12, 3), 3, id="1-to-3-december-is-three-days"),
        pytest.param(date(2026, 12, 9), date(2026, 12, 9), 1, id="one-day"),
        pytest.param(date(2026, 12, 30), date(2027, 1, 2), 4, id="across-new-year"),
    ],
)
def test_whole_days_run_from_local_midnight_to_midnight_after_last(first: date, last: date, days: int) -> None:
    interval = whole_days(first, last, TZ)
    assert interval.start == local_midnight(first, TZ)
    assert interval.end == local_midnight(last + timedelta(days=1), TZ)
    assert interval.duration == timedelta(days=days)
    assert list(local_dates(interval, TZ)) == [first + timedelta(days=n) for n in range(days)]


def test_whole_days_refuses_last_before_first() -> None:
    with pytest.raises(ValueError, match="before the first"):
        whole_days(date(2026, 12, 3), date(2026, 12, 1), TZ)


def test_day_interval_is_one_whole_day() -> None:
    assert day_interval(WED, TZ) == whole_days(WED, WED, TZ)


@pytest.mark.parametrize(
    ("interval", "dates"),
    [
        pytest.param(span(WED, "09:00", "10:00"), [WED], id="within-a-day"),
        pytest.param(span(WED, "23:00", "01:00"), [WED, WED + timedelta(days=1)], id="across-midnight"),
        pytest.param(span(WED, "22:00", "24:00"), [WED], id="ending-at-midnight-excludes-next-day"),
        pytest.param(span(WED, "00:00", "01:00"), [WED], id="starting-at-midnight"),
        pytest.param(
            # 16:00–17:00 UTC on the 8th is 00:00–01:00 in Shanghai on the 9th
            Interval(datetime(2026, 12, 8, 16, tzinfo=UTC), datetime(2026, 12, 8, 17, tzinfo=UTC)),
            [WED],
            id="utc-input-read-in-local-dates",
        ),
    ],
)
def test_local_dates(interval: Interval, dates: list[date]) -> None:
    assert list(local_dates(interval, TZ)) == dates


@pytest.mark.parametrize(
    ("spans", "merged"),
    [
        pytest.param([("09:00", "12:00"), ("12:00", "18:00")], [("09:00", "18:00")], id="touching-join"),
        pytest.param([("09:00", "12:00"), ("11:00", "13:00")], [("09:00", "13:00")], id="overlapping-join"),
        pytest.param([("09:00", "12:00"), ("10:00", "11:00")], [("09:00", "12:00")], id="contained-swallowed"),
        pytest.param(
            [("14:00", "15:00"), ("09:00", "10:00")], [("09:00", "10:00"), ("14:00", "15:00")], id="disjoint-sorted"
        ),
        pytest.param([], [], id="empty"),
    ],
)
def test_merge(spans: list[tuple[str, str]], merged: list[tuple[str, str]]) -> None:
    assert merge(span(WED, *s) for s in spans) == [span(WED, *m) for m in merged]
