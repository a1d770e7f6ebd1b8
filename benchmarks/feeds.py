"""Feed benchmark: a personal staff feed of 1,000 events over HTTP, next to a bare Flask app.

    .venv/bin/python benchmarks/feeds.py [--events 1000] [--duration 10] [--connections 16]
                                         [--ratelimit-storage memory://]

Builds a throw-away SQLite database (schema via create_all, the seed, 1,000
confirmed bookings in the feed window for several members, one staff user with
a feed token), then for each case starts gunicorn (2 sync workers, 127.0.0.1,
a free port), checks the answer, runs `wrk` for --duration seconds at
--connections connections and stops the server:

  hello   a bare Flask app returning "hello" (the ceiling on this machine)
  cold    the staff feed with the render cache disabled: every request loads and renders 1,000 events
  cached  the same feed served from the in-process cache, 200 with the full body: without
          Accept-Encoding (456 KiB plain) and with `Accept-Encoding: gzip` (what calendar apps send)
  304     the same feed with a matching If-None-Match, plain and gzip
  Flask   cached 200 (plain) and 304 with the fast path switched off (FEED_FAST_PATH=False), for
          comparison: every request through Flask's whole pipeline

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
from datetime import UTC, datetime
from pathlib import Path

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


def _env(workdir: Path, cache_entries: int, storage: str = "memory://", fast_path: bool = True) -> dict[str, str]:
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
        "FEED_FAST_PATH": "1" if fast_path else "0",
    }


def write_app(workdir: Path) -> None:
    (workdir / "feeds_app.py").write_text(
        "import logging, os\nfrom booking import create_app\n"
        'app = create_app({"FEED_CACHE_ENTRIES": int(os.environ["FEED_CACHE_ENTRIES"]),\n'
        '                  "FEED_FAST_PATH": os.environ["FEED_FAST_PATH"] == "1"})\n'
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


def describe(load: Load) -> str:
    return f"p50 {load.p50_ms:.2f}ms" + (f", {load.errors} errors" if load.errors else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10)
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
        results: list[tuple[str, float, float | None, str]] = []

        with gunicorn("benchmarks.hello:app", cwd=ROOT) as base:
            check(get(base + "/")[2] == b"hello", "hello app answers")
            hello_load = wrk(base + "/", seconds=args.duration, connections=args.connections)
            results.append(("hello (bare Flask)", hello_load.requests_per_second, None, describe(hello_load)))
        hello = results[0][1]

        with gunicorn("feeds_app:app", env=_env(workdir, 0), cwd=workdir) as base:
            status, _, body = get(base + path)
            count = body.count(b"BEGIN:VEVENT")
            check(status == 200 and count == args.events, f"cold feed: {status}, {count} events")
            cold = wrk(base + path, seconds=args.duration, connections=args.connections)
            rps = cold.requests_per_second
            results.append((f"cold render ({count} events, {len(body) // 1024} KiB)", rps, rps * count, describe(cold)))

        gz = {"Accept-Encoding": "gzip"}
        with gunicorn("feeds_app:app", env=_env(workdir, 256, args.ratelimit_storage), cwd=workdir) as base:
            status, headers, body = get(base + path)
            check(status == 200 and headers.get("Content-Encoding") is None, f"cached feed: {status}")
            check("X-RateLimit-Limit" in headers, "the feed's rate limit is counted")
            etag = headers["ETag"]
            check(get(base + path, {"If-None-Match": etag})[0] == 304, "304 on If-None-Match")
            status, headers, packed = get(base + path, gz)
            check(status == 200 and headers.get("Content-Encoding") == "gzip", f"gzip feed: {status}")
            check(gzip.decompress(packed) == body, "the gzip body is the plain body")
            gz_etag = headers["ETag"]
            check(get(base + path, {**gz, "If-None-Match": gz_etag})[0] == 304, "304 on If-None-Match, gzip")
            size = f"{len(body) // 1024} KiB"
            for name, extra in (
                (f"cached 200 plain ({size})", {}),
                (f"cached 200 gzip ({len(packed) // 1024} KiB)", gz),
                ("304 plain (If-None-Match)", {"If-None-Match": etag}),
                ("304 gzip (If-None-Match)", {**gz, "If-None-Match": gz_etag}),
            ):
                load = wrk(base + path, seconds=args.duration, connections=args.connections, headers=extra)
                results.append((name, load.requests_per_second, None, describe(load)))

        flask_env = _env(workdir, 256, args.ratelimit_storage, fast_path=False)
        with gunicorn("feeds_app:app", env=flask_env, cwd=workdir) as base:
            check(get(base + path)[0] == 200, "cached feed through Flask")
            for name, extra in (
                (f"Flask path: cached 200 plain ({size})", {}),
                ("Flask path: 304 plain", {"If-None-Match": etag}),
            ):
                load = wrk(base + path, seconds=args.duration, connections=args.connections, headers=extra)
                results.append((name, load.requests_per_second, None, describe(load)))

        print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} CPUs · gunicorn -w 2 · SQLite")
        print(f"wrk -t2 -c{args.connections} -d{args.duration}s, 127.0.0.1")
        print(f"feed rate limit counted on every request in {args.ratelimit_storage} ({RATE_LIMIT})\n")
        print(f"{'case':<40} {'req/s':>9} {'events/s':>10} {'vs hello':>9}  target  notes")
        for name, rps, events_per_s, note in results:
            ratio = rps / hello
            if name.startswith("cold"):
                target = "PASS" if (events_per_s or 0) >= 4000 else "MISS"
            elif name.startswith(("hello", "Flask path")):
                target = "  - "  # the ceiling, and the old path shown for comparison
            else:
                target = "PASS" if ratio >= 0.5 else "MISS"
            eps = f"{events_per_s:,.0f}" if events_per_s else "-"
            print(f"{name:<40} {rps:>9,.0f} {eps:>10} {ratio:>8.0%}  {target:>6}  {note}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
