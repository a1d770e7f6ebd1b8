"""The personal feed's fast path (booking.feeds.fast) answers exactly as the Flask view would.

Each answer is fetched twice, once with FEED_FAST_PATH off (Flask's whole pipeline:
views._serve, make_conditional, web.security_headers, Flask-Limiter, the session)
and once with it on, and the two are compared byte for byte: status, body and every
header in order, but for Date and the rate-limit figures that move with each request.
A spy on FeedFastPath._answer tells which path answered.
"""

from __future__ import annotations

import gzip
import logging
import secrets
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from flask import Flask

from booking import create_app
from booking.auth.models import User
from booking.extensions import db
from booking.feeds import fast, views
from booking.feeds.cache import feed_cache
from tests.conftest import IsolatedClient, require, shanghai

MOVING = {"Date", "Retry-After", "X-RateLimit-Remaining"}


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    monkeypatch.setattr(views, "_now", lambda: now)


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per fast-path attempt: True when it answered, False when Flask did."""
    seen: list[bool] = []
    answer = fast.FeedFastPath._answer

    def spy(self: fast.FeedFastPath, environ: dict[str, Any]) -> Any:
        result = answer(self, environ)
        seen.append(result is not None)
        return result

    monkeypatch.setattr(fast.FeedFastPath, "_answer", spy)
    return seen


def limited_app(app: Flask, **config: Any) -> Flask:
    """The same database behind an app whose feed rate limit is on, as in production."""
    other = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://",
            "FEED_RATE_LIMIT": "1000 per minute",
            "SERVER_NAME": "station.test",
            "BOOKING_HOST": "station.test",
            **config,
        }
    )
    other.test_client_class = IsolatedClient
    return other


@pytest.fixture
def limited(app: Flask) -> Iterator[Flask]:
    other = limited_app(app)
    yield other
    with other.app_context():
        db.engine.dispose()


def token_for(user: User, language: str = "zh_Hans_CN") -> str:
    user.language = language
    token = user.new_feed_token()
    db.session.commit()
    return token


def get(app: Flask, url: str, *, fast_path: bool, method: str = "GET", cookie: str = "", **kwargs: Any) -> Any:
    app.config["FEED_FAST_PATH"] = fast_path
    client = app.test_client()
    if cookie:
        client.set_cookie(*cookie.split("=", 1), domain="station.test")
    return client.open(url, method=method, **kwargs)


def comparable(response: Any) -> tuple[str, list[tuple[str, str]], bytes]:
    headers = [(name, value) for name, value in response.headers.items() if name not in MOVING]
    return response.status, headers, response.data


@pytest.fixture
def feed(app: Flask, staff: User, member: User, space: Any, book: Any) -> str:
    meeting = space("meeting-room", max_future_bookings=None)
    book(meeting, member, shanghai(2026, 12, 1, 10), title="季度交流会, 第一场; 议程")
    book(meeting, member, shanghai(2026, 12, 2, 14), title="Budget review")
    return f"/feeds/{token_for(staff)}.ics"


CASES = {  # name: (scheme, method, request headers)
    "get": ("http", "GET", {}),
    "get-gzip": ("http", "GET", {"Accept-Encoding": "gzip, deflate, br"}),
    "head": ("http", "HEAD", {}),
    "head-gzip": ("http", "HEAD", {"Accept-Encoding": "gzip"}),
    "gzip-refused": ("http", "GET", {"Accept-Encoding": "gzip;q=0, identity"}),
    "304-etag": ("http", "GET", {"If-None-Match": "{etag}"}),
    "304-etag-gzip": ("http", "GET", {"If-None-Match": "{gzip_etag}", "Accept-Encoding": "gzip"}),
    "304-etag-list": ("http", "GET", {"If-None-Match": 'W/"other", {etag}'}),
    "304-date": ("http", "GET", {"If-Modified-Since": "{modified}"}),
    "head-304": ("http", "HEAD", {"If-None-Match": "{etag}"}),
    "stale-etag": ("http", "GET", {"If-None-Match": '"0123"', "If-Modified-Since": "{modified}"}),
    "gzip-etag-without-gzip": ("http", "GET", {"If-None-Match": "{gzip_etag}"}),
    "old-date": ("http", "GET", {"If-Modified-Since": "Mon, 02 Nov 2026 00:00:00 GMT"}),
    "accept-calendar": ("http", "GET", {"Accept": "text/calendar"}),
    "https-get-gzip": ("https", "GET", {"Accept-Encoding": "gzip"}),
    "https-304": ("https", "GET", {"If-None-Match": "{etag}"}),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("rate_limited", [False, True], ids=["no-limit", "limit"])
def test_fast_path_answers_byte_for_byte_as_flask(
    request: pytest.FixtureRequest, app: Flask, feed: str, answered: list[bool], case: str, rate_limited: bool
) -> None:
    # Flask-Limiter is one object for every app of the process: only make the limited app when needed
    target = request.getfixturevalue("limited") if rate_limited else app
    scheme, method, template = CASES[case]
    base = f"{scheme}://station.test"
    plain = get(target, feed, fast_path=False, base_url=base)
    packed = get(target, feed, fast_path=False, base_url=base, headers={"Accept-Encoding": "gzip"})
    assert answered == []
    values = {
        "etag": plain.headers["ETag"],
        "gzip_etag": packed.headers["ETag"],
        "modified": plain.headers["Last-Modified"],
    }
    headers = {name: value.format(**values) for name, value in template.items()}

    through_flask = get(target, feed, fast_path=False, method=method, base_url=base, headers=headers)
    through_fast = get(target, feed, fast_path=True, method=method, base_url=base, headers=headers)

    assert answered == [True]
    assert comparable(through_fast) == comparable(through_flask)
    assert through_fast.headers["Date"]
    assert ("Strict-Transport-Security" in through_fast.headers) == (scheme == "https")
    assert through_fast.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert through_fast.headers["X-Content-Type-Options"] == "nosniff"
    assert through_fast.headers["Referrer-Policy"] == "no-referrer"
    if rate_limited:
        # each request counted once, in one bucket, whichever path answered it
        before = int(through_flask.headers["X-RateLimit-Remaining"])
        assert int(through_fast.headers["X-RateLimit-Remaining"]) == before - 1
        assert abs(int(through_fast.headers["Retry-After"]) - int(through_flask.headers["Retry-After"])) <= 1
    else:
        assert "X-RateLimit-Limit" not in through_fast.headers


def test_gzip_is_the_plain_feed_with_its_own_strong_etag(app: Flask, feed: str) -> None:
    plain = get(app, feed, fast_path=True)
    packed = get(app, feed, fast_path=True, headers={"Accept-Encoding": "gzip"})
    assert plain.headers.get("Content-Encoding") is None
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data)
    assert plain.headers["ETag"] != packed.headers["ETag"]
    assert not packed.headers["ETag"].startswith("W/")
    assert plain.headers["Vary"] == packed.headers["Vary"] == "Accept-Encoding, Cookie"
    assert plain.headers["Last-Modified"] == packed.headers["Last-Modified"]
    # a client that switched coding does not get a 304 for the other coding's bytes
    assert get(app, feed, fast_path=True, headers={"If-None-Match": packed.headers["ETag"]}).status_code == 200
    again = get(app, feed, fast_path=True, headers={"Accept-Encoding": "gzip"})
    assert again.data == packed.data  # deterministic: no timestamp in the gzip header


def test_misses_unknown_and_dead_tokens_go_through_flask(
    app: Flask, feed: str, staff: User, member: User, space: Any, book: Any, answered: list[bool], now: datetime
) -> None:
    feed_cache().clear()
    first = get(app, feed, fast_path=True)
    assert first.status_code == 200
    assert answered == [False]  # a miss: Flask rendered and filled the cache
    assert get(app, feed, fast_path=True).data == first.data
    assert answered == [False, True]
    gzip_first = get(app, feed, fast_path=True, headers={"Accept-Encoding": "gzip"})
    assert gzip_first.headers["Content-Encoding"] == "gzip"
    assert answered[-1] is False  # compressed once by Flask, then served from the cache
    get(app, feed, fast_path=True, headers={"Accept-Encoding": "gzip"})
    assert answered[-1] is True

    # a booking moves the watermark: the next request misses and shows it, on either path
    added = book(
        space("reading-room"), member, shanghai(2026, 12, 3, 10), title="新的预约", now=now + timedelta(minutes=5)
    )
    changed = get(app, feed, fast_path=True, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    assert answered[-1] is False
    assert f"booking-{added.id}@".encode() in changed.data
    assert parsedate_to_datetime(changed.headers["Last-Modified"]) > parsedate_to_datetime(
        first.headers["Last-Modified"]
    )
    assert get(app, feed, fast_path=True, headers={"If-None-Match": changed.headers["ETag"]}).status_code == 304
    assert answered[-1] is True

    answered.clear()
    old_token_url = feed
    new_url = f"/feeds/{token_for(staff)}.ics"
    assert get(app, new_url, fast_path=True).status_code == 200
    unknown = "/feeds/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.ics"
    rotated = get(app, old_token_url, fast_path=True)
    unknown_answer = get(app, unknown, fast_path=True)
    staff.active = False
    db.session.commit()
    deactivated = get(app, new_url, fast_path=True)
    for response in (rotated, unknown_answer, deactivated):
        assert response.status_code == 404
        assert response.data == unknown_answer.data
        assert comparable(response) == comparable(get(app, unknown, fast_path=False))
    assert answered[-3:] == [False, False, False]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("cookie", {"cookie": "session=abc"}),
        ("query", {"query_string": "x=1"}),
        ("if-match", {"headers": {"If-Match": "*"}}),
        ("range", {"headers": {"Range": "bytes=0-10"}}),
        ("post", {"method": "POST"}),
        ("trusted-hosts", {"config": {"TRUSTED_HOSTS": ["elsewhere.test"]}}),
    ],
)
def test_anything_unusual_goes_through_flask(
    app: Flask, feed: str, answered: list[bool], name: str, kwargs: dict[str, Any]
) -> None:
    get(app, feed, fast_path=False)  # cached
    method = kwargs.pop("method", "GET")
    app.config.update(kwargs.pop("config", {}))
    through_fast = get(app, feed, fast_path=True, method=method, **kwargs)
    through_flask = get(app, feed, fast_path=False, method=method, **kwargs)
    assert answered == []
    assert comparable(through_fast) == comparable(through_flask)


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize(
    ("storage", "strategy"),
    [
        ("memory://", "fixed-window"),
        ("memory://", "moving-window"),
        ("memory://", "sliding-window-counter"),
        ("redis://127.0.0.1:6379", "fixed-window"),
    ],
)
def test_rate_limit_counts_both_paths_in_one_bucket(
    app: Flask, feed: str, answered: list[bool], storage: str, strategy: str
) -> None:
    if storage.startswith("redis"):
        require(redis_reachable(), "Redis on 127.0.0.1:6379 (production's rate-limit storage)")
    limited = limited_app(
        app,
        RATELIMIT_STORAGE_URI=storage,
        RATELIMIT_STRATEGY=strategy,
        FEED_RATE_LIMIT="5 per minute",
    )
    # a client of its own, so a shared Redis holds no count from an earlier run
    octets = secrets.token_bytes(3)
    client = {"REMOTE_ADDR": f"10.{octets[0]}.{octets[1]}.{octets[2]}"}
    try:
        remaining: list[int] = []
        resets: list[int] = []
        for fast_path, method in ((False, "GET"), (True, "GET"), (True, "HEAD"), (False, "GET"), (True, "GET")):
            response = get(limited, feed, fast_path=fast_path, method=method, environ_base=client)
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit"] == "5"
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
            resets.append(int(response.headers["X-RateLimit-Reset"]))
        assert remaining == [4, 3, 2, 1, 0]
        # one window: the same reset time on both paths (Redis gives whole seconds of TTL)
        assert max(resets) - min(resets) <= (1 if storage.startswith("redis") else 0)
        assert answered == [True, True, True]
        for fast_path in (True, False):
            refused = get(limited, feed, fast_path=fast_path, environ_base=client)
            assert refused.status_code == 429
            assert refused.headers["X-RateLimit-Remaining"] == "0"
            assert "Retry-After" in refused.headers
        assert answered == [True, True, True, False]  # the breach is Flask-Limiter's own 429
    finally:
        with limited.app_context():
            db.engine.dispose()


def test_the_limit_is_per_client_address(limited: Flask, feed: str) -> None:
    limited.config["FEED_RATE_LIMIT"] = "1 per minute"
    first = get(limited, feed, fast_path=False, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert first.status_code == 200
    assert get(limited, feed, fast_path=True, environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 429
    assert get(limited, feed, fast_path=True, environ_base={"REMOTE_ADDR": "192.0.2.2"}).status_code == 200


def test_behind_a_proxy_the_limit_is_per_forwarded_address(app: Flask, feed: str, answered: list[bool]) -> None:
    """The fast path sits inside ProxyFix, so it counts the client nginx names, as Flask-Limiter does."""
    proxied = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://",
            "FEED_RATE_LIMIT": "2 per minute",
            "PROXY_FIX": True,
            "SERVER_NAME": "station.test",
        }
    )
    try:
        nginx = {"REMOTE_ADDR": "127.0.0.1"}
        one, other = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "198.51.100.8"}
        assert get(proxied, feed, fast_path=False, environ_base=nginx, headers=one).status_code == 200
        assert get(proxied, feed, fast_path=True, environ_base=nginx, headers=one).status_code == 200
        assert get(proxied, feed, fast_path=True, environ_base=nginx, headers=one).status_code == 429
        assert get(proxied, feed, fast_path=True, environ_base=nginx, headers=other).status_code == 200
        assert answered == [True, False, True]
    finally:
        with proxied.app_context():
            db.engine.dispose()


def test_a_failure_in_the_fast_path_falls_back_to_flask_and_logs_no_token(
    app: Flask, feed: str, answered: list[bool], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    expected = get(app, feed, fast_path=False)

    def broken(self: Any, token_hash: str) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(fast._HeadQuery, "run", broken)
    with caplog.at_level(logging.WARNING, logger="booking.feeds.fast"):
        response = get(app, feed, fast_path=True)
    assert comparable(response) == comparable(expected)
    assert answered == []  # raised inside, so Flask answered
    assert "feed fast path failed" in caplog.text
    token = feed.removeprefix("/feeds/").removesuffix(".ics")
    assert token not in caplog.text


def test_the_fast_path_reads_what_the_view_reads(app: Flask, member: User, staff: User) -> None:
    """The raw query's row, through the column types, equals the view's Core row."""
    from booking.auth.models import hash_token

    for user in (member, staff):
        token_hash = hash_token(token_for(user))
        with app.app_context():
            raw = fast._HeadQuery(db.engine, views._user_head_stmt()).run(token_hash)
        core = views._head(views._user_head_stmt(), token_hash=token_hash)
        assert tuple(raw) == tuple(core)
        assert raw._fields == tuple(core._fields)
        assert raw.active is True
        assert raw.changed_at.tzinfo is not None
    with app.app_context():
        assert fast._HeadQuery(db.engine, views._user_head_stmt()).run("0" * 64) is None


@pytest.mark.parametrize("url", ["/feeds/spaces/meeting-room.ics", "/feeds/spaces/meeting-room/freebusy.ics"])
def test_public_feeds_are_gzipped_only_when_asked(app: Flask, feed: str, url: str, answered: list[bool]) -> None:
    plain = get(app, url, fast_path=True)
    packed = get(app, url, fast_path=True, headers={"Accept-Encoding": "gzip"})
    assert answered == []  # public feeds are Flask's: the fast path only serves personal ones
    assert plain.headers.get("Content-Encoding") is None
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert plain.headers["ETag"] != packed.headers["ETag"]
    assert plain.headers["Cache-Control"] == packed.headers["Cache-Control"] == "public, no-cache"
    assert "Accept-Encoding" in packed.headers["Vary"]
    revalidated = get(
        app, url, fast_path=True, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]}
    )
    assert revalidated.status_code == 304
    assert "Content-Encoding" not in revalidated.headers
