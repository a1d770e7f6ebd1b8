"""Rendered feed bodies, cached so a calendar app polling every few minutes costs one query.

Correctness never depends on this cache being shared or fresh, because every
key contains the *database watermark* of the feed (``Space.changed_at`` or
``User.changed_at``, moved in the same transaction as any booking change,
deletions included), the local date the feed window starts from, and the
locale.  A worker or host that has not heard of a change still reads the new
watermark from the database, misses, and renders afresh; a stale entry is
simply never asked for again and ages out.

So two backends are acceptable:

* Redis, when ``REDIS_URL`` is configured: shared by every gunicorn worker and
  host, so a feed is rendered once per change for the whole deployment.
* Otherwise a small in-process LRU per worker: each worker renders each feed
  once per change, which is only extra CPU, never a stale body.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from typing import Any, Protocol

from flask import Flask, current_app

log = logging.getLogger(__name__)

# Entries are (etag, body). Bodies are kept for a day at most in Redis: the
# window-day part of the key changes at local midnight anyway.
REDIS_TTL_SECONDS = 26 * 3600
_EXTENSION_KEY = "feed_cache"


class FeedCache(Protocol):
    def get(self, key: str) -> tuple[str, bytes] | None: ...

    def set(self, key: str, etag: str, body: bytes) -> None: ...

    def clear(self) -> None: ...


class LocalCache:
    """Thread-safe LRU bounded by entry count and total body size."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[str, bytes] | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is not None:
                self._data.move_to_end(key)
            return entry

    def set(self, key: str, etag: str, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= len(old[1])
            self._data[key] = (etag, body)
            self._size += len(body)
            while self._data and (len(self._data) > self.max_entries or self._size > self.max_bytes):
                _, (_, dropped) = self._data.popitem(last=False)
                self._size -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0


class RedisCache:
    """Shared across workers and hosts; a Redis outage degrades to rendering, never to an error."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis  # only needed when configured

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._prefix = prefix

    def get(self, key: str) -> tuple[str, bytes] | None:
        try:
            raw = self._redis.get(self._prefix + key)
        except Exception:
            log.warning("feed cache: Redis unavailable, rendering", exc_info=True)
            return None
        if not raw or b"\n" not in raw:
            return None
        etag, _, body = raw.partition(b"\n")
        return etag.decode("ascii"), body

    def set(self, key: str, etag: str, body: bytes) -> None:
        try:
            self._redis.set(self._prefix + key, etag.encode("ascii") + b"\n" + body, ex=REDIS_TTL_SECONDS)
        except Exception:
            log.warning("feed cache: could not store in Redis", exc_info=True)

    def clear(self) -> None:
        try:
            for name in self._redis.scan_iter(match=self._prefix + "*"):
                self._redis.delete(name)
        except Exception:
            log.warning("feed cache: could not clear Redis", exc_info=True)


def init_cache(app: Flask) -> FeedCache:
    url = app.config.get("REDIS_URL") or ""
    cache: FeedCache
    if url:
        # the prefix keeps two deployments sharing one Redis apart (different UID hosts, URLs)
        scope = f"{app.config.get('BOOKING_HOST')}|{app.config.get('PUBLIC_URL')}"
        prefix = "feeds:" + hashlib.sha256(scope.encode()).hexdigest()[:12] + ":"
        cache = RedisCache(url, prefix)
    else:
        cache = LocalCache(max_entries=app.config.get("FEED_CACHE_ENTRIES", 256))
    app.extensions[_EXTENSION_KEY] = cache
    return cache


def feed_cache() -> FeedCache:
    return feed_cache_of(current_app._get_current_object())  # type: ignore[attr-defined]


def feed_cache_of(app: Flask) -> FeedCache:
    cache = app.extensions.get(_EXTENSION_KEY)
    if cache is None:
        cache = init_cache(app)
    return cache


def cache_key(*parts: object) -> str:
    """A flat string key; parts are ids, ISO timestamps, dates and locale names (no separators inside)."""
    return "|".join(str(part) for part in parts)
