"""The one clock: every service context, view, form, feed and command asks it for "now".

Nothing else in the package reads the system clock, so a test (or a demo) can freeze
the whole application at one instant with `frozen(at)`, and the suite behaves the same
on any date it runs on. It is process-local on purpose: freezing is for tests only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, tzinfo

_frozen: datetime | None = None


def now() -> datetime:
    """The current instant, aware, in UTC."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def today(tz: tzinfo) -> date:
    """The local date in `tz` now (the station's day, not the server's)."""
    return now().astimezone(tz).date()


def freeze(at: datetime | None) -> None:
    """Stop the clock at `at` (aware), or let it run again with None."""
    global _frozen
    if at is not None and (at.tzinfo is None or at.utcoffset() is None):
        raise ValueError("freeze the clock at an aware datetime")
    _frozen = at.astimezone(UTC) if at is not None else None


@contextmanager
def frozen(at: datetime) -> Iterator[datetime]:
    """Run a block with the clock stopped at `at`; the previous setting comes back after."""
    before = _frozen
    freeze(at)
    try:
        yield now()
    finally:
        freeze(before)
