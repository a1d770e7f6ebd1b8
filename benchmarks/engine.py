"""Engine benchmark: the booking rules and queries at 1M bookings, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/engine.py [--db sqlite|postgresql|both] [--rows 1000000]
                                          [--spaces 100] [--samples 300] [--explain] [--profile]

1. Builds (once; later runs reuse it) a dataset of N bookings over the spaces of one
   location: mostly exclusive rooms on a 30-minute grid open 08:00-22:00 every day, some
   20-seat spaces, a few whole-day spaces; 200 users in the member units; about three
   years of bookings around a fixed "now" (2026-12-01 10:00 Asia/Shanghai), never over
   capacity. Bulk loaded with SQLAlchemy Core executemany batches; the secondary indexes
   (and on PostgreSQL the GiST exclusion constraint) are built after the load.
2. Measures through the real service code:
   (a) request-and-confirm: `services.request_booking` on a free slot of an exclusive room
       that confirms at once, a different slot each iteration;
   (b) one week of one space as the week page computes it: load the space, `holds_in`
       over the week, `closures_in`, then `domain.availability.availability` for 7 days;
   (c) the bounded overlap query `holds_in` over one week, alone.
3. Prints p50/p95, row counts, the machine, PASS/MISS against the SQLite targets, and
   checks that the overlap query is a bounded range scan of `ix_booking_space_start`.

Bookings made by (a) are deleted afterwards, so the dataset stays as loaded.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy  # noqa: E402 - the path above must be set first
from sqlalchemy import Engine, create_engine, delete, event, func, insert, inspect, select, text  # noqa: E402
from tqdm import tqdm  # noqa: E402

from booking import create_app  # noqa: E402
from booking.auth.models import Organisation, User  # noqa: E402
from booking.bookings import services  # noqa: E402
from booking.bookings.models import EXCLUDE_OVERLAP, HOLDING, AuditEvent, Booking, OutgoingMail  # noqa: E402
from booking.domain.availability import availability  # noqa: E402
from booking.domain.intervals import Interval, local_midnight  # noqa: E402
from booking.extensions import db  # noqa: E402
from booking.seed import ORGANISATIONS  # noqa: E402
from booking.spaces.models import Closure, Location, Space  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TZ).astimezone(UTC)
PAST_DAYS = 730  # two years of history ...
FUTURE_DAYS = 365  # ... and one year ahead: about three years in all
SEED = 20261201
DATA_VERSION = "1"  # bump when the generator changes, so stale datasets are rebuilt
USERS = 200
BATCH = 10_000
WARMUP = 20
BENCH_TITLE = "benchmark request"  # bookings made by the benchmark, deleted afterwards

SQLITE_DIR = ROOT / "bench-data"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/"
PG_DATABASE = "bench"

# wall time by default; `--clock cpu` reads this process's CPU time instead (steadier while
# other work shares the machine, but blind to waiting for the disk or the database server)
CLOCK: Callable[[], float] = time.perf_counter
TARGETS = {"request": 2.0, "week": 5.0}  # ms, p50, SQLite at 1M rows

OPEN_FROM, OPEN_UNTIL = 8 * 60, 22 * 60  # minutes after local midnight
GRID = 30
CELLS = (OPEN_UNTIL - OPEN_FROM) // GRID  # 28 half-hour cells a day
ROOM_LENGTHS = (1, 2, 2, 2, 3, 4)  # in cells: 30 min to 2 h, mostly an hour
SEAT_LENGTHS = (1, 2, 2, 3, 4, 4, 6, 8)
SEAT_UNITS = (1, 1, 1, 2, 2, 3, 4)
TITLES = ("部门周例会", "客户路演彩排", "合规培训", "Quarterly review", "党小组学习", "自习", "备考 CFA", "Reading")
# station-wide closures, every year: (month, day, days)
HOLIDAYS = ((1, 1, 1), (2, 16, 3), (5, 1, 3), (10, 1, 7))


# -- the dataset ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SpaceSpec:
    slug: str
    kind: str  # room | seats | days


def space_specs(count: int) -> list[SpaceSpec]:
    days = max(1, round(count * 0.05))
    seats = max(1, round(count * 0.15))
    rooms = count - days - seats
    if rooms < 1:
        raise SystemExit("--spaces must be at least 3")
    kinds = ["room"] * rooms + ["seats"] * seats + ["days"] * days
    return [SpaceSpec(slug=f"bench-{kind}-{index:03d}", kind=kind) for index, kind in enumerate(kinds, 1)]


def space_row(spec: SpaceSpec, location_id: int, order: int) -> dict[str, Any]:
    every_day = {str(day): [["08:00", "22:00"]] for day in range(7)}
    common = {
        "location_id": location_id,
        "slug": spec.slug,
        "sort_order": order,
        "opening_hours": every_day,
        "min_notice_minutes": 0,
        "max_advance_days": 3650,  # far enough for any benchmark request
        "max_future_bookings": None,
        "changed_at": NOW,
    }
    if spec.kind == "room":
        return common | {
            "name_zh": f"会议室 {order}",
            "name_en": f"Meeting room {order}",
            "capacity": 1,
            "people_capacity": 12,
            "time_mode": "grid",
            "grid_minutes": GRID,
            "min_duration_minutes": 30,
            "max_duration_minutes": 240,
            "max_units_per_booking": 1,
            "approval": "never",
        }
    if spec.kind == "seats":
        return common | {
            "name_zh": f"书屋 {order}",
            "name_en": f"Reading room {order}",
            "capacity": 20,
            "unit_label_zh": "座",
            "unit_label_en": "seat",
            "people_capacity": 20,
            "time_mode": "grid",
            "grid_minutes": GRID,
            "min_duration_minutes": 30,
            "max_duration_minutes": 240,
            "max_units_per_booking": 4,
            "approval": "never",
        }
    return common | {
        "name_zh": f"展区 {order}",
        "name_en": f"Exhibition area {order}",
        "capacity": 1,
        "unit_label_zh": "展区",
        "unit_label_en": "area",
        "time_mode": "whole_days",
        "grid_minutes": 1440,
        "opening_hours": {str(day): [["09:00", "21:00"]] for day in range(7)},
        "min_duration_minutes": 1440,
        "max_duration_minutes": 14 * 1440,
        "max_units_per_booking": 1,
        "approval": "always",
        "titles_public": True,
    }


def all_days() -> list[date]:
    today = NOW.astimezone(TZ).date()
    return [today + timedelta(days=offset) for offset in range(-PAST_DAYS, FUTURE_DAYS)]


def holiday_days(days: list[date]) -> set[date]:
    closed = set()
    for year in {d.year for d in days}:
        for month, day, length in HOLIDAYS:
            first = date(year, month, day)
            closed.update(first + timedelta(days=k) for k in range(length))
    return closed


def day_start_utc(day: date) -> datetime:
    return local_midnight(day, TZ).astimezone(UTC)


@dataclass
class Plan:
    """Everything the generator decided before the first booking row is made."""

    days: list[date]
    holidays: set[date]
    maintenance: dict[str, date]  # one maintenance day per room, closed for that room only
    per_space: dict[str, int] = field(default_factory=dict)  # grid bookings per space


def make_plan(specs: list[SpaceSpec], rows: int, rng: random.Random) -> tuple[Plan, list[dict[str, Any]]]:
    days = all_days()
    plan = Plan(days=days, holidays=holiday_days(days), maintenance={})
    for spec in specs:
        if spec.kind == "room":
            plan.maintenance[spec.slug] = rng.choice(days)
    whole_day = whole_day_bookings(specs, plan, rng, limit=rows // 50)
    grid = [s for s in specs if s.kind in ("room", "seats")]
    weights = [1 if s.kind == "room" else 2 for s in grid]
    remaining = rows - len(whole_day)
    shares = [remaining * w / sum(weights) for w in weights]
    counts = [int(share) for share in shares]
    by_fraction = sorted(range(len(grid)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_fraction[: remaining - sum(counts)]:
        counts[i] += 1
    open_days = len(days) - len(plan.holidays & set(days)) - 1
    for spec, count in zip(grid, counts, strict=True):
        per_day = count / open_days
        if (spec.kind == "room" and per_day > 12) or per_day > 40:
            raise SystemExit(f"{rows:,} rows do not fit {len(specs)} spaces without overbooking: add --spaces")
        plan.per_space[spec.slug] = count
    return plan, whole_day


def whole_day_bookings(specs: list[SpaceSpec], plan: Plan, rng: random.Random, limit: int) -> list[dict[str, Any]]:
    """Exhibitions of 1-14 days with gaps between them, never on a station holiday."""
    made: list[dict[str, Any]] = []
    for spec in specs:
        if spec.kind != "days":
            continue
        index = rng.randint(0, 3)
        while index < len(plan.days):
            length = rng.choice((1, 2, 3, 5, 7, 10, 14))
            span = plan.days[index : index + length]
            if len(span) == length and not plan.holidays.intersection(span):
                made.append(
                    {
                        "slug": spec.slug,
                        "start": day_start_utc(span[0]),
                        "end": day_start_utc(span[-1] + timedelta(days=1)),
                        "units": 1,
                    }
                )
            index += length + rng.randint(0, 4)
    rng.shuffle(made)
    return made[:limit]


def room_day(count: int, rng: random.Random) -> Iterator[tuple[int, int, int]]:
    """`count` bookings of one exclusive room on one day, back to back or with gaps, never overlapping."""
    lengths = [rng.choice(ROOM_LENGTHS) for _ in range(count)]
    while sum(lengths) > CELLS:
        longer = [i for i, n in enumerate(lengths) if n > 1]
        lengths[rng.choice(longer)] -= 1
    gaps = [0] * (count + 1)
    for _ in range(CELLS - sum(lengths)):
        gaps[rng.randrange(count + 1)] += 1
    cursor = gaps[0]
    for index, length in enumerate(lengths):
        yield cursor, cursor + length, 1
        cursor += length + gaps[index + 1]


def seat_day(count: int, capacity: int, rng: random.Random) -> Iterator[tuple[int, int, int]]:
    """`count` bookings of a multi-seat space on one day; seats held never exceed capacity."""
    used = [0] * CELLS
    for _ in range(count):
        for _attempt in range(10):
            length, units = rng.choice(SEAT_LENGTHS), rng.choice(SEAT_UNITS)
            first = rng.randrange(CELLS - length + 1)
            if max(used[first : first + length]) + units <= capacity:
                break
        else:
            first = min(range(CELLS), key=lambda cell: used[cell])
            length, units = 1, 1
        for cell in range(first, first + length):
            used[cell] += units
        yield first, first + length, units


def booking_rows(
    specs: list[SpaceSpec],
    plan: Plan,
    whole_day: list[dict[str, Any]],
    space_ids: dict[str, int],
    users: list[tuple[int, int | None]],
    rng: random.Random,
) -> Iterator[dict[str, Any]]:
    cell_offsets = [timedelta(minutes=OPEN_FROM + GRID * k) for k in range(CELLS + 1)]

    def row(slug: str, start: datetime, end: datetime, units: int, exclusive: bool) -> dict[str, Any]:
        user_id, org_id = users[rng.randrange(len(users))]
        draw = rng.random()
        if start < NOW:
            past = ((0.90, "confirmed"), (0.97, "cancelled"), (0.99, "rejected"), (1.0, "expired"))
            status = next(name for limit, name in past if draw < limit)
        else:
            status = "confirmed" if draw < 0.92 else "pending" if draw < 0.95 else "cancelled"
        created = min(start - timedelta(days=rng.randint(1, 20)), NOW - timedelta(hours=1))
        decided = status in ("confirmed", "rejected")
        return {
            "space_id": space_ids[slug],
            "requester_id": user_id,
            "created_by_id": user_id,
            "organisation_id": org_id,
            "series_id": None,
            "title": rng.choice(TITLES),
            "attendees": units,
            "units": units,
            "start_at": start,
            "end_at": end,
            "status": status,
            "title_public": False,
            "exclusive": exclusive,
            "revision": 0 if status in ("confirmed", "pending") else 1,
            "decided_by_id": user_id if decided else None,
            "decided_at": created if decided else None,
            "decision_reason": None,
            "override_reason": None,
            "reminded_at": None,
            "created_at": created,
            "updated_at": created,
        }

    for item in whole_day:
        yield row(item["slug"], item["start"], item["end"], 1, True)
    for spec in specs:
        if spec.kind == "days":
            continue
        closed = set(plan.holidays)
        if spec.slug in plan.maintenance:
            closed.add(plan.maintenance[spec.slug])
        open_days = [d for d in plan.days if d not in closed]
        total = plan.per_space[spec.slug]
        base, extra = divmod(total, len(open_days))
        busier = set(rng.sample(range(len(open_days)), extra))
        for index, day in enumerate(open_days):
            count = base + (index in busier)
            midnight = day_start_utc(day)
            cells = room_day(count, rng) if spec.kind == "room" else seat_day(count, 20, rng)
            for first, last, units in cells:
                yield row(
                    spec.slug, midnight + cell_offsets[first], midnight + cell_offsets[last], units, spec.kind == "room"
                )


def closure_rows(
    specs: list[SpaceSpec], plan: Plan, location_id: int, space_ids: dict[str, int]
) -> list[dict[str, Any]]:
    rows = []
    for day in sorted(plan.holidays):
        rows.append(
            {
                "location_id": location_id,
                "space_id": None,
                "start_at": day_start_utc(day),
                "end_at": day_start_utc(day + timedelta(days=1)),
                "reason": "法定节假日 public holiday",
                "created_at": NOW,
            }
        )
    for spec in specs:
        if spec.slug in plan.maintenance:
            day = plan.maintenance[spec.slug]
            rows.append(
                {
                    "location_id": location_id,
                    "space_id": space_ids[spec.slug],
                    "start_at": day_start_utc(day),
                    "end_at": day_start_utc(day + timedelta(days=1)),
                    "reason": "设备维护 maintenance",
                    "created_at": NOW,
                }
            )
    return rows


# -- loading -------------------------------------------------------------------------------


def meta_key(args: argparse.Namespace) -> dict[str, str]:
    return {"version": DATA_VERSION, "rows": str(args.rows), "spaces": str(args.spaces), "seed": str(SEED)}


def read_meta(engine: Engine) -> dict[str, str]:
    if not inspect(engine).has_table("bench_meta"):
        return {}
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT key, value FROM bench_meta")).tuples().all())


def write_meta(engine: Engine, meta: dict[str, str]) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_meta (key VARCHAR(64) PRIMARY KEY, value TEXT)"))
        conn.execute(text("DELETE FROM bench_meta"))
        conn.execute(
            text("INSERT INTO bench_meta (key, value) VALUES (:key, :value)"),
            [{"key": k, "value": v} for k, v in meta.items()],
        )


def load(engine: Engine, args: argparse.Namespace) -> dict[str, float]:
    """Build the schema and bulk-load the dataset; returns the seconds each phase took."""
    phases: dict[str, float] = {}
    rng = random.Random(SEED)
    postgres = engine.dialect.name == "postgresql"
    started = time.perf_counter()
    db.create_all()
    specs = space_specs(args.spaces)
    plan, whole_day = make_plan(specs, args.rows, rng)
    password_hash = "scrypt:32768:8:1$benchmark$" + "0" * 128  # nobody logs in: no need to hash 200 times
    with engine.begin() as conn:
        location_id = conn.execute(
            insert(Location).returning(Location.id),
            {"slug": "bench", "name_zh": "基准测试站", "name_en": "Benchmark station", "timezone": "Asia/Shanghai"},
        ).scalar_one()
        conn.execute(
            insert(Organisation),
            [
                {"slug": slug, "name_zh": zh, "name_en": en, "kind": kind, "active": True}
                for slug, zh, en, kind in ORGANISATIONS
            ],
        )
        org_ids = list(conn.scalars(select(Organisation.id).order_by(Organisation.id)))
        conn.execute(
            insert(User),
            [
                {
                    "email": f"user{n:03d}@bench.example",
                    "display_name": f"用户 {n:03d}",
                    "password_hash": password_hash,
                    "organisation_id": org_ids[n % len(org_ids)],
                    "role": "member",
                    "language": "zh_Hans_CN",
                    "active": True,
                    "session_token": f"bench-session-{n:03d}",
                    "feed_token_hash": None,
                    "changed_at": NOW,
                    "created_at": NOW,
                    "is_demo": False,
                }
                for n in range(USERS)
            ],
        )
        users = [(row.id, row.organisation_id) for row in conn.execute(select(User.id, User.organisation_id))]
        for order, spec in enumerate(specs, 1):  # one by one: the kinds set different columns
            conn.execute(insert(Space), space_row(spec, location_id, order))
        space_ids = {row.slug: row.id for row in conn.execute(select(Space.slug, Space.id))}
        conn.execute(insert(Closure), closure_rows(specs, plan, location_id, space_ids))
    phases["schema + reference data"] = time.perf_counter() - started

    table = Booking.__table__
    indexes = sorted(table.indexes, key=lambda index: index.name or "")
    started = time.perf_counter()
    with engine.begin() as conn:
        if postgres:
            conn.execute(text("ALTER TABLE booking DROP CONSTRAINT IF EXISTS booking_no_overlap"))
        for index in indexes:
            index.drop(conn)
    phases["drop indexes"] = time.perf_counter() - started

    started = time.perf_counter()
    rows = booking_rows(specs, plan, whole_day, space_ids, users, rng)
    statement = insert(table)
    with tqdm(total=args.rows, unit="row", unit_scale=True, desc=f"loading {engine.dialect.name}") as bar:
        while batch := [row for _, row in zip(range(BATCH), rows, strict=False)]:
            with engine.begin() as conn:
                conn.execute(statement, batch)
            bar.update(len(batch))
    phases["insert bookings"] = time.perf_counter() - started

    started = time.perf_counter()
    with engine.begin() as conn:
        if postgres:
            conn.execute(text("SET maintenance_work_mem = '512MB'"))
        for index in tqdm(indexes, desc="indexes", unit="index"):
            index.create(conn)
    phases["create indexes"] = time.perf_counter() - started
    if postgres:
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text("SET maintenance_work_mem = '512MB'"))
            conn.execute(text(EXCLUDE_OVERLAP))
        phases["exclusion constraint (GiST)"] = time.perf_counter() - started

    started = time.perf_counter()
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    phases["analyze"] = time.perf_counter() - started
    write_meta(engine, meta_key(args) | {"load_seconds": f"{sum(phases.values()):.1f}"})
    return phases


def prepare_sqlite(args: argparse.Namespace) -> str:
    SQLITE_DIR.mkdir(exist_ok=True)
    path = SQLITE_DIR / f"engine-{args.rows}-{args.spaces}.sqlite3"
    url = f"sqlite:///{path}"
    if path.exists():
        engine = create_engine(url)
        try:
            meta = read_meta(engine)
        finally:
            engine.dispose()
        if meta and all(meta.get(k) == v for k, v in meta_key(args).items()):
            return url
        print(f"{path} is stale or incomplete: rebuilding it")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return url


def prepare_postgresql(args: argparse.Namespace) -> str:
    server = create_engine(PG_SERVER + "postgres", isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": PG_DATABASE})
            if not exists:
                conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
    except sqlalchemy.exc.OperationalError as exc:
        raise SystemExit(f"PostgreSQL is not reachable at {PG_SERVER}: {exc.orig}\n(use --db sqlite)") from exc
    finally:
        server.dispose()
    url = PG_SERVER + PG_DATABASE
    engine = create_engine(url)
    try:
        meta = read_meta(engine)
        if meta and all(meta.get(k) == v for k, v in meta_key(args).items()):
            return url
        with engine.begin() as conn:
            if inspect(conn).get_table_names():
                print(f"database {PG_DATABASE} is stale or incomplete: rebuilding it")
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return url


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Stats:
    samples: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000

    def text(self, digits: int = 2) -> str:
        return f"{self.p50:.{digits}f} / {self.p95:.{digits}f} ms"


def timed(
    label: str, prepare: Callable[[int], Any], run: Callable[[Any], None], count: int, profile: bool
) -> tuple[Stats, str]:
    """`prepare(i)` (untimed) then `run(...)` (timed); the first WARMUP iterations are discarded."""
    samples: list[float] = []
    profiler = cProfile.Profile() if profile else None
    for index in tqdm(range(WARMUP + count), desc=label, unit="it", leave=False):
        argument = prepare(index)
        measuring = index >= WARMUP
        if profiler and measuring:
            profiler.enable()
        started = CLOCK()
        run(argument)
        elapsed = CLOCK() - started
        if profiler and measuring:
            profiler.disable()
        if measuring:
            samples.append(elapsed)
    report = ""
    if profiler:
        out = io.StringIO()
        order = os.environ.get("BENCH_PROFILE_SORT", "cumulative")  # or tottime
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(30)
        report = out.getvalue()
    return Stats(samples), report


def week_days(day: date) -> list[date]:
    monday = day - timedelta(days=day.weekday())
    return [monday + timedelta(days=k) for k in range(7)]


def week_window(days: list[date]) -> Interval:
    return Interval(local_midnight(days[0], TZ), local_midnight(days[-1] + timedelta(days=1), TZ))


def week_page(slug: str, day: date, viewer_id: int) -> int:
    """What GET /spaces/<slug>?date=… computes for a grid space: one bounded query for the week."""
    session = db.session
    space = session.scalars(select(Space).where(Space.slug == slug)).one()
    rules = space.rules()
    days = week_days(day)
    window = Interval(local_midnight(days[0], rules.tz), local_midnight(days[-1] + timedelta(days=1), rules.tz))
    holds = services.holds_in(session, space.id, window)
    closures = services.closures_in(session, space, window)
    week = availability(rules, days, now=NOW, holds=holds, closures=closures, viewer_id=viewer_id)
    session.close()
    return sum(len(d.cells) for d in week)


def free_slots(rooms: list[Space], count: int, rng: random.Random) -> list[tuple[int, datetime, datetime]]:
    """Distinct free half hours or hours of exclusive rooms on future days full of bookings."""
    session = db.session
    today = NOW.astimezone(TZ).date()
    future = [today + timedelta(days=k) for k in range(1, FUTURE_DAYS - 1)]
    seen: set[tuple[int, date]] = set()
    slots: list[tuple[int, datetime, datetime]] = []
    while len(slots) < count:
        space, day = rng.choice(rooms), rng.choice(future)
        if (space.id, day) in seen:
            continue
        seen.add((space.id, day))
        opening = Interval(
            day_start_utc(day) + timedelta(minutes=OPEN_FROM), day_start_utc(day) + timedelta(minutes=OPEN_UNTIL)
        )
        if services.closures_in(session, space, opening):
            continue
        holds = services.holds_in(session, space.id, opening)
        length = timedelta(minutes=GRID * rng.choice((1, 2)))
        starts = [opening.start + timedelta(minutes=GRID * k) for k in range(CELLS)]
        free = [
            s
            for s in starts
            if s + length <= opening.end and not any(h.interval.overlaps(Interval(s, s + length)) for h in holds)
        ]
        if free:
            start = rng.choice(free)
            slots.append((space.id, start, start + length))
    session.close()
    return slots


def capture_statements(engine: Engine, action: Callable[[], Any]) -> list[tuple[str, Any]]:
    captured: list[tuple[str, Any]] = []

    def listener(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return captured


def explain(engine: Engine, statement: str, parameters: Any) -> list[str]:
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            lines = [f"{'  ' * (row[1] > 0)}{row[3]}" for row in cursor.fetchall()]
        else:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters)
            lines = [row[0] for row in cursor.fetchall()]
        cursor.close()
        conn.rollback()
    return lines


def bounded_scan(dialect: str, plan: list[str]) -> bool:
    """Does the plan read ix_booking_space_start with space_id and both start_at bounds?"""
    joined = " ".join(plan)
    if "ix_booking_space_start" not in joined:
        return False
    if dialect == "sqlite":
        return "space_id=?" in joined and "start_at>" in joined and "start_at<" in joined
    return "space_id =" in joined and "start_at >=" in joined and "start_at <" in joined


@dataclass
class Result:
    database: str
    version: str
    counts: dict[str, int]
    size: str
    load: str
    stats: dict[str, Stats]
    plan_ok: bool
    plans: list[tuple[str, list[str]]]
    profiles: dict[str, str]
    cells: int


def run_database(name: str, url: str, args: argparse.Namespace) -> Result:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RATELIMIT_ENABLED": False})
    if args.without_mail:
        services.listeners.clear()
    with app.app_context():
        engine = db.engine
        meta = read_meta(engine)
        if meta:
            load_text = f"reused (built in {float(meta.get('load_seconds', 'nan')):.0f} s)"
            print(
                f"{name}: reusing the {args.rows:,}-row dataset ({url}); built earlier in {meta.get('load_seconds')} s"
            )
        else:
            print(f"{name}: building {args.rows:,} bookings over {args.spaces} spaces ({url})")
            phases = load(engine, args)
            total = sum(phases.values())
            for phase, seconds in phases.items():
                print(f"  {phase:<30} {seconds:7.1f} s")
            print(f"  {'total':<30} {total:7.1f} s")
            load_text = f"{total:.0f} s ({phases['insert bookings']:.0f} s insert)"

        session = db.session
        counts = {
            "bookings": session.scalar(select(func.count()).select_from(Booking)) or 0,
            "holding": session.scalar(select(func.count()).select_from(Booking).where(Booking.status.in_(HOLDING)))
            or 0,
            "spaces": session.scalar(select(func.count()).select_from(Space)) or 0,
            "users": session.scalar(select(func.count()).select_from(User)) or 0,
            "closures": session.scalar(select(func.count()).select_from(Closure)) or 0,
        }
        if name == "sqlite":
            version = sqlite3.sqlite_version
            size = f"{Path(engine.url.database or '').stat().st_size / 1e6:.0f} MB"
        else:
            version = session.scalar(text("SHOW server_version")) or "?"
            size = session.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('booking'))")) or "?"
        spaces = list(session.scalars(select(Space).order_by(Space.id)))
        rooms = [s for s in spaces if s.capacity == 1 and not s.whole_days]
        grid = [(s.slug, s.capacity) for s in spaces if not s.whole_days]
        user_ids = list(session.scalars(select(User.id).order_by(User.id)))
        if session.scalar(select(Location.id).where(Location.slug == "bench")) is None:
            raise SystemExit(f"{url} holds no benchmark location: delete it and run again")
        session.close()

        refresh_outbox_table(engine)
        remove_created(engine)  # left over by an interrupted run
        rng = random.Random(SEED + 1)
        today = NOW.astimezone(TZ).date()
        total = WARMUP + args.samples
        slots = free_slots(rooms, total, rng)
        created: list[int] = []

        def prepare_request(index: int) -> tuple[User, tuple[int, datetime, datetime]]:
            user = db.session.get_one(User, user_ids[index % len(user_ids)])
            _ = user.role  # loaded like flask-login's user_loader would, before the view runs
            return user, slots[index]

        def request(argument: tuple[User, tuple[int, datetime, datetime]]) -> None:
            user, (space_id, start, end) = argument
            booking = services.request_booking(
                db.session,
                services.context(user, now=NOW),
                space_id=space_id,
                requester=user,
                start=start,
                end=end,
                title=BENCH_TITLE,
            )
            created.append(inspect(booking).identity[0])  # no refresh after the commit

        weeks = [
            (rng.choice(grid)[0], today + timedelta(days=rng.randint(-365, 364)), rng.choice(user_ids))
            for _ in range(total)
        ]
        cells: list[int] = []

        def week(argument: tuple[str, date, int]) -> None:
            cells.append(week_page(*argument))

        space_by_slug = {s.slug: s.id for s in spaces}

        def overlap(argument: tuple[str, date, int]) -> None:
            slug, day, _ = argument
            services.holds_in(db.session, space_by_slug[slug], week_window(week_days(day)))

        stats: dict[str, Stats] = {}
        profiles: dict[str, str] = {}
        try:
            stats["request"], profiles["request"] = timed(
                f"{name} request", prepare_request, request, args.samples, args.profile
            )
            confirmed = db.session.scalar(
                select(func.count()).select_from(Booking).where(Booking.id.in_(created), Booking.status == "confirmed")
            )
            db.session.close()
            if confirmed != len(created):
                raise SystemExit(f"only {confirmed} of {len(created)} benchmark requests were confirmed")
            stats["week"], profiles["week"] = timed(f"{name} week", weeks.__getitem__, week, args.samples, args.profile)
            stats["holds_in"], _ = timed(f"{name} holds_in", weeks.__getitem__, overlap, args.samples, False)
            db.session.close()

            # the plans of the real statements: the week's overlap query, then every SELECT of a request
            slug, day, _ = weeks[0]
            captured = capture_statements(
                engine, lambda: services.holds_in(db.session, space_by_slug[slug], week_window(week_days(day)))
            )
            db.session.close()
            overlap_plan = explain(engine, *captured[-1])
            plans = [("holds_in (week of one space)", overlap_plan)]
            plan_ok = bounded_scan(name, overlap_plan)
            if args.explain:
                extra_slot = free_slots(rooms, 1, random.Random(SEED + 2))[0]
                user = db.session.get(User, user_ids[0])
                captured = capture_statements(engine, lambda: request((user, extra_slot)))
                for statement, parameters in captured:
                    if statement.lstrip().upper().startswith("SELECT"):
                        plans.append((" ".join(statement.split())[:160], explain(engine, statement, parameters)))
        finally:
            db.session.remove()
            remove_created(engine)
        engine.dispose()
    return Result(
        name,
        version,
        counts,
        size,
        load_text,
        stats,
        plan_ok,
        plans,
        profiles,
        int(statistics.mean(cells)) if cells else 0,
    )


def refresh_outbox_table(engine: Engine) -> None:
    """The dataset keeps no mail: when the outbox's columns changed since it was built, rebuild that table."""
    table = OutgoingMail.__table__
    have = {c["name"] for c in inspect(engine).get_columns(table.name)}
    if have == {c.name for c in table.columns}:
        return
    with engine.begin() as conn:
        if conn.scalar(select(func.count()).select_from(table)):
            raise SystemExit(f"{engine.url}: outgoing_mail has rows and an old schema: delete the dataset")
    table.drop(engine)
    table.create(engine)


