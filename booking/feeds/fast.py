"""The fast path of personal feeds: cache hits and 304s answered in front of Flask.

A calendar app polls its personal feed every few minutes for years, so nearly every
request is a cache hit or a 304. Flask's request pipeline (request context, session
open and save, every before/after_request hook, the ORM session, Response objects)
costs several times what answering such a request needs. This WSGI middleware sits
inside ProxyFix and in front of Flask, and for ``GET``/``HEAD /feeds/<token>.ics``:

1. runs the personal feed's one query (user by token hash, plus the station
   watermark) on a raw pooled DBAPI connection, with the statement compiled once;
2. computes the cache key and Last-Modified with the view's own code
   (``views.personal_head``), so both paths read the same entry — the key holds the
   database watermark, so nothing one worker knows and another does not matters;
3. on a cache hit, counts the request against the feed's rate limit in Flask-Limiter's
   own storage and bucket, and answers 200/304/HEAD with exactly the headers the Flask
   path sends (tests/feeds/test_fast_path.py holds the two paths to each other).

Everything else falls through to Flask untouched and uncounted: a miss, an unknown or
deactivated token (the same 404 as ever), a breached rate limit (Flask-Limiter answers
the 429), a request with cookies, a query string or If-Match/If-Unmodified-Since/Range
headers, an app with TRUSTED_HOSTS set, and any error. (The limit is counted only
once the fast path knows it can answer, so a client over its limit costs one indexed
query here before Flask-Limiter refuses it.) Nothing is logged here but
"the fast path failed" (never the path), so no token can reach a log.

What it reproduces of the Flask pipeline, and so what must change with it: the view's
headers (views._serve and werkzeug's make_conditional), web.security_headers (CSP,
nosniff, HSTS over https), Flask-Limiter's counting and X-RateLimit headers, and the
"Vary: Cookie" the session adds because Flask-Login reads it. A new app-wide
before_request or after_request hook is not run here: the byte-for-byte tests fail on
a new header, and a hook that must also guard feeds has to be added here too.
"""

from __future__ import annotations

import logging
import re
import time
from collections import namedtuple
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from flask_limiter.constants import HeaderNames
from limits import RateLimitItem, parse_many
from limits.strategies import FixedWindowRateLimiter
from werkzeug.http import http_date, is_resource_modified, quote_etag

from booking.auth.models import hash_token
from booking.extensions import db, limiter
from booking.feeds import views
from booking.feeds.cache import FeedCache, feed_cache_of
from booking.web import CSP

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Flask's string converter takes more; tokens are URL-safe base64 and anything else goes to Flask
_PATH = re.compile(r"/feeds/[A-Za-z0-9_-]{16,128}\.ics")
# requests whose answer needs more than "200 or 304 from the cache" are Flask's
_TO_FLASK = ("HTTP_COOKIE", "QUERY_STRING", "HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE", "HTTP_RANGE", "HTTP_IF_RANGE")
_ENDPOINT = "feeds.personal_feed"  # Flask-Limiter's bucket (scope) for the view's limit


def mount(app: Flask) -> None:
    """Put the fast path in front of Flask; call before ProxyFix wraps ``app.wsgi_app``."""
    app.wsgi_app = FeedFastPath(app, app.wsgi_app)  # type: ignore[method-assign]


