"""Calendar feeds: a public busy feed per space, its free/busy, and the personal token feed.

Thin on purpose: one cheap query finds the feed's watermark (and the user by
token hash), the cache answers with the rendered body, and only a miss loads
bookings and renders through ``events.booking_event`` and ``ical``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from gzip import compress as gzip_compress
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import joinedload
from werkzeug.http import parse_accept_header
from werkzeug.wrappers import Response

from booking import clock
from booking.auth.models import User, hash_token
from booking.bookings.models import HOLDING, Booking
from booking.domain.rules import MAX_SPAN
from booking.extensions import db, limiter
from booking.feeds.cache import cache_key, feed_cache
from booking.feeds.events import booking_event, busy_periods
from booking.feeds.ical import CalendarMeta, feed_etag, render_calendar, render_freebusy
from booking.spaces.models import Location, Space

bp = Blueprint("feeds", __name__)
log = logging.getLogger(__name__)

CALENDAR = "text/calendar"
PRIVATE_CACHE_CONTROL = "private, no-cache"
GZIP_KEY = "|gzip"
# Cached entries are keyed by this too: bump it when the rendering changes shape.
RENDER_VERSION = 1

_MY_BOOKINGS = {"zh": "我的预约", "en": "My bookings"}
_ALL_BOOKINGS = {"zh": "全部预约", "en": "All bookings"}
_FREEBUSY = {"zh": "空闲/忙碌", "en": "Free/busy"}
_REQUESTER = {"zh": "预约人", "en": "Requested by"}
_UNIT = {"zh": "成员单位", "en": "Member unit"}
_PENDING = {"zh": "待审核", "en": "Awaiting approval"}


def _lang(locale: str) -> str:
    return "zh" if locale.startswith("zh") else "en"


def _now() -> datetime:
    return clock.now()


# --- log redaction ----------------------------------------------------------

# /feeds/<token>.ics but not /feeds/spaces/<slug>.ics; the token is URL-safe base64.
_TOKEN_PATH = re.compile(r"/feeds/(?!spaces/)[^/\s\"'?#]+\.ics")
REDACTED_PATH = "/feeds/[redacted].ics"


def redact(text: str) -> str:
    return _TOKEN_PATH.sub(REDACTED_PATH, text)


class RedactFeedTokens(logging.Filter):
    """Rewrites personal feed paths in a log record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        if "/feeds/" in message:
            redacted = redact(message)
            if redacted != message:
                record.msg, record.args = redacted, ()
        return True


def install_log_filter(logger: logging.Logger) -> None:
    if not any(isinstance(f, RedactFeedTokens) for f in logger.filters):
        logger.addFilter(RedactFeedTokens())


@bp.record_once
def _on_register(state: BlueprintSetupState) -> None:
    # werkzeug's dev-server request log ("GET /feeds/<token>.ics HTTP/1.1" 200 -)
    install_log_filter(logging.getLogger("werkzeug"))


try:  # gunicorn is a production dependency, but the app must import without it
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover
    _GunicornLogger = None  # type: ignore[assignment,misc]

if _GunicornLogger is not None:

    class RedactingGunicornLogger(_GunicornLogger):  # type: ignore[misc,valid-type]
        """``gunicorn --logger-class booking.feeds.views.RedactingGunicornLogger``.

        Redacts personal feed tokens from the access log's request line, path
        and raw URI atoms, whatever ``--access-logformat`` is used.
        """

        def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
            atoms = super().atoms(resp, req, environ, request_time)
            # request line, path, raw URI, environ and header atoms (a Referer could carry it too)
            for name, value in atoms.items():
                if isinstance(value, str) and "/feeds/" in value:
                    atoms[name] = redact(value)
            return atoms


# --- windows, watermarks, responses -----------------------------------------


@dataclass(frozen=True)
class Window:
    day: date  # the local date the window is computed from (part of the cache key)
    start: datetime
    end: datetime


def feed_window(tz: ZoneInfo) -> Window:
    """From FEED_PAST_DAYS before today to FEED_FUTURE_DAYS after, in local whole days."""
    return window_at(_now(), tz, current_app.config)


def window_at(now: datetime, tz: ZoneInfo, config: Mapping[str, Any]) -> Window:
    """`feed_window` without the app context, for the fast path (booking.feeds.fast)."""
    today = now.astimezone(tz).date()
    past = config.get("FEED_PAST_DAYS", 30)
    future = config.get("FEED_FUTURE_DAYS", 365)
    first, last = today - timedelta(days=past), today + timedelta(days=future)
    start = datetime(first.year, first.month, first.day, tzinfo=tz).astimezone(UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=tz).astimezone(UTC)
    return Window(today, start, end)


