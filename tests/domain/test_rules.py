"""A space's rules: validation, grid cells, opening hours and approval."""

from __future__ import annotations

from datetime import time, timedelta
from itertools import pairwise
from typing import Any

import pytest

from booking.domain.check import shape_refusal
from booking.domain.intervals import whole_days
from booking.domain.rules import MAX_SPAN, Approval, SpaceRules, TimeMode, format_hhmm, parse_hhmm

from .factories import SAT, TZ, WED, WEEKDAYS, at, cafe, exhibition, hours, meeting_room, reading_room, span


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"opening_hours": {0: (*hours("08:30", "12:00"), *hours("11:30", "21:00"))}},
            "opening intervals overlap",
            id="overlapping-opening-intervals",
        ),
        pytest.param(
            {"opening_hours": {0: (*hours("13:00", "21:00"), *hours("08:30", "13:30"))}},
            "opening intervals overlap",
            id="overlapping-opening-intervals-unsorted",
        ),
        pytest.param(
            {"opening_hours": {0: hours("21:00", "08:30")}}, "end after it starts", id="opening-ends-before-start"
        ),
        pytest.param({"opening_hours": {0: hours("09:00", "09:00")}}, "end after it starts", id="empty-opening"),
        pytest.param(
            {"max_duration": MAX_SPAN + timedelta(minutes=30)}, "no booking may be longer", id="max-duration-over-span"
        ),
        pytest.param({"grid_minutes": 7}, "grid must divide the day", id="grid-7-min"),
        pytest.param({"grid_minutes": 50}, "grid must divide the day", id="grid-50-min"),
        pytest.param({"grid_minutes": 0}, "grid must divide the day", id="grid-zero"),
        pytest.param({"grid_minutes": -30}, "grid must divide the day", id="grid-negative"),
        pytest.param({"capacity": 0}, "capacity must be at least 1", id="capacity-zero"),
        pytest.param({"min_duration": timedelta(hours=5)}, "minimum duration exceeds", id="min-over-max"),
        pytest.param(
            {"fixed_slots": (*hours("10:00", "10:30"), *hours("10:15", "10:45"))},
            "opening intervals overlap",
            id="overlapping-fixed-slots",
        ),
    ],
)
def test_invalid_rules_raise(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        meeting_room(**overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"opening_hours": {0: (*hours("08:30", "12:00"), *hours("12:00", "21:00"))}}, id="touching"),
        pytest.param({"opening_hours": {0: hours("00:00", "24:00")}}, id="all-day-with-24:00"),
        pytest.param({"max_duration": MAX_SPAN}, id="max-duration-exactly-span"),
        pytest.param({"grid_minutes": 45}, id="grid-45-divides-1440"),
        pytest.param({"grid_minutes": 1440}, id="grid-whole-day"),
        pytest.param({"min_duration": timedelta(hours=4)}, id="min-equals-max"),
    ],
)
def test_valid_edge_rules_are_accepted(overrides: dict[str, Any]) -> None:
    meeting_room(**overrides)


def test_grid_is_not_checked_for_whole_day_spaces() -> None:
    assert exhibition(grid_minutes=7).step == timedelta(days=1)


@pytest.mark.parametrize(
    ("approval", "over", "duration", "needed"),
    [
        pytest.param(Approval.NEVER, None, timedelta(hours=4), False, id="never"),
        pytest.param(Approval.ALWAYS, None, timedelta(minutes=30), True, id="always-short"),
        pytest.param(Approval.OVER_DURATION, timedelta(hours=2), timedelta(hours=2), False, id="over-at-threshold"),
        pytest.param(
            Approval.OVER_DURATION, timedelta(hours=2), timedelta(hours=2, minutes=30), True, id="over-one-step-beyond"
        ),
        pytest.param(Approval.OVER_DURATION, timedelta(hours=2), timedelta(hours=1), False, id="over-below"),
        pytest.param(Approval.OVER_DURATION, None, timedelta(hours=4), False, id="over-without-threshold"),
    ],
)
def test_needs_approval(approval: Approval, over: timedelta | None, duration: timedelta, needed: bool) -> None:
    assert meeting_room(approval=approval, approval_over=over).needs_approval(duration) is needed


def test_exhibition_always_needs_approval() -> None:
    assert exhibition().needs_approval(timedelta(days=1)) is True


@pytest.mark.parametrize(
    ("text", "value", "as_end"),
    [
        pytest.param("09:00", time(9), "09:00", id="morning"),
        pytest.param("08:30", time(8, 30), "08:30", id="half-past"),
        pytest.param("24:00", time(0), "24:00", id="end-of-day"),
        pytest.param("00:00", time(0), "24:00", id="midnight-as-end-reads-24:00"),
    ],
)
def test_parse_and_format_hhmm(text: str, value: time, as_end: str) -> None:
    assert parse_hhmm(text) == value
    assert format_hhmm(value, end=True) == as_end