def remove_created(engine: Engine) -> None:
    """Delete what the request benchmark booked, so the next run finds the dataset as loaded."""
    made = select(Booking.id).where(Booking.title == BENCH_TITLE).scalar_subquery()
    with engine.begin() as conn:
        conn.execute(delete(OutgoingMail).where(OutgoingMail.booking_id.in_(made)))
        conn.execute(delete(AuditEvent).where(AuditEvent.booking_id.in_(made)))
        conn.execute(delete(Booking).where(Booking.title == BENCH_TITLE))


# -- reporting -----------------------------------------------------------------------------


def machine() -> list[tuple[str, str]]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "?"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        ("nproc", str(cores)),
        ("CPU", model),
        ("Python", platform.python_version()),
        ("SQLAlchemy", sqlalchemy.__version__),
        ("SQLite", sqlite3.sqlite_version),
    ]


def report(results: list[Result], args: argparse.Namespace) -> bool:
    print()
    print("machine")
    for key, value in machine():
        print(f"  {key:<12} {value}")
    for result in results:
        if result.database == "postgresql":
            print(f"  {'PostgreSQL':<12} {result.version}")
    print()
    print(
        f"dataset: {args.spaces} spaces, now = {NOW.astimezone(TZ):%Y-%m-%d %H:%M} Asia/Shanghai, "
        f"{PAST_DAYS} days back, {FUTURE_DAYS} ahead; {args.samples} samples after {WARMUP} warm-up"
    )
    header = f"{'':<34}" + "".join(f"{r.database:>24}" for r in results)
    print(header)
    rows = [
        ("bookings (holding)", lambda r: f"{r.counts['bookings']:,} ({r.counts['holding']:,})"),
        ("spaces / users / closures", lambda r: f"{r.counts['spaces']} / {r.counts['users']} / {r.counts['closures']}"),
        ("size (SQLite file / PG table)", lambda r: r.size),
        ("load", lambda r: r.load),
        ("(a) request-and-confirm p50/p95", lambda r: r.stats["request"].text()),
        ("(b) week availability p50/p95", lambda r: r.stats["week"].text()),
        ("(c) holds_in, one week p50/p95", lambda r: r.stats["holds_in"].text(3)),
        ("cells per week page", lambda r: str(r.cells)),
        ("overlap query: bounded index scan", lambda r: "yes" if r.plan_ok else "NO"),
    ]
    for label, value in rows:
        print(f"{label:<34}" + "".join(f"{value(r):>24}" for r in results))

    passed = True
    for result in results:
        if not result.plan_ok:
            passed = False
            print(f"\nMISS {result.database}: the overlap query does not range-scan ix_booking_space_start:")
            print("\n".join(f"    {line}" for line in result.plans[0][1]))
        if args.explain or not result.plan_ok:
            print(f"\n{result.database} query plans")
            for label, plan in result.plans:
                print(f"  {label}")
                print("\n".join(f"      {line}" for line in plan))
        for label, text_report in result.profiles.items():
            if text_report:
                print(f"\n{result.database} profile of {label} (cumulative)\n{text_report}")

    print(f"\ntargets (SQLite, {1_000_000:,} rows, p50)")
    sqlite_result = next((r for r in results if r.database == "sqlite"), None)
    for key, label in (("request", "request-and-confirm"), ("week", "week availability")):
        target = TARGETS[key]
        if sqlite_result is None:
            print(f"  {label:<22} <= {target:.0f} ms   not measured (no SQLite run)")
            continue
        value = sqlite_result.stats[key].p50
        verdict = "PASS" if value <= target else "MISS"
        passed = passed and verdict == "PASS"
        note = "" if args.rows >= 1_000_000 else f"  (measured at {args.rows:,} rows)"
        print(f"  {label:<22} <= {target:.0f} ms   {value:6.2f} ms   {verdict}{note}")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--spaces", type=int, default=100)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print the query plans of the overlap query and of every SELECT in a request",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the timed loops")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="time with the wall clock or this process's CPU time"
    )
    parser.add_argument(
        "--without-mail",
        action="store_true",
        help="measure the engine alone: no mail is composed and queued with each change",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 on a MISS (targets or query plan)")
    args = parser.parse_args(argv)
    if args.rows < 1000 or args.samples < 1:
        parser.error("--rows must be at least 1000 and --samples at least 1")
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = []
    for name in databases:
        url = prepare_sqlite(args) if name == "sqlite" else prepare_postgresql(args)
        results.append(run_database(name, url, args))
    passed = report(results, args)
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