class FeedFastPath:
    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._query: _HeadQuery | None = None
        self._limits: tuple[str, list[RateLimitItem]] = ("", [])
        self._date: tuple[int, str] = (0, "")
        self._window_ends: dict[str, float] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") in ("GET", "HEAD")
            and _PATH.fullmatch(environ.get("PATH_INFO", ""))
            and self.app.config.get("FEED_FAST_PATH", True)
            and not any(environ.get(name) for name in _TO_FLASK)
            and not self.app.config.get("TRUSTED_HOSTS")  # Flask checks the Host header then
        ):
            try:
                answer = self._answer(environ)
            except Exception:  # the Flask path answers (and reports) whatever went wrong here
                log.warning("feed fast path failed; the request goes through Flask", exc_info=True)
                answer = None
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                return body
        return self.wsgi_app(environ, start_response)

    def _answer(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]] | None:
        path: str = environ["PATH_INFO"]
        token = path[len("/feeds/") : -len(".ics")]
        config = self.app.config
        row = self._head_query().run(hash_token(token))
        head = views.personal_head(row, views._now(), config)
        if head is None:
            return None  # unknown or deactivated: Flask's 404
        gzip = views.accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING"))
        hit = self._cache().get(head.key + views.GZIP_KEY if gzip else head.key)
        if hit is None:
            return None  # Flask renders (or compresses) and fills the cache
        rate_headers = self._rate_limit(environ)
        if rate_headers is None:
            return None  # breached: Flask-Limiter answers 429 with its own headers

        etag = quote_etag(hit[0])
        last_modified = http_date(head.last_modified)
        none_match = environ.get("HTTP_IF_NONE_MATCH")
        if none_match is None and not environ.get("HTTP_IF_MODIFIED_SINCE"):
            not_modified = False
        elif none_match == etag:
            not_modified = True  # what clients send back; werkzeug's weak comparison agrees
        else:
            not_modified = not is_resource_modified(environ, etag, last_modified=last_modified)

        # the order and values of views._serve + make_conditional, web.security_headers,
        # Flask-Limiter's headers and the session's "Vary: Cookie" (Flask-Login reads it)
        headers: list[tuple[str, str]] = []
        if not not_modified:
            headers.append(("Content-Type", "text/calendar; charset=utf-8"))
            headers.append(("Content-Length", str(len(hit[1]))))
            if gzip:
                headers.append(("Content-Encoding", "gzip"))
        headers.append(("ETag", etag))
        if not not_modified:
            headers.append(("Last-Modified", last_modified))
        headers += [
            ("Cache-Control", views.PRIVATE_CACHE_CONTROL),
            ("Referrer-Policy", "no-referrer"),
            ("X-Robots-Tag", "noindex"),
            ("Vary", "Accept-Encoding, Cookie"),
            ("Date", self._http_now()),
            ("Content-Security-Policy", CSP),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if environ.get("wsgi.url_scheme") == "https":
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        headers += rate_headers
        if not_modified:
            return "304 NOT MODIFIED", headers, []
        return "200 OK", headers, [] if environ["REQUEST_METHOD"] == "HEAD" else [hit[1]]

    # --- the pieces, each set up once per worker ------------------------------------

    def _head_query(self) -> _HeadQuery:
        if self._query is None:
            with self.app.app_context():
                self._query = _HeadQuery(db.engine, views._user_head_stmt())
        return self._query

    def _cache(self) -> FeedCache:
        return feed_cache_of(self.app)

    def _http_now(self) -> str:
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, http_date(second))
        return self._date[1]

    def _rate_limit(self, environ: dict[str, Any]) -> list[tuple[str, str]] | None:
        """Count the request as Flask-Limiter would for the view; its headers, or None if breached.

        Same storage, same key (prefix, remote address, endpoint), same limits from
        FEED_RATE_LIMIT in the same order, so a client polling through both paths is
        counted once per request in one bucket.
        """
        config = self.app.config
        if not (limiter.enabled and config.get("RATELIMIT_ENABLED")):
            return []  # (the limiter is one object per process; the config says whether it hooked this app)
        items = self._limit_items(views.feed_limit_of(config))
        key = [environ.get("REMOTE_ADDR") or "127.0.0.1", _ENDPOINT]
        # Flask-Limiter's settings as it applies them (it keeps the first app's prefix,
        # header switch and names: one object per process), not re-read from the config
        if prefix := getattr(limiter, "_key_prefix", ""):
            key = [prefix, *key]
        strategy = limiter.limiter
        counted: list[int] = []
        for item in items:
            if type(strategy) is FixedWindowRateLimiter:
                # its hit() itself, keeping the count: the headers then need one storage
                # call less (a Redis round trip in production), and read what it wrote
                count = strategy.storage.incr(item.key_for(*key), item.get_expiry(), amount=1)
                if count > item.amount:
                    return None
                counted.append(count)
            elif not strategy.hit(item, *key):
                return None
        if not items or not getattr(limiter, "_headers_enabled", False):
            return []
        shown = items[0]
        if counted:
            reset_time = self._window_end(strategy, shown.key_for(*key), first=counted[0] == 1)
            remaining = max(0, shown.amount - counted[0])
        else:
            reset_time, remaining = strategy.get_window_stats(shown, *key)
        reset_at = int(reset_time + 1)
        names = getattr(limiter, "_header_mapping", {})
        retry_after = (
            http_date(reset_at)
            if getattr(limiter, "_retry_after", None) == "http-date"
            else str(int(reset_at - time.time()))
        )
        return [
            (names.get(HeaderNames.LIMIT, HeaderNames.LIMIT.value), str(shown.amount)),
            (names.get(HeaderNames.REMAINING, HeaderNames.REMAINING.value), str(remaining)),
            (names.get(HeaderNames.RESET, HeaderNames.RESET.value), str(reset_at)),
            (names.get(HeaderNames.RETRY_AFTER, HeaderNames.RETRY_AFTER.value), retry_after),
        ]

    def _window_end(self, strategy: FixedWindowRateLimiter, key: str, *, first: bool) -> float:
        """When the client's fixed window ends (X-RateLimit-Reset), asked of the storage once per window.

        A fixed window's expiry is set when its first hit creates it and never moves, so
        the answer holds until then: later requests in the window need no second storage
        call (a Redis round trip). A new window (this worker's first hit, or the old end
        passed) is asked again. Only this header reads it; the count decides the limit.
        """
        now = time.time()
        end = self._window_ends.get(key)
        if first or end is None or end <= now:
            end = strategy.storage.get_expiry(key)
            if len(self._window_ends) >= 4096:
                self._window_ends = {k: v for k, v in self._window_ends.items() if v > now}
            self._window_ends[key] = end
        return end

    def _limit_items(self, spec: str) -> list[RateLimitItem]:
        if self._limits[0] != spec:
            self._limits = (spec, sorted(parse_many(spec)))  # Flask-Limiter evaluates them sorted
        return self._limits[1]


class _HeadQuery:
    """``views._user_head_stmt`` compiled once for the engine's dialect, run on a raw DBAPI cursor.

    Skips the Connection's per-execution work (events, BEGIN/ROLLBACK round trips on
    SQLite, result objects) but keeps the pool (pre-ping, reset on return) and the
    column types' result processors, so the row reads exactly as the view's does.
    """

    def __init__(self, engine: Any, stmt: Any) -> None:
        self.engine = engine
        dialect = engine.dialect
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.params: dict[str, Any] = dict(compiled.construct_params({"token_hash": ""}))
        self.positions: list[str] | None = compiled.positiontup
        columns = list(stmt.selected_columns)
        self.processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self.row = namedtuple("HeadRow", [column.key for column in columns])  # type: ignore[misc]

    def run(self, token_hash: str) -> Any:
        params = {**self.params, "token_hash": token_hash}
        bound: Any = [params[name] for name in self.positions] if self.positions else params
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, bound)
                found = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool, which rolls back
        if found is None:
            return None
        return self.row(*(p(v) if p else v for p, v in zip(self.processors, found, strict=True)))