def _last_modified(watermark: datetime, window: Window, tz: ZoneInfo, now: datetime) -> datetime:
    """The watermark, or the local midnight the window moved at, whichever is later, as an HTTP date.

    The window slides daily without a booking change, so date-only clients (Apple) must see
    Last-Modified move then too. HTTP dates have whole seconds: the moment is written as the
    second boundary *after* it, so any later change (made at or after that boundary) reads as
    newer, but never later than now (the response's Date, RFC 9110 §8.8.2.1). While the change's
    own second is still running that is now, which the next poll after it passes corrects.
    """
    midnight = datetime(window.day.year, window.day.month, window.day.day, tzinfo=tz).astimezone(UTC)
    moment = max(watermark, midnight)
    after = datetime.fromtimestamp(math.floor(moment.timestamp()) + 1, UTC)
    return min(after, now.replace(microsecond=0))


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether the client negotiated gzip (calendar apps and browsers do; only then is it sent)."""
    if not accept_encoding:
        return False
    return _accepts_gzip(accept_encoding)


@functools.lru_cache(maxsize=64)
def _accepts_gzip(accept_encoding: str) -> bool:
    # clients send a handful of distinct values: parse each once (werkzeug's rules, q=0 included)
    return parse_accept_header(accept_encoding)["gzip"] > 0


def cached_entry(key: str, render: Callable[[], bytes], *, gzip: bool) -> tuple[str, bytes]:
    """(etag, body) of the feed under `key`, rendered on a miss; the gzip representation if asked.

    The gzip body is a pure function of the plain one (fixed level, no timestamp), cached
    under its own key with its own strong ETag (the hash of the bytes sent): a strong
    validator must differ between content codings.
    """
    cache = feed_cache()
    if gzip:
        hit = cache.get(key + GZIP_KEY)
        if hit is not None:
            return hit
    plain = cache.get(key)
    if plain is None:
        body = render()
        plain = (feed_etag(body), body)
        cache.set(key, *plain)
    if not gzip:
        return plain
    packed = compress(plain[1])
    entry = (feed_etag(packed), packed)
    cache.set(key + GZIP_KEY, *entry)
    return entry


def compress(body: bytes) -> bytes:
    """Deterministic gzip: level 6 (a 456 KiB feed packs to ~22 KB in ~4 ms), mtime 0."""
    return gzip_compress(body, compresslevel=6, mtime=0)


def _serve(key: str, render: Callable[[], bytes], last_modified: datetime, *, private: bool) -> Response:
    """Cached body → Response with strong ETag, Last-Modified and conditional 304."""
    gzip = accepts_gzip(request.headers.get("Accept-Encoding"))
    etag, body = cached_entry(key, render, gzip=gzip)
    response = Response(body, mimetype=CALENDAR)
    if gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.set_etag(etag)
    response.last_modified = last_modified
    if private:
        # a secret URL: never in shared caches, never in a Referer, never indexed
        response.headers["Cache-Control"] = PRIVATE_CACHE_CONTROL
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Robots-Tag"] = "noindex"
    else:
        response.headers["Cache-Control"] = "public, no-cache"
    response.vary.add("Accept-Encoding")
    if last_modified >= _now().replace(microsecond=0) and "If-None-Match" not in request.headers:
        # the change's second may still be running: a second change in it would carry the same
        # Last-Modified, so If-Modified-Since alone cannot tell it apart; only the ETag can
        return response
    return response.make_conditional(request)


def _holding_in(window: Window) -> list[Any]:
    return [
        Booking.status.in_(HOLDING),
        Booking.start_at < window.end,
        Booking.end_at > window.start,
        # no booking is longer than MAX_SPAN: keeps the index scan bounded below
        Booking.start_at >= window.start - MAX_SPAN,
    ]


def _digest(*parts: object) -> str:
    """Stable across processes (unlike hash()), so every worker and host shares keys."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _config() -> tuple[str, str, str]:
    cfg = current_app.config
    return cfg["BOOKING_HOST"], cfg["PUBLIC_URL"], cfg.get("BABEL_DEFAULT_LOCALE", "zh_Hans_CN")


# --- public space feeds ------------------------------------------------------


@functools.cache
def _space_head_stmt() -> Any:
    """Built once: a prepared Core statement skips the ORM and statement building on every poll."""
    space, location = Space.__table__.c, Location.__table__.c
    return (
        select(
            space.id,
            space.version,
            space.changed_at,
            space.capacity,
            space.name_zh,
            space.name_en,
            space.color,
            location.name_zh.label("location_zh"),
            location.name_en.label("location_en"),
            location.timezone,
        )
        .join_from(Space.__table__, Location.__table__, space.location_id == location.id)
        .where(space.slug == bindparam("slug"))
    )


