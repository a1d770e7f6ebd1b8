"""What the space pages read from the query string."""

from __future__ import annotations

from datetime import date, timedelta

# The week page shows a few years either way; anything further is a typo or a probe.
DATE_REACH = timedelta(days=5 * 366)


def parse_week_date(raw: str | None, today: date) -> date | None:
    """`?date=YYYY-MM-DD`: the day, `today` when absent, None when it cannot be read."""
    if raw is None or raw == "":
        return today
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    if len(raw) != 10 or abs(day - today) > DATE_REACH:
        return None
    return day
