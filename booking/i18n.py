"""Which language and zone a page speaks: the account's, else the session's switch, else the browser's."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from flask import current_app, request, session
from flask_babel import get_locale
from flask_login import current_user


def select_locale() -> str:
    languages: list[str] = current_app.config["LANGUAGES"]
    if current_user and current_user.is_authenticated and current_user.language in languages:
        return str(current_user.language)
    chosen = session.get("language")
    if chosen in languages:
        return str(chosen)
    best = request.accept_languages.best_match(["zh", "zh-CN", "zh-Hans", "en"], default=None)
    if best and best.startswith("en"):
        return "en"
    return str(current_app.config["BABEL_DEFAULT_LOCALE"])


def select_timezone() -> str:
    return str(current_app.config["STATION_TIMEZONE"])


# -- formatting for people: always in the station's zone and the reader's locale ----------


def station_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["STATION_TIMEZONE"])


def _locale() -> str:
    return str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])


def local(value: datetime, tz: ZoneInfo | None = None) -> datetime:
    return value.astimezone(tz or station_tz())


def format_day(value: date | datetime, fmt: str = "full") -> str:
    """'2026年12月1日星期二' / 'Tuesday, December 1, 2026' (or 'medium')."""
    if isinstance(value, datetime):
        value = local(value).date()
    return _date_label(value, fmt, _locale())


# Labels of a date are pure functions of (date, pattern, locale); a week page asks for the same
# few days hundreds of times (one cell title each), so Babel formats each once per process.
@lru_cache(maxsize=4096)
def _date_label(value: date, fmt: str, locale: str) -> str:
    return babel_dates.format_date(value, format=fmt, locale=locale)


@lru_cache(maxsize=4096)
def _skeleton_label(skeleton: str, value: date, locale: str) -> str:
    return babel_dates.format_skeleton(skeleton, value, locale=locale)


def format_short_day(value: date | datetime) -> str:
    """'12月1日周二' / 'Tue, Dec 1': for grid headers and lists."""
    if isinstance(value, datetime):
        value = local(value).date()
    return _skeleton_label("MMMEd", value, _locale())


def format_clock(value: datetime) -> str:
    """'09:00' in both languages: 24-hour clocks are what a station's signs show."""
    return local(value).strftime("%H:%M")


def format_span(start: datetime, end: datetime, *, whole_days: bool = False, tz: ZoneInfo | None = None) -> str:
    """A booking's time as people say it: '12月1日周二 09:00–10:00', or whole days '12月1日–3日'."""
    zone = tz or station_tz()
    start_l, end_l = start.astimezone(zone), end.astimezone(zone)
    if whole_days:
        last = (end_l - timedelta(seconds=1)).date()
        first = start_l.date()
        if first == last:
            return format_day(first, "medium")
        return babel_dates.format_interval(first, last, "yMMMd", locale=_locale())
    day = _skeleton_label("yMMMEd", start_l.date(), _locale())
    if start_l.date() == end_l.date():
        return f"{day} {start_l:%H:%M}–{end_l:%H:%M}"
    if end_l == datetime.combine(start_l.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone):
        return f"{day} {start_l:%H:%M}–24:00"
    return f"{day} {start_l:%H:%M} – {format_short_day(end_l.date())} {end_l:%H:%M}"