@functools.cache
def _user_head_stmt() -> Any:
    user, space = User.__table__.c, Space.__table__.c
    # the staff feed shows every space's bookings: its watermark is the sum of the spaces' versions
    # (each only goes up, so the sum does) and their latest change
    station_version = select(func.coalesce(func.sum(space.version), 0)).scalar_subquery()
    station_changed = select(func.max(space.changed_at)).scalar_subquery()
    return (
        select(
            user.id,
            user.role,
            user.active,
            user.language,
            user.version,
            user.changed_at,
            station_version.label("station_version"),
            station_changed.label("station"),
        )
        .where(user.feed_token_hash == bindparam("token_hash"))
        .limit(1)
    )


def _head(stmt: Any, **params: Any) -> Any:
    """The one query of a cached request, on a plain connection (no ORM session)."""
    with db.engine.connect() as conn:
        return conn.execute(stmt, params).one_or_none()


def _space_head(slug: str) -> Any:
    """Watermark plus what the calendar header shows."""
    row = _head(_space_head_stmt(), slug=slug)
    if row is None:
        abort(404)
    return row


def _space_meta(row: Any, locale: str, *, freebusy: bool = False) -> CalendarMeta:
    zh = _lang(locale) == "zh"
    name = f"{row.name_zh if zh else row.name_en} · {row.location_zh if zh else row.location_en}"
    if freebusy:
        name = f"{name} · {_FREEBUSY[_lang(locale)]}"
    return CalendarMeta(name=name, tzid=row.timezone, color=row.color)


@bp.get("/feeds/spaces/<slug>.ics")
def space_feed(slug: str) -> Response:
    """Busy blocks of one space; titles only where the booking is marked public."""
    host, public_url, locale = _config()
    row = _space_head(slug)
    tz = ZoneInfo(row.timezone)
    window = feed_window(tz)
    header = (row.name_zh, row.name_en, row.color, row.location_zh, row.location_en, row.timezone)
    key = cache_key("space", RENDER_VERSION, row.id, row.version, window.day, locale, _digest(*header))

    def render() -> bytes:
        db.session.get(Space, row.id, options=[joinedload(Space.location)])  # once, for every booking.space
        bookings = db.session.scalars(
            select(Booking)
            .where(Booking.space_id == row.id, *_holding_in(window))
            .order_by(Booking.start_at, Booking.id)
        )
        events = [booking_event(b, host=host, public_url=public_url, locale=locale, detail=False) for b in bookings]
        return render_calendar(_space_meta(row, locale), events)

    return _serve(key, render, _last_modified(row.changed_at, window, tz, _now()), private=False)


@bp.get("/feeds/spaces/<slug>/freebusy.ics")
def space_freebusy(slug: str) -> Response:
    """VFREEBUSY: busy when no unit is left (any booking for an exclusive space)."""
    host, _public_url, locale = _config()
    row = _space_head(slug)
    tz = ZoneInfo(row.timezone)
    window = feed_window(tz)
    header = (row.name_zh, row.name_en, row.location_zh, row.location_en, row.capacity)
    key = cache_key("freebusy", RENDER_VERSION, row.id, row.version, window.day, locale, _digest(*header))

    def render() -> bytes:
        holds = db.session.execute(
            select(Booking.start_at, Booking.end_at, Booking.units).where(
                Booking.space_id == row.id, *_holding_in(window)
            )
        ).all()
        busy = busy_periods(((h.start_at, h.end_at, h.units) for h in holds), row.capacity)
        return render_freebusy(
            _space_meta(row, locale, freebusy=True),
            uid=f"freebusy-space-{row.id}@{host}",
            stamp=row.changed_at,
            start=window.start,
            end=window.end,
            busy=busy,
        )

    return _serve(key, render, _last_modified(row.changed_at, window, tz, _now()), private=False)


# --- personal feeds ------------------------------------------------------------


def _feed_limit() -> str:
    return feed_limit_of(current_app.config)


def feed_limit_of(config: Mapping[str, Any]) -> str:
    return str(config.get("FEED_RATE_LIMIT", "60 per minute"))


@bp.get("/feeds/<token>.ics")
@limiter.limit(_feed_limit)
def personal_feed(token: str) -> Response:
    """The user's own pending and confirmed bookings; for staff, every booking of the station.

    An unknown token and a deactivated account get the same 404.
    """
    host, public_url, _default_locale = _config()
    row = _head(_user_head_stmt(), token_hash=hash_token(token))
    head = personal_head(row, _now(), current_app.config)
    if head is None:
        abort(404)
    staff, locale, window, tz = head.staff, head.locale, head.window, head.tz

    def render() -> bytes:
        return _render_personal(row.id, staff=staff, locale=locale, window=window, tz=tz, host=host, url=public_url)

    return _serve(head.key, render, head.last_modified, private=True)


@dataclass(frozen=True)
class PersonalHead:
    """What a personal feed request knows after its one query: enough to answer from the cache."""

    staff: bool
    locale: str
    window: Window
    tz: ZoneInfo
    key: str
    last_modified: datetime