def test_format_hhmm_start_of_day() -> None:
    assert format_hhmm(time(0)) == "00:00"


@pytest.mark.parametrize(
    ("rules", "step"),
    [
        pytest.param(meeting_room(), timedelta(minutes=30), id="meeting-room"),
        pytest.param(reading_room(), timedelta(hours=1), id="reading-room"),
        pytest.param(cafe(), timedelta(minutes=30), id="cafe"),
        pytest.param(exhibition(), timedelta(days=1), id="exhibition"),
    ],
)
def test_step(rules: SpaceRules, step: timedelta) -> None:
    assert rules.step == step


def test_exclusive_only_with_one_unit() -> None:
    assert meeting_room().exclusive
    assert not reading_room().exclusive


def test_opening_on_with_24_00_runs_to_next_midnight() -> None:
    rules = reading_room(opening_hours={2: hours("00:00", "24:00")})
    assert rules.opening_on(WED) == [whole_days(WED, WED, TZ)]
    assert rules.opening_on(WED + timedelta(days=1)) == []
    assert not rules.is_open_day(WED + timedelta(days=1))


@pytest.mark.parametrize(
    ("rules", "day", "count", "first", "last"),
    [
        pytest.param(meeting_room(), WED, 25, ("08:30", "09:00"), ("20:30", "21:00"), id="meeting-room-weekday"),
        pytest.param(meeting_room(), SAT, 0, None, None, id="meeting-room-saturday-closed"),
        pytest.param(reading_room(), WED, 14, ("08:00", "09:00"), ("21:00", "22:00"), id="reading-room"),
        pytest.param(cafe(), WED, 14, ("10:00", "10:30"), ("16:30", "17:00"), id="cafe-fixed-slots"),
        pytest.param(
            cafe(opening_hours={2: hours("12:00", "14:00")}),
            WED,
            4,
            ("12:00", "12:30"),
            ("13:30", "14:00"),
            id="cafe-slots-only-inside-opening",
        ),
        pytest.param(exhibition(), WED, 1, ("00:00", "24:00"), ("00:00", "24:00"), id="exhibition-whole-day"),
        pytest.param(
            meeting_room(opening_hours={2: (*hours("08:30", "12:00"), *hours("12:00", "21:00"))}),
            WED,
            25,
            ("08:30", "09:00"),
            ("20:30", "21:00"),
            id="touching-opening-intervals-merge",
        ),
        pytest.param(
            meeting_room(opening_hours={2: (*hours("08:30", "12:00"), *hours("13:00", "21:00"))}),
            WED,
            23,
            ("08:30", "09:00"),
            ("20:30", "21:00"),
            id="lunch-break",
        ),
        pytest.param(
            reading_room(opening_hours={2: hours("08:30", "21:00")}),
            WED,
            12,
            ("09:00", "10:00"),
            ("20:00", "21:00"),
            id="hourly-grid-opening-0830-first-cell-0900",
        ),
    ],
)
def test_slots_on(
    rules: SpaceRules, day: Any, count: int, first: tuple[str, str] | None, last: tuple[str, str] | None
) -> None:
    cells = rules.slots_on(day)
    assert len(cells) == count
    if count:
        assert cells[0] == span(day, *first)
        assert cells[-1] == span(day, *last)
        assert all(a.end <= b.start for a, b in pairwise(cells))


def test_lunch_break_has_no_cell_across_it() -> None:
    rules = meeting_room(opening_hours={2: (*hours("08:30", "12:00"), *hours("13:00", "21:00"))})
    starts = {cell.start for cell in rules.slots_on(WED)}
    assert at(WED, "11:30") in starts
    assert at(WED, "12:00") not in starts
    assert at(WED, "12:30") not in starts
    assert at(WED, "13:00") in starts


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param(meeting_room(), id="meeting-room"),
        pytest.param(reading_room(), id="reading-room"),
        pytest.param(cafe(), id="cafe"),
        pytest.param(exhibition(), id="exhibition"),
        pytest.param(
            reading_room(opening_hours={d: hours("08:30", "21:00") for d in WEEKDAYS}),
            id="hourly-grid-opening-on-the-half-hour",
        ),
        pytest.param(
            meeting_room(opening_hours={2: (*hours("08:45", "12:10"), *hours("13:00", "21:00"))}),
            id="opening-off-the-grid",
        ),
    ],
)
def test_every_offered_cell_is_on_the_grid_and_open(rules: SpaceRules) -> None:
    """A cell the calendar offers must never be refused for its shape when clicked."""
    cells = rules.slots_on(WED)
    assert cells
    for cell in cells:
        assert shape_refusal(rules, cell) is None, cell


def test_time_mode_values_are_stable() -> None:
    # stored in the database and in forms
    assert [m.value for m in TimeMode] == ["grid", "whole_days", "fixed_slots"]
    assert [a.value for a in Approval] == ["never", "always", "over_duration"]
