"""Recurrence rules and their expansion onto a space: what is booked, what is skipped, and why."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from booking.domain.intervals import NaiveDatetimeError
from booking.domain.recurrence import (
    LAST,
    MAX_OCCURRENCES,
    Cut,
    CutReason,
    Frequency,
    Recurrence,
    RecurrenceError,
    Skipped,
    SkipReason,
    expand,
)
from booking.domain.rules import SpaceRules

from .factories import TZ, at, exhibition, hours, meeting_room, reading_room

NOW = at(date(2026, 11, 30), "09:00")  # Monday 30 November 2026
HOUR = timedelta(hours=1)
FAR = timedelta(days=800)  # a horizon that cuts nothing

DAILY, WEEKLY, MONTHLY = Frequency.DAILY, Frequency.WEEKLY, Frequency.MONTHLY
MON, TUE, THU, FRI = 0, 1, 3, 4


def days_of(rules: SpaceRules, rule: Recurrence, first: datetime, duration: timedelta = HOUR) -> list[date]:
    return [o.start.astimezone(TZ).date() for o in expand(rule, first, duration, rules, NOW).occurrences]


def d(text: str) -> date:
    return date.fromisoformat(text)


@pytest.mark.parametrize(
    ("rule", "first", "expected"),
    [
        pytest.param(
            Recurrence(WEEKLY, weekdays=(TUE, THU), count=16),
            "2026-12-01",
            [d("2026-12-01") + timedelta(weeks=w, days=off) for w in range(8) for off in (0, 2)],
            id="weekly-tue-thu-8-weeks",
        ),
        pytest.param(
            Recurrence(WEEKLY, weekdays=(THU, TUE), until=d("2027-01-21")),
            "2026-12-01",
            [d("2026-12-01") + timedelta(weeks=w, days=off) for w in range(8) for off in (0, 2)],
            id="weekly-until-inclusive-same-as-count",
        ),
        pytest.param(
            Recurrence(WEEKLY, interval=2, weekdays=(TUE,), count=4),
            "2026-12-01",
            [d("2026-12-01"), d("2026-12-15"), d("2026-12-29"), d("2027-01-12")],
            id="every-2-weeks",
        ),
        pytest.param(
            Recurrence(WEEKLY, weekdays=(MON, TUE), count=3),
            "2026-12-01",  # a Tuesday: the Monday before the first date is not part of the series
            [d("2026-12-01"), d("2026-12-07"), d("2026-12-08")],
            id="weekly-starts-on-the-first-date",
        ),
        pytest.param(
            Recurrence(DAILY, interval=3, count=4),
            "2026-12-01",
            [d("2026-12-01"), d("2026-12-04"), d("2026-12-07"), d("2026-12-10")],
            id="every-3-days",
        ),
        pytest.param(
            Recurrence(MONTHLY, nth=LAST, weekdays=(FRI,), count=4),
            "2026-12-01",
            [d("2026-12-25"), d("2027-01-29"), d("2027-02-26"), d("2027-03-26")],
            id="last-friday",
        ),
        pytest.param(
            Recurrence(MONTHLY, nth=2, weekdays=(TUE,), until=d("2027-03-31")),
            "2026-12-01",
            [d("2026-12-08"), d("2027-01-12"), d("2027-02-09"), d("2027-03-09")],
            id="second-tuesday-until",
        ),
        pytest.param(
            Recurrence(MONTHLY, month_day=15, interval=2, count=3),
            "2026-12-01",
            [d("2026-12-15"), d("2027-02-15"), d("2027-04-15")],
            id="every-other-month-on-the-15th",
        ),
        pytest.param(
            Recurrence(MONTHLY, month_day=1, count=2),
            "2026-12-15",  # 1 December is before the first date: the series starts on 1 January
            [d("2027-01-01"), d("2027-02-01")],
            id="monthly-day-before-first-date",
        ),
    ],
)
def test_occurrence_dates(rule, first, expected):
    rules = reading_room(max_advance=FAR)
    expansion = expand(rule, at(d(first), "10:00"), HOUR, rules, NOW)
    assert [o.start.astimezone(TZ).date() for o in expansion.occurrences] == expected
    assert expansion.skipped == ()
    assert expansion.cut is None


def test_wall_clock_time_and_duration_are_kept():
    rule = Recurrence(WEEKLY, weekdays=(TUE,), count=3)
    expansion = expand(rule, at(d("2026-12-01"), "09:00"), timedelta(minutes=90), meeting_room(), NOW)
    assert [(o.start.astimezone(TZ).strftime("%H:%M"), o.duration) for o in expansion.occurrences] == [
        ("09:00", timedelta(minutes=90))
    ] * 3


def test_wall_clock_time_holds_across_a_daylight_saving_change():
    # Shanghai has no DST; a station elsewhere might. 09:00 stays 09:00 in Berlin across 29 March 2026.
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    rules = reading_room(tz=berlin, max_advance=FAR)
    first = datetime(2026, 3, 24, 9, tzinfo=berlin)
    expansion = expand(Recurrence(WEEKLY, weekdays=(TUE,), count=2), first, HOUR, rules, first - HOUR)
    assert [o.start.astimezone(berlin).hour for o in expansion.occurrences] == [9, 9]
    assert [o.start.utcoffset() for o in expansion.occurrences] == [timedelta(hours=1), timedelta(hours=2)]


def test_months_without_the_day_are_skipped_and_said():
    rule = Recurrence(MONTHLY, month_day=31, count=4)
    expansion = expand(rule, at(d("2026-12-31"), "10:00"), HOUR, reading_room(max_advance=FAR), NOW)
    assert [o.start.date() for o in expansion.occurrences] == [
        d("2026-12-31"),
        d("2027-01-31"),
        d("2027-03-31"),
        d("2027-05-31"),
    ]
    # February and April have no 31st: no instance, so they do not use up the count
    assert expansion.skipped == (
        Skipped(d("2027-02-01"), SkipReason.NO_SUCH_DAY),
        Skipped(d("2027-04-01"), SkipReason.NO_SUCH_DAY),
    )
    assert expansion.instances == 4


def test_a_weekday_room_skips_weekends_and_says_so():
    rule = Recurrence(DAILY, count=10)
    expansion = expand(rule, at(d("2026-12-01"), "10:00"), HOUR, meeting_room(), NOW)
    assert [o.start.date() for o in expansion.occurrences] == [
        d("2026-12-01"),
        d("2026-12-02"),
        d("2026-12-03"),
        d("2026-12-04"),
        d("2026-12-07"),
        d("2026-12-08"),
        d("2026-12-09"),
        d("2026-12-10"),
    ]
    # the count counts the rule's instances, as iCalendar does: the weekend is two of the ten
    assert expansion.skipped == (
        Skipped(d("2026-12-05"), SkipReason.CLOSED),
        Skipped(d("2026-12-06"), SkipReason.CLOSED),
    )
    assert expansion.instances == 10


def test_outside_the_hours_of_an_open_day_is_closed_too():
    # open Monday to Thursday all day, Friday only in the afternoon
    rules = meeting_room(
        opening_hours={**{day: hours("08:30", "21:00") for day in range(4)}, FRI: hours("13:00", "21:00")}
    )
    expansion = expand(Recurrence(WEEKLY, weekdays=(THU, FRI), count=2), at(d("2026-12-03"), "10:00"), HOUR, rules, NOW)
    assert [o.start.date() for o in expansion.occurrences] == [d("2026-12-03")]
    assert expansion.skipped == (Skipped(d("2026-12-04"), SkipReason.CLOSED),)


@pytest.mark.parametrize(
    ("rules", "rule", "first", "booked", "cut"),
    [
        pytest.param(
            reading_room(max_advance=FAR),
            Recurrence(DAILY, until=d("2027-02-28")),
            "2026-12-01",
            MAX_OCCURRENCES,
            Cut(CutReason.LIMIT, d("2027-01-22"), 38),
            id="52-cap-on-an-until-rule",
        ),
        pytest.param(
            reading_room(max_advance=timedelta(days=14)),
            Recurrence(WEEKLY, weekdays=(TUE,), count=8),
            "2026-12-01",
            2,  # 1 and 8 December; 15 December 10:00 is past 14 December 09:00
            Cut(CutReason.MAX_ADVANCE, d("2026-12-15"), 6, NOW + timedelta(days=14)),
            id="max-advance-cut",
        ),
        pytest.param(
            meeting_room(max_advance=timedelta(days=30)),
            Recurrence(DAILY, until=d("2027-03-01")),
            "2026-12-01",
            21,  # the weekdays up to 29 December 10:00, which is before 30 December 09:00
            Cut(CutReason.MAX_ADVANCE, d("2026-12-30"), 62),
            id="max-advance-before-the-cap",
        ),
    ],
)
def test_cuts_are_said(rules, rule, first, booked, cut):
    expansion = expand(rule, at(d(first), "10:00"), HOUR, rules, NOW)
    assert len(expansion.occurrences) == booked
    assert expansion.cut is not None
    assert (expansion.cut.reason, expansion.cut.first_day, expansion.cut.dropped) == (
        cut.reason,
        cut.first_day,
        cut.dropped,
    )
    if cut.latest is not None:
        assert expansion.cut.latest == cut.latest


def test_whole_day_spaces_repeat_whole_days():
    rules = exhibition()
    first = at(d("2026-12-14"), "00:00")
    expansion = expand(Recurrence(WEEKLY, weekdays=(MON,), count=3), first, timedelta(days=2), rules, NOW)
    assert [(o.start.date(), o.end.date()) for o in expansion.occurrences] == [
        (d("2026-12-14"), d("2026-12-16")),
        (d("2026-12-21"), d("2026-12-23")),
        (d("2026-12-28"), d("2026-12-30")),
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"frequency": DAILY}, "exactly one", id="neither-count-nor-until"),
        pytest.param({"frequency": DAILY, "count": 3, "until": d("2027-01-01")}, "exactly one", id="both"),
        pytest.param({"frequency": DAILY, "count": 53}, "between 1 and 52", id="count-over-52"),
        pytest.param({"frequency": DAILY, "count": 0}, "between 1 and 52", id="count-zero"),
        pytest.param({"frequency": DAILY, "count": 3, "interval": 0}, "interval", id="interval-zero"),
        pytest.param({"frequency": WEEKLY, "count": 3}, "at least one weekday", id="weekly-without-weekdays"),
        pytest.param({"frequency": WEEKLY, "count": 3, "weekdays": (7,)}, "Monday", id="weekday-out-of-range"),
        pytest.param({"frequency": DAILY, "count": 3, "weekdays": (1,)}, "daily", id="daily-with-weekdays"),
        pytest.param({"frequency": MONTHLY, "count": 3}, "give one", id="monthly-without-day-or-nth"),
        pytest.param(
            {"frequency": MONTHLY, "count": 3, "month_day": 3, "nth": 1, "weekdays": (1,)},
            "give one",
            id="monthly-with-both",
        ),
        pytest.param({"frequency": MONTHLY, "count": 3, "month_day": 32}, "1 to 31", id="month-day-32"),
        pytest.param({"frequency": MONTHLY, "count": 3, "nth": 5, "weekdays": (1,)}, "nth is 1 to 4", id="nth-5"),
        pytest.param({"frequency": MONTHLY, "count": 3, "nth": 0, "weekdays": (1,)}, "nth is 1 to 4", id="nth-0"),
        pytest.param({"frequency": MONTHLY, "count": 3, "nth": 2}, "exactly one weekday", id="nth-without-weekday"),
        pytest.param(
            {"frequency": MONTHLY, "count": 3, "nth": 2, "weekdays": (1, 2)}, "exactly one weekday", id="nth-two-days"
        ),
        pytest.param({"frequency": "yearly", "count": 3}, "yearly", id="unknown-frequency"),
    ],
)
def test_malformed_rules_are_refused(fields: dict[str, Any], message: str):
    with pytest.raises(RecurrenceError, match=message):
        Recurrence(**fields)
    assert issubclass(RecurrenceError, ValueError)  # forms catch ValueError


@pytest.mark.parametrize(
    ("rule", "first", "error"),
    [
        pytest.param(
            Recurrence(DAILY, until=d("2026-11-30")),
            at(d("2026-12-01"), "10:00"),
            RecurrenceError,
            id="until-before-first",
        ),
        pytest.param(
            Recurrence(DAILY, until=d("2099-01-01")), at(d("2026-12-01"), "10:00"), RecurrenceError, id="until-absurd"
        ),
        pytest.param(Recurrence(DAILY, count=2), datetime(2026, 12, 1, 10), NaiveDatetimeError, id="naive-start"),  # noqa: DTZ001
    ],
)
def test_expansion_refuses(rule, first, error):
    with pytest.raises(error):
        expand(rule, first, HOUR, reading_room(), NOW)


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(Recurrence(WEEKLY, weekdays=(THU, TUE, TUE), count=8), id="weekly"),
        pytest.param(Recurrence(MONTHLY, nth=LAST, weekdays=(FRI,), until=d("2027-06-30")), id="last-friday"),
        pytest.param(Recurrence(MONTHLY, month_day=31, interval=2, count=5), id="month-day"),
        pytest.param(Recurrence(DAILY, count=1), id="daily"),
    ],
)
def test_round_trips_through_json(rule):
    import json

    assert Recurrence.from_dict(json.loads(json.dumps(rule.as_dict()))) == rule


def test_the_parts_a_sentence_needs_are_exposed():
    # "Every Tuesday and Thursday 09:00–10:00, 8 times" / "每周二、周四 09:00–10:00，共 8 次"
    rule = Recurrence.from_dict({"frequency": "weekly", "weekdays": [3, 1], "count": 8})
    assert (rule.frequency, rule.interval, rule.weekdays, rule.count, rule.until) == (WEEKLY, 1, (TUE, THU), 8, None)


def test_unknown_json_fields_are_refused():
    with pytest.raises(RecurrenceError, match="bysetpos"):
        Recurrence.from_dict({"frequency": "daily", "count": 2, "bysetpos": 1})
