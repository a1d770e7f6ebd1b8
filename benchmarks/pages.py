"""Page benchmark: the week page under load, next to a bare Flask app, on one machine.

    .venv/bin/python benchmarks/pages.py [--seconds 10] [--connections 16]

Serves the app with gunicorn (2 sync workers, the 1M-booking SQLite dataset of
benchmarks/engine.py, built first if missing) and a bare Flask "hello" app, and loads
each with wrk on 127.0.0.1. Targets (issue 3): the week page's throughput is at least
15% of the bare app's, and its p99 latency is under 50 ms.

The two target rows are what wrk is: a visitor who is not logged in (the page is shared
and cached whole). A third row, for information, is the same page for a logged-in staff
member (bench-staff@example.com, created here when missing): their own session, the
grid from the cache and the rest of the page rendered for them.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.engine import main as build_dataset  # noqa: E402 - the path above must be set first
from benchmarks.engine import prepare_sqlite  # noqa: E402
from benchmarks.load import DATASET_STAFF as STAFF  # noqa: E402
from benchmarks.load import ensure_staff, gunicorn, wrk  # noqa: E402

WEEK_PAGES = [
    ("week page, exclusive room", "/spaces/bench-room-001?date=2026-12-01"),
    ("week page, 20-seat space", "/spaces/bench-seats-081?date=2026-12-01"),
]


def login_cookie(base: str) -> str | None:
    """A logged-in session cookie for the dataset's staff account, or None if it is missing."""
    if not base.startswith("http://127.0.0.1:"):
        sys.exit("loopback only")
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(base + "/auth/login").read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    if token is None:
        return None
    data = urllib.parse.urlencode({"email": STAFF[0], "password": STAFF[1], "csrf_token": token.group(1)})
    opener.open(base + "/auth/login", data.encode()).read()
    cookies = {cookie.name: cookie.value for cookie in jar}
    page = opener.open(base + "/bookings").geturl()
    return f"session={cookies['session']}" if "session" in cookies and "/auth/login" not in page else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    dataset = argparse.Namespace(rows=1_000_000, spaces=100)
    url = prepare_sqlite(dataset)
    if not Path(url.removeprefix("sqlite:///")).exists():
        build_dataset(["--db", "sqlite", "--samples", "1"])
    ensure_staff(url)  # the logged-in row's account

    rows = []
    with gunicorn("benchmarks.hello:app") as base:
        hello = wrk(base + "/", seconds=args.seconds, connections=args.connections)
    rows.append(("bare Flask hello", hello))
    with tempfile.TemporaryDirectory() as instance:
        env = {"DATABASE_URL": url, "INSTANCE_PATH": instance, "RATELIMIT_ENABLED": "false", "SECRET_KEY": "bench"}
        with gunicorn("wsgi:app", env=env) as base:
            for label, path in WEEK_PAGES:
                rows.append((label, wrk(base + path, seconds=args.seconds, connections=args.connections)))
            cookie = login_cookie(base)
            if cookie is None:
                sys.exit(f"could not log in as {STAFF[0]}")
            path = WEEK_PAGES[0][1]
            load = wrk(base + path, seconds=args.seconds, connections=args.connections, headers={"Cookie": cookie})
            rows.append(("(logged-in staff, same page)", load))

    print(f"\n{'':30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'of hello':>9}")
    ok = True
    for label, load in rows:
        share = load.requests_per_second / hello.requests_per_second
        print(
            f"{label:30} {load.requests_per_second:9.0f} {load.p50_ms:8.1f} {load.p99_ms:8.1f} "
            f"{load.errors:7d} {share:9.0%}"
        )
        if label.startswith("week"):
            ok &= share >= 0.15 and load.p99_ms < 50 and load.errors == 0
    print(f"\ntargets: week page >= 15% of hello, p99 < 50 ms, no errors: {'PASS' if ok else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
