"""Feed benchmark: a personal staff feed of 1,000 events over HTTP, next to a bare Flask app.

    flock /tmp/bench.lock .venv/bin/python benchmarks/feeds.py [--events 1000] [--duration 5]
        [--rounds 3] [--connections 16] [--ratelimit-storage memory://]

Builds a throw-away SQLite database (schema via create_all, the seed, 1,000
confirmed bookings in the feed window for several members, one staff user with
a feed token), starts three gunicorn servers (2 sync workers each, 127.0.0.1, free
ports), checks each answer, then runs `wrk` for --duration seconds at --connections
connections per case, --rounds times, each case right after a run of the hello app
(other work on a shared machine drifts over minutes; each ratio compares two runs
seconds apart). Medians over the rounds are reported. The cases:

  hello   a bare Flask app returning "hello" (the ceiling on this machine)
  cold    the staff feed with the render cache disabled: every request loads and renders 1,000 events
  cached  the same feed served from the in-process cache, 200 with the full body: without
          Accept-Encoding (456 KiB plain) and with `Accept-Encoding: gzip` (what calendar apps send)
  304     the same feed with a matching If-None-Match, plain and gzip

Targets: cold >= 4,000 events/s; cached and 304 >= 50% of hello.
The feed's rate limit is on and counted on every request, as in production, in
--ratelimit-storage (default memory://, per worker; production uses redis://): only its
amount is raised (FEED_RATE_LIMIT) so that wrk is never answered 429. The set-up checks
that the X-RateLimit headers are there.
Only loopback addresses are used; every server is killed in `finally`.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.load import Load, gunicorn, wrk  # noqa: E402 - the path above must be set first

PYTHON = ROOT / ".venv" / "bin" / "python"


def build_database(workdir: Path, events: int) -> str:
    """Create the database in a child process so this one stays free of app state; returns the token."""
    script = textwrap.dedent(
        f"""
        import os, sys
        from datetime import UTC, datetime, timedelta
        from sqlalchemy import select, insert
        from booking import create_app
        from booking.extensions import db
        from booking.seed import seed
        from booking.auth.models import Organisation, User
        from booking.bookings.models import Booking
        from booking.spaces.models import Space

        app = create_app()
        with app.app_context():
            db.create_all()
            seed(db.session)
            orgs = db.session.scalars(select(Organisation).order_by(Organisation.id)).all()
            members = []
            for n in range(20):
                user = User(email=f"m{{n}}@example.com", display_name=f"成员{{n}}", role="member",
                            organisation=orgs[n % len(orgs)], password_hash="x")
                db.session.add(user)
                members.append(user)
            staff = User(email="staff@example.com", display_name="李静", role="staff",
                         organisation=orgs[0], password_hash="x")
            db.session.add(staff)
            db.session.flush()
            token = staff.new_feed_token()
            spaces = db.session.scalars(select(Space).where(Space.slug.in_(["meeting-room", "reading-room"]))).all()
            today = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
            rows = []
            for i in range({events}):
                space = spaces[i % len(spaces)]
                start = today + timedelta(days=i // 10 - 20, hours=(i % 10) // len(spaces))
                member = members[i % len(members)]
                rows.append(dict(space_id=space.id, requester_id=member.id, created_by_id=member.id,
                                 organisation_id=member.organisation_id,
                                 title=f"季度交流会, 第{{i}}场; 议程\\n讨论", start_at=start,
                                 end_at=start + timedelta(minutes=45), status="confirmed",
                                 exclusive=space.capacity == 1, revision=i % 3,
                                 created_at=today, updated_at=today - timedelta(minutes=i)))
            db.session.execute(insert(Booking), rows)
            db.session.commit()
            print(token)
        """
    )
    done = subprocess.run(
        [str(PYTHON), "-c", script],
        cwd=ROOT,
        env={**os.environ, **_env(workdir, 0)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(done.stderr)
    return done.stdout.strip().splitlines()[-1]


RATE_LIMIT = "1000000000 per minute"  # counted on every request, never reached by wrk


def _env(workdir: Path, cache_entries: int, storage: str = "memory://") -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{workdir / 'feeds.sqlite3'}",
        "INSTANCE_PATH": str(workdir / "instance"),
        "SECRET_KEY": "benchmark-only",
        "RATELIMIT_ENABLED": "1",
        "RATELIMIT_STORAGE_URI": storage,
        "FEED_RATE_LIMIT": RATE_LIMIT,
        "REDIS_URL": "",
        "PYTHONPATH": str(ROOT),
        "FEED_CACHE_ENTRIES": str(cache_entries),
    }


def write_app(workdir: Path) -> None:
    (workdir / "feeds_app.py").write_text(
        "import logging, os\nfrom booking import create_app\n"
        'app = create_app({"FEED_CACHE_ENTRIES": int(os.environ["FEED_CACHE_ENTRIES"])})\n'
        "logging.getLogger().setLevel(logging.WARNING)\n"
    )


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    if not url.startswith("http://127.0.0.1:"):
        sys.exit("loopback only")
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback http only
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:  # 304 arrives as an HTTPError
        return exc.code, dict(exc.headers), b""


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"benchmark set-up failed: {what}")


@dataclass
class Case:
    name: str
    server: str  # which of the servers below answers it
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    events: int = 0  # rendered per request (cold only)
    loads: list[Load] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # to the hello run just before, same round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--ratelimit-storage", default="memory://", help="Flask-Limiter storage URI")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("needs wrk (Debian: apt-get install -y wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="feeds-bench-"))
    try:
        token = build_database(workdir, args.events)
        write_app(workdir)
        path = f"/feeds/{token}.ics"
        storage = args.ratelimit_storage
        with ExitStack() as servers:
            base = {
                "hello": servers.enter_context(gunicorn("benchmarks.hello:app", cwd=ROOT)),
                "cold": servers.enter_context(gunicorn("feeds_app:app", env=_env(workdir, 0, storage), cwd=workdir)),
                "fast": servers.enter_context(gunicorn("feeds_app:app", env=_env(workdir, 256, storage), cwd=workdir)),
            }
            cases = check_and_plan(base, path, args.events)
            for _ in range(args.rounds):
                # hello before each case: the machine is shared, so each ratio compares two
                # runs seconds apart rather than one hello run with a case minutes later
                for case in cases:
                    hello = wrk(base["hello"] + "/", seconds=args.duration, connections=args.connections)
                    load = wrk(
                        base[case.server] + case.path,
                        seconds=args.duration,
                        connections=args.connections,
                        headers=case.headers,
                    )
                    case.loads.append(load)
                    case.ratios.append(load.requests_per_second / hello.requests_per_second)
                    hellos.append(hello)
        report(args, cases)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


hellos: list[Load] = []


def check_and_plan(base: dict[str, str], path: str, events: int) -> list[Case]:
    """Check every server answers as the case expects; the cases in the order they run."""
    check(get(base["hello"] + "/")[2] == b"hello", "hello app answers")
    status, _, body = get(base["cold"] + path)
    count = body.count(b"BEGIN:VEVENT")
    check(status == 200 and count == events, f"cold feed: {status}, {count} events")
    fast = base["fast"] + path
    status, headers, body = get(fast)
    check(status == 200 and headers.get("Content-Encoding") is None, f"cached feed: {status}")
    check("X-RateLimit-Limit" in headers, "the feed's rate limit is counted")
    etag = headers["ETag"]
    check(get(fast, {"If-None-Match": etag})[0] == 304, "304 on If-None-Match")
    gz = {"Accept-Encoding": "gzip"}
    status, headers, packed = get(fast, gz)
    check(status == 200 and headers.get("Content-Encoding") == "gzip", f"gzip feed: {status}")
    check(gzip.decompress(packed) == body, "the gzip body is the plain body")
    gz_etag = headers["ETag"]
    check(get(fast, {**gz, "If-None-Match": gz_etag})[0] == 304, "304 on If-None-Match, gzip")
    size = f"{len(body) // 1024} KiB"
    return [
        Case(f"cold render ({count} events, {size})", "cold", path, events=count),
        Case(f"cached 200 plain ({size})", "fast", path),
        Case(f"cached 200 gzip ({len(packed) // 1024} KiB)", "fast", path, gz),
        Case("304 plain (If-None-Match)", "fast", path, {"If-None-Match": etag}),
        Case("304 gzip (If-None-Match)", "fast", path, {**gz, "If-None-Match": gz_etag}),
    ]


def report(args: argparse.Namespace, cases: list[Case]) -> None:
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} CPUs · gunicorn -w 2 · SQLite")
    print(f"wrk -t2 -c{args.connections} -d{args.duration}s, 127.0.0.1; {args.rounds} rounds, each case right after a")
    print("hello run; figures are medians over the rounds, 'vs hello' the median of the per-round ratios")
    print(f"feed rate limit counted on every request in {args.ratelimit_storage} ({RATE_LIMIT})\n")
    rps = [h.requests_per_second for h in hellos]
    print(
        f"hello (bare Flask): median {median(rps):,.0f} req/s, min {min(rps):,.0f}, max {max(rps):,.0f}, "
        f"p50 {median(h.p50_ms for h in hellos):.2f}ms\n"
    )
    print(f"{'case':<40} {'req/s':>9} {'events/s':>10} {'vs hello':>9}  target  notes")
    for case in cases:
        per_second = median(load.requests_per_second for load in case.loads)
        ratio = median(case.ratios)
        events = per_second * case.events
        if case.events:
            target = "PASS" if events >= 4000 else "MISS"
        elif case.server == "flask":
            target = "  - "  # the old path, for comparison
        else:
            target = "PASS" if ratio >= 0.5 else "MISS"
        errors = sum(load.errors for load in case.loads)
        note = f"p50 {median(load.p50_ms for load in case.loads):.2f}ms" + (f", {errors} errors" if errors else "")
        note += "; rounds " + " ".join(f"{r:.0%}" for r in case.ratios)
        shown = f"{events:,.0f}" if case.events else "-"
        print(f"{case.name:<40} {per_second:>9,.0f} {shown:>10} {ratio:>8.0%}  {target:>6}  {note}")


if __name__ == "__main__":
    main()
