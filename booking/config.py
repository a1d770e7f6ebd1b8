"""Configuration: defaults here, overridden by environment variables (see README)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key(instance_path: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in instance/.

    A key generated per process would log everyone out on restart and break sessions
    between gunicorn workers, so it must be stored.
    """
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def load_config(instance_path: Path) -> dict[str, Any]:
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'booking.sqlite3'}"
    https = _env_bool("HTTPS", False)
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # host part of iCalendar UIDs (booking-<id>@<host>): never change it once feeds are out
        "BOOKING_HOST": os.environ.get("BOOKING_HOST", "station.local"),
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000"),
        "STATION_TIMEZONE": os.environ.get("STATION_TIMEZONE", "Asia/Shanghai"),
        "BABEL_DEFAULT_LOCALE": os.environ.get("DEFAULT_LOCALE", "zh_Hans_CN"),
        "BABEL_DEFAULT_TIMEZONE": os.environ.get("STATION_TIMEZONE", "Asia/Shanghai"),
        "LANGUAGES": ["zh_Hans_CN", "en"],
        # mail: to the log unless MAIL_SERVER is set
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": _env_int("MAIL_PORT", 25),
        "MAIL_USE_TLS": _env_bool("MAIL_USE_TLS", False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD", ""),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "station@station.local"),
        "MAIL_TIMEOUT": _env_int("MAIL_TIMEOUT", 10),
        # Flask-Limiter: memory:// is per process; use redis:// with several workers
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_ENABLED": _env_bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "FEED_PAST_DAYS": _env_int("FEED_PAST_DAYS", 30),
        "FEED_FUTURE_DAYS": _env_int("FEED_FUTURE_DAYS", 365),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "FEED_RATE_LIMIT": os.environ.get("FEED_RATE_LIMIT", "60 per minute"),
        # cookies: HttpOnly and SameSite everywhere, Secure when served over HTTPS
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_DURATION": timedelta(days=_env_int("REMEMBER_DAYS", 14)),
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        "WTF_CSRF_TIME_LIMIT": 8 * 3600,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "PROXY_FIX": _env_bool("PROXY_FIX", False),
    }
