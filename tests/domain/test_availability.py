"""The week view (one state per cell) and the nearest free time after a refusal."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from booking.domain.availability import Cell, CellState, Day, availability, nearest_free
from booking.domain.capacity import Hold
from booking.domain.check import ClosureSpan, Request
from booking.domain.intervals import Interval, whole_days
from booking.domain.rules import SpaceRules

from .factories import (
    FRI,
    MON,
    SAT,
    SUN,
    THU,
    TUE,
    TZ,
    WED,
    WEEK,
    at,
    cafe,
    closure,
    exhibition,
    hold,
    hours,
    meeting_room,
    reading_room,
    request,
    span,
)

NOW = at(TUE, "12:00")  # Tuesday noon of the test week
EARLY = at(date(2026, 12, 1), "09:00")  # the week before: nothing in the test week is past


def cell_at(days: list[Day], day: date, start: str, end: str) -> Cell:
    wanted = span(day, start, end)
    for d in days:
        for cell in d.cells:
            if cell.interval == wanted:
                return cell
    raise AssertionError(f"no cell {day} {start}–{end}")


# --- the week of a multi-unit room ----------------------------------------------------------

READING_HOLDS = [
    hold(1, WED, "09:00", "10:00", units=5, requester_id=50),
    hold(2, WED, "10:00", "11:00", units=20, requester_id=60),
    hold(3, WED, "11:00", "12:00", units=12, requester_id=60),
    hold(4, WED, "11:00", "12:00", units=8, requester_id=50),
    hold(5, MON, "09:00", "10:00", units=20, requester_id=60),
]
READING_CLOSURES = [
    closure(9, THU, "13:00", "15:00", "书架维修 shelf repair"),
    closure(10, MON, "14:00", "15:00", "消毒 cleaning"),
]


@pytest.mark.parametrize(
    ("day", "start", "end", "state", "left", "own", "reason"),
    [
        pytest.param(WED, "08:00", "09:00", CellState.FREE, 20, False, None, id="free"),
        pytest.param(WED, "09:00", "10:00", CellState.PARTLY, 15, True, None, id="partly-15-left-own"),
        pytest.param(WED, "10:00", "11:00", CellState.FULL, 0, False, None, id="full-not-own"),
        pytest.param(WED, "11:00", "12:00", CellState.FULL, 0, True, None, id="full-by-two-one-own"),
        pytest.param(WED, "12:00", "13:00", CellState.FREE, 20, False, None, id="free-after-touching-hold"),
        pytest.param(THU, "13:00", "14:00", CellState.CLOSED, 20, False, "书架维修 shelf repair", id="closed-reason"),
        pytest.param(THU, "14:00", "15:00", CellState.CLOSED, 20, False, "书架维修 shelf repair", id="closed-second"),
        pytest.param(THU, "15:00", "16:00", CellState.FREE, 20, False, None, id="free-after-closure"),
        pytest.param(MON, "09:00", "10:00", CellState.PAST, 0, False, None, id="past-even-if-full"),
        pytest.param(MON, "14:00", "15:00", CellState.CLOSED, 20, False, "消毒 cleaning", id="closure-beats-past"),
        pytest.param(TUE, "11:00", "12:00", CellState.PAST, 20, False, None, id="ends-at-now-is-past"),
        pytest.param(TUE, "12:00", "13:00", CellState.FREE, 20, False, None, id="starts-at-now-is-free"),
    ],
)
def test_reading_room_week(
    day: date, start: str, end: str, state: CellState, left: int, own: bool, reason: str | None
) -> None:
    week = availability(reading_room(), WEEK, now=NOW, holds=READING_HOLDS, closures=READING_CLOSURES, viewer_id=50)
    cell = cell_at(week, day, start, end)
    assert (cell.state, cell.left, cell.own, cell.reason) == (state, left, own, reason)


def test_week_has_every_day_in_order_and_every_cell() -> None:
    week = availability(reading_room(), WEEK, now=NOW, holds=READING_HOLDS, closures=READING_CLOSURES)
    assert [d.day for d in week] == WEEK
    assert all(len(d.cells) == 14 for d in week)
    assert all(d.open for d in week)


@pytest.mark.parametrize(
    ("viewer", "own_cells"),
    [
        pytest.param(50, {("09:00", "10:00"), ("11:00", "12:00")}, id="viewer-50"),
        pytest.param(60, {("10:00", "11:00"), ("11:00", "12:00")}, id="viewer-60"),
        pytest.param(70, set(), id="someone-else"),
        pytest.param(None, set(), id="anonymous"),
    ],
)
def test_own_marks_the_viewers_holds(viewer: int | None, own_cells: set[tuple[str, str]]) -> None:
    (wed,) = availability(reading_room(), [WED], now=NOW, holds=READING_HOLDS, viewer_id=viewer)
    assert {(c.interval.start.strftime("%H:%M"), c.interval.end.strftime("%H:%M")) for c in wed.cells if c.own} == (
        own_cells
    )


def test_partly_counts_the_peak_inside_a_cell() -> None:
    # 09:00–09:30 holds 10 and 09:30–10:00 holds 10: the hour cell has 10 left, not 0
    holds = [hold(1, WED, "09:00", "09:30", units=10), hold(2, WED, "09:30", "10:00", units=10)]
    (wed,) = availability(reading_room(), [WED], now=NOW, holds=holds)
    cell = cell_at([wed], WED, "09:00", "10:00")
    assert (cell.state, cell.left) == (CellState.PARTLY, 10)


# --- exclusive room, closed weekdays ------------------------------------------------------


def test_meeting_room_week_closed_at_weekends() -> None:
    week = availability(meeting_room(), WEEK, now=NOW)
    assert [d.open for d in week] == [True] * 5 + [False] * 2
    assert [d.cells for d in week if d.day in (SAT, SUN)] == [(), ()]
    assert all(len(d.cells) == 25 for d in week[:5])


@pytest.mark.parametrize(
    ("start", "end", "state", "left", "own"),
    [
        pytest.param("09:30", "10:00", CellState.FREE, 1, False, id="free-before"),
        pytest.param("10:00", "10:30", CellState.FULL, 0, True, id="full-own-first-half"),
        pytest.param("10:30", "11:00", CellState.FULL, 0, True, id="full-own-second-half"),
        pytest.param("11:00", "11:30", CellState.FREE, 1, False, id="free-after-touching"),
    ],
)
def test_exclusive_room_has_no_partly(start: str, end: str, state: CellState, left: int, own: bool) -> None:
    holds = [hold(1, WED, "10:00", "11:00", requester_id=50)]
    week = availability(meeting_room(), WEEK, now=NOW, holds=holds, viewer_id=50)
    cell = cell_at(week, WED, start, end)
    assert (cell.state, cell.left, cell.own) == (state, left, own)
    assert all(c.state is not CellState.PARTLY for d in week for c in d.cells)


# --- whole days and long holds -------------------------------------------------------------


def test_whole_days_space_has_one_cell_per_open_day() -> None:
    rules = exhibition(opening_hours={d: hours("09:00", "18:00") for d in range(1, 7)})  # closed on Mondays
    week = availability(rules, WEEK, now=EARLY)
    assert [len(d.cells) for d in week] == [0, 1, 1, 1, 1, 1, 1]
    for d in week[1:]:
        (cell,) = d.cells
        assert cell.interval == whole_days(d.day, d.day, TZ)
        assert cell.state is CellState.FREE


def test_long_hold_started_before_the_window_still_counts() -> None:
    holds = [
        Hold(booking_id=1, interval=whole_days(date(2026, 12, 3), TUE, TZ), units=1, requester_id=50),
        Hold(booking_id=2, interval=whole_days(THU, THU, TZ), units=1, requester_id=60),
    ]
    week = availability(exhibition(), WEEK, now=EARLY, holds=holds, viewer_id=50)
    states = [(d.cells[0].state, d.cells[0].own) for d in week]
    assert states == [
        (CellState.FULL, True),
        (CellState.FULL, True),
        (CellState.FREE, False),
        (CellState.FULL, False),
        (CellState.FREE, False),
        (CellState.FREE, False),
        (CellState.FREE, False),
    ]


def test_long_hold_listed_among_short_ones_still_counts() -> None:
    # a hold from Sunday night to Wednesday, next to short ones that start later and end sooner
    holds = [
        hold(1, MON, "08:00", "09:00", units=2),
        Hold(booking_id=2, interval=Interval(at(date(2026, 12, 6), "22:00"), at(WED, "10:00")), units=3),
        hold(3, TUE, "08:00", "09:00", units=4),
    ]
    week = availability(reading_room(), WEEK, now=EARLY, holds=holds)
    assert cell_at(week, MON, "08:00", "09:00").left == 15
    assert cell_at(week, MON, "09:00", "10:00").left == 17
    assert cell_at(week, TUE, "08:00", "09:00").left == 13
    assert cell_at(week, TUE, "21:00", "22:00").left == 17
    assert cell_at(week, WED, "09:00", "10:00").left == 17
    assert cell_at(week, WED, "10:00", "11:00").left == 20


def test_cafe_slots_listed_out_of_order_still_see_their_holds() -> None:
    rules = cafe(fixed_slots=(*hours("14:00", "14:30"), *hours("10:00", "10:30")))
    holds = [hold(1, WED, "10:00", "10:30", units=2), hold(2, WED, "14:00", "14:30", units=6)]
    (wed,) = availability(rules, [WED], now=EARLY, holds=holds)
    by_start = {c.interval.start: (c.state, c.left) for c in wed.cells}
    assert by_start == {at(WED, "10:00"): (CellState.PARTLY, 4), at(WED, "14:00"): (CellState.FULL, 0)}


# --- nearest free time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "req", "holds", "closures", "now", "expected"),
    [
        pytest.param(
            meeting_room(),
            request(WED, "10:00", "11:00"),
            [hold(1, WED, "10:00", "11:00")],
            [],
            EARLY,
            span(WED, "11:00", "12:00"),
            id="tie-09-or-11-prefers-later",
        ),
        pytest.param(
            meeting_room(),
            request(WED, "10:00", "11:00"),
            [hold(1, WED, "10:00", "11:00"), hold(2, WED, "11:00", "12:00")],
            [],
            EARLY,
            span(WED, "09:00", "10:00"),
            id="earlier-when-later-is-taken",
        ),
        pytest.param(
            meeting_room(),
            request(WED, "10:00", "11:00"),
            [hold(1, WED, "10:30", "11:00")],
            [],
            EARLY,
            span(WED, "09:30", "10:30"),
            id="half-an-hour-earlier-when-half-an-hour-later-overlaps",
        ),
        pytest.param(
            meeting_room(),
            request(WED, "20:00", "21:00"),
            [hold(1, WED, "19:00", "21:00")],
            [],
            EARLY,
            span(WED, "18:00", "19:00"),
            id="respects-closing-time",
        ),
        pytest.param(
            meeting_room(),
            request(WED, "10:00", "11:00"),
            [hold(1, WED, "10:00", "11:00")],
            [closure(5, WED, "11:00", "13:00", "培训 staff training")],
            EARLY,
            span(WED, "09:00", "10:00"),
            id="respects-closures",
        ),
        pytest.param(
            meeting_room(),
            request(WED, "10:00", "11:00"),
            [hold(1, WED, "10:00", "11:00"), hold(2, WED, "11:00", "12:00")],
            [],
            at(WED, "09:10"),
            span(WED, "12:00", "13:00"),
            id="never-suggests-the-past",
        ),
        pytest.param(
            meeting_room(),
            request(FRI, "19:00", "21:00"),
            [hold(1, FRI, "08:30", "21:00"), hold(2, THU, "08:30", "21:00")],
            [],
            EARLY,
            span(WED, "19:00", "21:00"),
            id="skips-the-weekend-and-full-days",
        ),
        pytest.param(
            reading_room(),
            request(WED, "10:00", "11:00", units=4),
            [hold(1, WED, "10:00", "11:00", units=18)],
            [],
            EARLY,
            span(WED, "11:00", "12:00"),
            id="multi-unit-needs-the-same-units",
        ),
        pytest.param(
            cafe(),
            request(WED, "10:00", "10:30", units=2),
            [hold(1, WED, "10:00", "10:30", units=6)],
            [],
            EARLY,
            span(WED, "10:30", "11:00"),
            id="cafe-next-slot",
        ),
        pytest.param(
            exhibition(),
            Request(interval=whole_days(THU, THU, TZ)),
            [Hold(booking_id=1, interval=whole_days(WED, date(2026, 12, 11), TZ))],
            [],
            EARLY,
            whole_days(date(2026, 12, 12), date(2026, 12, 12), TZ),
            id="whole-days",
        ),
    ],
)
def test_nearest_free(
    rules: SpaceRules,
    req: Request,
    holds: list[Hold],
    closures: list[ClosureSpan],
    now: datetime,
    expected: Interval,
) -> None:
    assert nearest_free(rules, req, now=now, holds=holds, closures=closures) == expected


@pytest.mark.parametrize(
    ("holds", "closures", "search"),
    [
        pytest.param([hold(1, WED, "08:30", "21:00")], [], timedelta(hours=12), id="whole-day-taken-search-half-a-day"),
        pytest.param(
            [],
            [ClosureSpan(closure_id=1, interval=whole_days(MON, SUN, TZ), reason="春节 holiday")],
            timedelta(days=2),
            id="closed-all-week",
        ),
    ],
)
def test_nearest_free_none_within_search(holds: list[Hold], closures: list[ClosureSpan], search: timedelta) -> None:
    req = request(WED, "10:00", "11:00")
    assert nearest_free(meeting_room(), req, now=EARLY, holds=holds, closures=closures, search=search) is None