def personal_head(row: Any, now: datetime, config: Mapping[str, Any]) -> PersonalHead | None:
    """The cache key and Last-Modified of a personal feed; None (404) for unknown or deactivated."""
    if row is None or not row.active:
        return None
    staff = row.role in ("staff", "admin")
    locale = row.language
    watermark, version = row.changed_at, str(row.version)
    if staff and row.station is not None:
        watermark, version = max(watermark, row.station), f"{version}+{row.station_version}"
    tz = ZoneInfo(config.get("STATION_TIMEZONE", "Asia/Shanghai"))
    window = window_at(now, tz, config)
    key = cache_key("user", RENDER_VERSION, row.id, "staff" if staff else "member", version, window.day, locale)
    return PersonalHead(staff, locale, window, tz, key, _last_modified(watermark, window, tz, now))


def _render_personal(
    user_id: int, *, staff: bool, locale: str, window: Window, tz: ZoneInfo, host: str, url: str
) -> bytes:
    lang = _lang(locale)
    # spaces and locations once, so each booking's .space comes from the identity map
    db.session.scalars(select(Space).options(joinedload(Space.location))).all()
    query = select(Booking).where(*_holding_in(window)).order_by(Booking.start_at, Booking.id)
    if staff:
        query = query.options(joinedload(Booking.requester), joinedload(Booking.organisation))
    else:
        query = query.where(Booking.requester_id == user_id)
    events = []
    for booking in db.session.scalars(query):
        description = None
        if staff:
            lines = [f"{_REQUESTER[lang]}: {booking.requester.display_name}"]
            if booking.organisation is not None:
                lines.append(f"{_UNIT[lang]}: {booking.organisation.name(locale)}")
            if booking.status == "pending":
                lines.append(_PENDING[lang])
            description = "\n".join(lines)
        elif booking.status == "pending":
            description = _PENDING[lang]
        events.append(booking_event(booking, host=host, public_url=url, locale=locale, description=description))
    station = db.session.scalar(select(Location).order_by(Location.id).limit(1))
    station_name = station.name(locale) if station is not None else ""
    title = (_ALL_BOOKINGS if staff else _MY_BOOKINGS)[lang]
    meta = CalendarMeta(name=f"{title} · {station_name}" if station_name else title, tzid=tz.key)
    return render_calendar(meta, events)


# --- token rotation and links --------------------------------------------------


def feed_url(token: str) -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + url_for("feeds.personal_feed", token=token)


def subscribe_links(url: str) -> dict[str, str]:
    """The plain URL (copy), webcal:// (Apple, Outlook desktop) and Google's add-by-URL link."""
    webcal = re.sub(r"^https?://", "webcal://", url)
    return {
        "https": url,
        "webcal": webcal,
        "google": "https://calendar.google.com/calendar/r?cid=" + quote(webcal, safe=""),
    }


def space_feed_links() -> list[dict[str, str]]:
    """Public feed links of every bookable space, for the account page."""
    from flask_babel import get_locale

    locale = str(get_locale() or current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_Hans_CN"))
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    spaces = db.session.scalars(select(Space).where(Space.bookable.is_(True)).order_by(Space.sort_order, Space.id))
    links = []
    for space in spaces:
        url = base + url_for("feeds.space_feed", slug=space.slug)
        links.append({"name": space.name(locale), **subscribe_links(url)})
    return links


@bp.app_context_processor
def _feed_helpers() -> dict[str, Any]:
    # functions, so pages that do not show feeds pay nothing
    return {
        "feed_subscribe_links": subscribe_links,
        "space_feed_links": space_feed_links,
        "feed_url": feed_url,
        "personal_feed_token": personal_feed_token,
    }


@bp.post("/account/feed-token")
@login_required
def rotate_token() -> Response:
    """Create or replace the personal feed token; an old URL answers 404 from now on.

    Post, redirect, get: a refresh of the account page shows the URL again and never
    replaces it (the token is derived from the app's secret; only its hash is stored).
    """
    had_token = current_user.feed_token_hash is not None
    current_user.new_feed_token(current_app.config["SECRET_KEY"])
    db.session.commit()
    log.info("feed token %s for user %s", "replaced" if had_token else "created", current_user.id)
    flash(
        _("Your old calendar URL no longer works. Subscribe again with the new one.")
        if had_token
        else _("Your calendar URL is ready."),
        "success",
    )
    return redirect(url_for("auth.account", _anchor="calendar-feed"), 303)


def personal_feed_token() -> str | None:
    """The signed-in user's current feed token, for the account page (None: none to show)."""
    if not current_user.is_authenticated:
        return None
    token: str | None = current_user.feed_token(current_app.config["SECRET_KEY"])
    return token
