"""Load-test harness: gunicorn on loopback, wrk against it, figures parsed from wrk's output.

Every run is bounded (wrk's duration) and every server is stopped in a `finally`.
Only 127.0.0.1 is ever a target.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(app: str, *, workers: int = 2, env: dict[str, str] | None = None, cwd: Path = ROOT) -> Iterator[str]:
    """Serve `module:app` with gunicorn's sync workers; yields the base URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(GUNICORN), "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning", app],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=2).close()  # noqa: S310 - loopback only
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"gunicorn {app} did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str,
    *,
    seconds: int = 10,
    connections: int = 16,
    threads: int = 2,
    headers: dict[str, str] | None = None,
    timeout: int = 10,
) -> Load:
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", f"{timeout}s"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Load(requests_per_second=rps, p50_ms=p50, p99_ms=p99, errors=errors)


DATASET_STAFF = ("bench-staff@example.com", "bench-password")  # the staff account of the 1M dataset


def ensure_staff(database_url: str, email: str = DATASET_STAFF[0], password: str = DATASET_STAFF[1]) -> None:
    """Create the benchmark's staff account in `database_url` unless it is there: each script makes what it needs."""
    from sqlalchemy import select

    from booking import create_app
    from booking.auth.models import User
    from booking.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    with app.app_context():
        if db.session.scalar(select(User).where(User.email == email)) is None:
            staff = User(email=email, display_name="bench staff", role="staff")
            staff.set_password(password)
            db.session.add(staff)
            db.session.commit()
        db.engine.dispose()
