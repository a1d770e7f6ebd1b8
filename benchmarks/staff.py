"""Staff pages benchmark: the approval queue with 500 pending requests, the usage report over a year.

    .venv/bin/python benchmarks/staff.py [--db URL] [--samples 20] [--year-rows 20000]
    .venv/bin/python benchmarks/staff.py --dataset URL [--samples 5]

With `--dataset`, nothing is built: the pages are measured against an existing database,
such as the 1M-booking data of benchmarks/engine.py (sqlite:///bench-data/engine-1000000-100.sqlite3
or the `bench` PostgreSQL database), logged in as bench-staff@example.com, which is created
if missing; the year report covers 2025-12-01 to 2026-11-29. The report's cache tables are
created if missing, and recreated (they hold nothing but the cache) if their columns are not
the models'.

The year report is measured with nothing cached (the benchmark clears the cache), after one
day's figures were dropped (as a booking change does), after one space's bookable flag was
switched through the staff service (the space is bookable again at the end), and cached.

Builds a fresh database (SQLite file in a temp dir by default; pass a PostgreSQL URL to
use that, whose tables are dropped and rebuilt), bulk-loads 500 pending exhibition and
meeting-room requests plus a year of confirmed and cancelled bookings over the seeded
spaces, then renders the pages through the Flask test client as a logged-in staff
member. Prints the server-side render time (median and p95 of N) and the number of SQL
statements per request. Target: under 200 ms each with a fixed number of queries.

On PostgreSQL the tables are ANALYZEd after loading, as autovacuum would do in production.
`--no-analyze` measures the worst case of a freshly bulk-loaded table without statistics.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
# run from anywhere: put the repository root, not this folder, first on the path
sys.path[0] = str(ROOT)
os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="bench-staff-"))
os.environ.setdefault("SECRET_KEY", "benchmark-only")

from sqlalchemy import delete, event, insert, inspect, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from benchmarks.load import DATASET_STAFF, ensure_staff  # noqa: E402
from booking import create_app  # noqa: E402
from booking.auth.models import Organisation, User  # noqa: E402
from booking.bookings import services  # noqa: E402
from booking.bookings.models import Booking  # noqa: E402
from booking.db import Base  # noqa: E402
from booking.extensions import db  # noqa: E402
from booking.seed import seed  # noqa: E402
from booking.spaces.models import Space  # noqa: E402
from booking.staff.models import UsageCachePiece, UsageCacheRow, UsageCacheState  # noqa: E402
from booking.staff.services import update_space_rules  # noqa: E402

CACHE_TABLES = (UsageCacheState, UsageCacheRow, UsageCachePiece)

TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "benchmark password"  # noqa: S105 - a throwaway account in a throwaway database


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


def load(pending: int, year_rows: int, *, analyze: bool = True) -> None:
    seed(db.session)
    orgs = db.session.scalars(select(Organisation)).all()
    users = []
    for n in range(200):
        user = User(email=f"bench{n}@example.com", display_name=f"用户{n}", organisation=orgs[n % len(orgs)])
        user.password_hash = "!"  # noqa: S105 - no password: these accounts never log in
        users.append(user)
    staff = User(email="staff@bench.test", display_name="值班员", role="staff", organisation=orgs[0])
    staff.set_password(PASSWORD)
    db.session.add_all([*users, staff])
    db.session.commit()
    spaces = {s.slug: s for s in db.session.scalars(select(Space))}
    now = datetime.now(UTC)
    today = now.astimezone(TZ).date()
    rows = []
    rng = random.Random(7)

    def row(space: Space, user: User, start: datetime, end: datetime, status: str, units: int = 1) -> dict:
        return {
            "space_id": space.id,
            "requester_id": user.id,
            "created_by_id": user.id,
            "organisation_id": user.organisation_id,
            "title": "基准测试预约",
            "attendees": rng.randint(1, 10),
            "units": units,
            "start_at": start,
            "end_at": end,
            "status": status,
            "exclusive": space.capacity == 1,
            "decided_at": start - timedelta(hours=rng.choice([2, 30, 100])) if status != "pending" else None,
            "created_at": now,
            "updated_at": now,
        }

    # 500 pending: long meeting-room requests on distinct half-hour slots over the coming weeks
    meeting = spaces["meeting-room"]
    slot = 0
    while len(rows) < pending:
        day = today + timedelta(days=1 + slot // 6)
        if day.weekday() < 5:
            start = local(day, 9) + timedelta(hours=2 * (slot % 6))
            rows.append(row(meeting, rng.choice(users), start, start + timedelta(hours=2), "pending"))
        slot += 1
    # a year of history over the reading room, meeting room and cafe
    first = today - timedelta(days=365)
    reading, cafe = spaces["reading-room"], spaces["cafe"]
    per_day = max(year_rows // 365, 1)
    for offset in range(365):
        day = first + timedelta(days=offset)
        for n in range(per_day):
            status = "cancelled" if n % 10 == 0 else "confirmed"
            kind = n % 3
            if kind == 0:
                start = local(day, 9 + n % 11)
                rows.append(row(reading, rng.choice(users), start, start + timedelta(hours=1), status, units=1))
            elif kind == 1 and day.weekday() < 5:
                start = local(day, 10) + timedelta(minutes=30 * (n % 14))
                rows.append(row(cafe, rng.choice(users), start, start + timedelta(minutes=30), status))
            else:
                start = local(day, 8, 30) + timedelta(minutes=30 * (n % 24))
                rows.append(row(meeting, rng.choice(users), start, start + timedelta(minutes=30), "cancelled"))
    for chunk in range(0, len(rows), 2000):
        db.session.execute(insert(Booking), rows[chunk : chunk + 2000])
    db.session.commit()
    if db.engine.dialect.name == "postgresql" and analyze:
        # autovacuum would gather statistics within a minute of a real bulk change (it is off
        # on some test servers): without them the planner guesses a few dozen rows per table
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def measure(
    client, url: str, samples: int, counter: list[int], before: Callable[[], None] | None = None
) -> tuple[float, float, int, int]:
    """Median and p95 server time of `samples` requests, and the fewest and most queries.

    `before` runs ahead of each request (to put the cache in the state measured); without
    it a first request warms the template cache.
    """
    if before is None:
        client.get(url)
    times, queries = [], []
    for _ in range(samples):
        if before is not None:
            before()
        counter[0] = 0
        began = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - began) * 1000)
        queries.append(counter[0])
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    times.sort()
    return statistics.median(times), times[max(int(len(times) * 0.95) - 1, 0)], min(queries), max(queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--pending", type=int, default=500)
    parser.add_argument("--year-rows", type=int, default=20000)
    parser.add_argument("--dataset", default="", help="measure an existing database, loading nothing")
    parser.add_argument("--no-analyze", action="store_true", help="PostgreSQL: leave the tables without statistics")
    args = parser.parse_args()
    url = args.dataset or args.db or f"sqlite:///{tempfile.mkdtemp(prefix='bench-staff-db-')}/staff.sqlite3"
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "TESTING": True}
    )
    with app.app_context():
        email, password = "staff@bench.test", PASSWORD
        if args.dataset:
            email, password = DATASET_STAFF
            ensure_staff(url, email, password)
            # the report's cache tables (a migration in production), when the dataset predates them
            # or their columns: nothing in them but the cache, which the benchmark forgets anyway
            tables = [t.__table__ for t in CACHE_TABLES]
            existing = inspect(db.engine)
            if any(
                existing.has_table(t.name) and {c["name"] for c in existing.get_columns(t.name)} != set(t.c.keys())
                for t in tables
            ):
                Base.metadata.drop_all(db.engine, tables=tables)
            Base.metadata.create_all(db.engine, tables=tables)
            total = db.session.query(Booking).count()
            print(f"database: {db.engine.dialect.name}; existing dataset of {total} bookings")
        else:
            if not url.startswith("sqlite"):
                Base.metadata.drop_all(db.engine)
            Base.metadata.create_all(db.engine)
            began = time.perf_counter()
            load(args.pending, args.year_rows, analyze=not args.no_analyze)
            total = db.session.query(Booking).count()
            print(f"database: {db.engine.dialect.name}; {total} bookings loaded in {time.perf_counter() - began:.1f} s")
        counter = [0]

        @event.listens_for(db.engine, "before_cursor_execute")
        def count(*_args: object) -> None:
            counter[0] += 1

        client = app.test_client()
        client.post("/auth/login", data={"email": email, "password": password})
        today = datetime.now(UTC).astimezone(TZ).date()
        year = f"/staff/reports?from={today - timedelta(days=365)}&to={today - timedelta(days=1)}"
        if args.dataset:
            year = "/staff/reports?from=2025-12-01&to=2026-11-29"
        print(f"{'page':58} {'median':>8} {'p95':>8} {'queries':>8}")

        def forget_cache() -> None:
            """What a report finds on a new database: no cached day (it derives the whole year)."""
            with db.engine.begin() as conn:
                conn.execute(delete(UsageCacheState))

        def forget_one_day() -> None:
            """What a report finds after a booking changed: one day, and its week, to derive again."""
            with db.engine.begin() as conn:
                day, week = date(2026, 6, 10), date(2026, 6, 8)
                row = UsageCacheRow
                conn.execute(delete(row).where(row.day == day, row.kind.in_(["d", "s", "o"])))
                conn.execute(delete(row).where(row.day == week, row.kind.in_(["W", "S", "O"])))
                conn.execute(delete(UsageCachePiece).where(UsageCachePiece.day == day))

        # a space booked by the half hour, its bookable flag switched through the staff service
        toggled_id = db.session.scalar(
            select(Space.id).where(Space.bookable.is_(True), Space.time_mode != "whole_days").order_by(Space.id)
        )

        def switch_one_space(bookable: bool | None = None) -> None:
            """What a report finds after staff made one space (un)bookable: that space's figures to take
            out or put in (every other sample puts the space back). On a session of its own, so
            the requests' session loads what it would load."""
            with Session(db.engine) as session:
                staff_user = session.scalar(select(User).where(User.email == email))
                space = session.get(Space, toggled_id)
                if staff_user is None or space is None:
                    raise RuntimeError("no staff account, or no space booked by time")
                value = not space.bookable if bookable is None else bookable
                update_space_rules(
                    session, services.context(staff_user, now=datetime.now(UTC)), space.id, {"bookable": value}
                )
                session.commit()

        try:
            for name, page, before, samples in [
                ("report, one year, nothing cached (first view)", year, forget_cache, 1),
                ("report, one year, one day changed since last view", year, forget_one_day, args.samples),
                ("report, one year, one space's rules changed since last view", year, switch_one_space, args.samples),
            ]:
                median, p95, low, high = measure(client, page, samples, counter, before)
                report(name, median, p95, low, high)
        finally:
            switch_one_space(True)
        for name, page in [
            ("queue, 500 pending (page 1 of 10)", "/staff/queue"),
            ("queue, last page", "/staff/queue?page=10"),
            ("report, default 4 weeks", "/staff/reports"),
            ("report, one year, all spaces", year),
            ("report, one year, CSV", year + "&format=csv"),
        ]:
            report(name, *measure(client, page, args.samples, counter))


def report(name: str, median: float, p95: float, low: int, high: int) -> None:
    verdict = "PASS" if median < 200 else "MISS"
    queries = f"{low}" if low == high else f"{low}-{high}"
    print(f"{name:58} {median:6.1f}ms {p95:6.1f}ms {queries:>8}  {verdict}")


if __name__ == "__main__":
    main()
