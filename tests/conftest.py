"""Fixtures shared by the whole suite.

The same tests run on SQLite (default: a fresh file per test) and on PostgreSQL when
TEST_DATABASE_URL is set (schema built once, tables emptied between tests). Nothing
is mocked: concurrency tests commit through real connections.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, select, text

os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="booking-instance-"))
os.environ.setdefault("SECRET_KEY", "tests-only-secret")

import booking.models  # noqa: F401 - every table registered before the PostgreSQL schema is built
from booking import clock, create_app
from booking.auth.models import Organisation, User
from booking.bookings import services
from booking.bookings.models import Booking
from booking.db import Base
from booking.extensions import db
from booking.seed import seed
from booking.spaces.models import Location, Space

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
PASSWORD = "correct horse battery"


def pytest_report_header() -> str:
    return f"database: {TEST_DATABASE_URL or 'SQLite (a fresh file per test)'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of several processes against one server run in the PostgreSQL pass only; tests of
    SQLite's own behaviour (its query plans) in the SQLite pass only. Deselected, never skipped."""
    other = "sqlite_only" if TEST_DATABASE_URL.startswith("postgresql") else "postgresql_only"
    elsewhere = [item for item in items if item.get_closest_marker(other)]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if item not in elsewhere]


def pytest_sessionfinish() -> None:
    """Cancel the timers libraries leave behind (the limiter's in-memory storage expires its
    counters with a threading.Timer): under libfaketime, which CI uses to run the suite at other
    dates, a timed wait never ends, and the interpreter would wait for them at exit."""
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str | None]:
    """Build the PostgreSQL schema once per run; a missing server fails loudly, never skips."""
    if not TEST_DATABASE_URL:
        yield None
        return
    engine = create_engine(TEST_DATABASE_URL)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        Base.metadata.create_all(conn)
    engine.dispose()
    yield TEST_DATABASE_URL


def _empty_tables() -> None:
    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.session.commit()


@pytest.fixture
def database_url(tmp_path: Any, postgres_schema: str | None) -> str:
    return postgres_schema or f"sqlite:///{tmp_path / 'test.sqlite3'}"


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "SERVER_NAME": "station.test",
            "BOOKING_HOST": "station.test",
        }
    )
    with app.app_context():
        if database_url.startswith("sqlite"):
            db.create_all()
        else:
            _empty_tables()
        seed(db.session)
        yield app
        db.session.remove()
        db.engine.dispose()


class IsolatedClient(FlaskClient):
    """Each request starts with an empty `g`, as in production.

    The `app` fixture keeps an app context open for the whole test, and Flask reuses it
    for every request, so without this the locale (Flask-Babel) and the logged-in user
    (Flask-Login) cached on `g` by one request would leak into the next.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        g._get_current_object().__dict__.clear()
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser that prefers English, so assertions read the source text; tests of the
    Chinese default send their own Accept-Language (or none)."""
    app.test_client_class = IsolatedClient
    test_client = app.test_client()
    test_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return test_client


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # Monday 30 November 2026, 09:00 in Shanghai


@pytest.fixture(autouse=True)
def _clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """The application's one clock (`booking.clock`): stopped at `NOW` for every test that asks
    for `now`, from before the app is built and seeded, so the seed, the services, the views and
    the feeds all see the same instant; running (the real, or faked, date) for the others."""
    if "now" in request.fixturenames:
        with clock.frozen(NOW):
            yield
    else:
        clock.freeze(None)
        yield


@pytest.fixture
def now() -> datetime:
    """The fixed 'now' the application's clock is stopped at for this test."""
    return clock.now()


@pytest.fixture
def make_user(app: Flask) -> Any:
    counter = iter(range(1, 10_000))

    def make(**overrides: Any) -> User:
        n = next(counter)
        org = overrides.pop("organisation", None) or db.session.scalar(select(Organisation).order_by(Organisation.id))
        password = overrides.pop("password", PASSWORD)
        fields: dict[str, Any] = {
            "email": f"user{n}@example.com",
            "display_name": f"测试用户{n}",
            "role": "member",
            "organisation": org,
            "language": "en",  # tests read English pages unless they choose Chinese
        }
        fields.update(overrides)
        user = User(**fields)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def member(make_user: Any) -> User:
    return make_user(email="member@example.com", display_name="王小明")


@pytest.fixture
def staff(make_user: Any) -> User:
    return make_user(email="staff@example.com", display_name="李静", role="staff")


@pytest.fixture
def space(app: Flask) -> Any:
    """The seeded spaces by slug, optionally with rules overridden for a test."""

    def get(slug: str, **overrides: Any) -> Space:
        found = db.session.scalar(select(Space).where(Space.slug == slug))
        assert found is not None, slug
        for key, value in overrides.items():
            setattr(found, key, value)
        db.session.commit()
        return found

    return get


@pytest.fixture
def make_space(app: Flask) -> Any:
    counter = iter(range(1, 10_000))

    def make(**overrides: Any) -> Space:
        n = next(counter)
        location = db.session.scalar(select(Location))
        fields: dict[str, Any] = {
            "slug": f"space-{n}",
            "name_zh": f"测试空间{n}",
            "name_en": f"Test space {n}",
            "location_id": location.id,
            "capacity": 1,
            "time_mode": "grid",
            "grid_minutes": 30,
            "opening_hours": {str(d): [["08:00", "22:00"]] for d in range(7)},
            "min_duration_minutes": 30,
            "max_duration_minutes": 240,
            "max_advance_days": 60,
        }
        fields.update(overrides)
        created = Space(**fields)
        db.session.add(created)
        db.session.commit()
        return created

    return make


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def book(app: Flask, now: datetime) -> Any:
    """Request a booking through the service, as its requester, at the fixed `now`."""

    def make(space: Space, requester: User, start: datetime, end: datetime | None = None, **fields: Any) -> Booking:
        actor = fields.pop("actor", requester)
        at = fields.pop("now", now)
        fields.setdefault("title", "测试预约")
        return services.request_booking(
            db.session,
            services.context(actor, now=at),
            space_id=space.id,
            requester=requester,
            start=start,
            end=end or start + timedelta(hours=1),
            **fields,
        )

    return make


def require(condition: bool, what: str) -> None:
    """Skip when a tool this test needs is absent, with a reason; in CI, which provides it, fail."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide {what}")
    pytest.skip(f"needs {what}")
