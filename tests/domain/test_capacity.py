"""Capacity over time: the sweep counts what is held at once, not what overlaps at all."""

from __future__ import annotations

import pytest

from booking.domain.capacity import Hold, blocking_holds, peak_units, units_left

from .factories import WED, hold, span

Spec = tuple[int, str, str, int]  # booking id, start, end, units


def holds_of(specs: list[Spec]) -> list[Hold]:
    return [hold(booking_id, WED, start, end, units) for booking_id, start, end, units in specs]


@pytest.mark.parametrize(
    ("specs", "within", "peak"),
    [
        pytest.param([], ("09:00", "11:00"), 0, id="nothing-held"),
        pytest.param([(1, "09:00", "10:00", 10)], ("09:00", "11:00"), 10, id="one-hold"),
        pytest.param(
            [(1, "09:00", "10:00", 10), (2, "10:00", "11:00", 10)],
            ("09:00", "11:00"),
            10,
            id="touching-10-and-10-never-hold-20",
        ),
        pytest.param(
            [(1, "09:00", "10:30", 10), (2, "10:00", "11:00", 10)],
            ("09:00", "11:00"),
            20,
            id="overlapping-by-half-an-hour-hold-20",
        ),
        pytest.param(
            [(1, "09:00", "10:00", 8), (2, "10:00", "11:00", 6), (3, "09:45", "10:15", 4)],
            ("09:30", "10:30"),
            12,
            id="three-overlapping-0930-1030-peak-not-sum-18",
        ),
        pytest.param(
            [(1, "08:00", "10:00", 5), (2, "08:00", "09:00", 10)],
            ("09:00", "10:00"),
            5,
            id="busier-time-outside-the-window-ignored",
        ),
        pytest.param(
            [(1, "08:00", "09:00", 20)],
            ("09:00", "10:00"),
            0,
            id="hold-ending-at-window-start-ignored",
        ),
        pytest.param(
            [(1, "10:00", "11:00", 20)],
            ("09:00", "10:00"),
            0,
            id="hold-starting-at-window-end-ignored",
        ),
        pytest.param(
            [(1, "09:00", "10:00", 3), (2, "09:00", "10:00", 4), (3, "09:30", "09:45", 2)],
            ("09:00", "10:00"),
            9,
            id="stacked-same-interval",
        ),
        pytest.param(
            [(1, "06:00", "23:00", 7), (2, "10:00", "10:30", 1)],
            ("10:00", "11:00"),
            8,
            id="long-hold-started-before-window",
        ),
    ],
)
def test_peak_units(specs: list[Spec], within: tuple[str, str], peak: int) -> None:
    holds = holds_of(specs)
    assert peak_units(holds, span(WED, *within)) == peak
    # order of the input does not matter
    assert peak_units(list(reversed(holds)), span(WED, *within)) == peak


@pytest.mark.parametrize(
    ("held", "left"),
    [
        pytest.param(0, 20, id="empty"),
        pytest.param(19, 1, id="one-seat-left"),
        pytest.param(20, 0, id="exactly-capacity-none-left"),
        pytest.param(23, 0, id="over-held-never-negative"),
    ],
)
def test_units_left_at_the_boundary(held: int, left: int) -> None:
    holds = [hold(1, WED, "09:00", "10:00", held)] if held else []
    assert units_left(20, holds, span(WED, "09:00", "10:00")) == left


def test_units_left_with_touching_holds() -> None:
    holds = holds_of([(1, "09:00", "10:00", 10), (2, "10:00", "11:00", 10)])
    assert units_left(20, holds, span(WED, "09:00", "11:00")) == 10


@pytest.mark.parametrize(
    ("specs", "within", "ids"),
    [
        pytest.param(
            [(3, "10:00", "11:00", 1), (1, "09:00", "10:00", 1), (2, "09:00", "09:30", 1)],
            ("09:00", "11:00"),
            [1, 2, 3],
            id="soonest-first-ties-by-id",
        ),
        pytest.param(
            [(1, "08:00", "09:00", 1), (2, "11:00", "12:00", 1), (3, "09:30", "10:30", 1)],
            ("09:00", "11:00"),
            [3],
            id="touching-not-in-the-way",
        ),
        pytest.param([], ("09:00", "11:00"), [], id="none"),
    ],
)
def test_blocking_holds(specs: list[Spec], within: tuple[str, str], ids: list[int]) -> None:
    assert [h.booking_id for h in blocking_holds(holds_of(specs), span(WED, *within))] == ids
