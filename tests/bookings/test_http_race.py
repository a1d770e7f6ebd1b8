"""The last seat over real HTTP: gunicorn with four workers, 32 members pressing "book" at once.

Only on PostgreSQL (several worker processes against one server): in the SQLite run it is
deselected, and the PostgreSQL run of the same suite runs it.
Everything is real: logins, CSRF tokens, the form, the service's lock.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from booking.bookings import services
from booking.bookings.models import Booking
from booking.extensions import db
from tests.conftest import PASSWORD, TEST_DATABASE_URL
from tests.spaces.helpers import at, today

pytestmark = [pytest.mark.slow, pytest.mark.postgresql_only]

ROOT = Path(__file__).resolve().parents[2]
RACERS = 32


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """One person's cookies over http.client: enough of a browser for a login and a form."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        text = response.read().decode()
        conn.close()
        return response.status, response.headers.get("Location", ""), text

    @staticmethod
    def token(html: str) -> str:
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


@pytest.fixture
def server(app):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": TEST_DATABASE_URL,
        "SECRET_KEY": "http-race-secret",
        "INSTANCE_PATH": tempfile.mkdtemp(prefix="booking-race-"),
        "RATELIMIT_ENABLED": "false",  # 32 logins from one address in a second is the point here
        "BOOKING_HOST": "station.test",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    process = subprocess.Popen(
        [gunicorn, "-w", "4", "-b", f"127.0.0.1:{port}", "--timeout", "120", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, _ = Browser(port).request("GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("gunicorn did not start")
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def test_32_members_race_for_the_last_seat(server, space, make_user):
    room = space("reading-room")
    day = today() + timedelta(days=1)
    start, end = at(day, 10), at(day, 11)
    for units in (4, 4, 4, 4, 3):  # 19 of 20 seats held
        holder = make_user()
        services.request_booking(
            db.session,
            services.context(holder),
            space_id=room.id,
            requester=holder,
            start=start,
            end=end,
            title="占座",
            units=units,
        )
    racers = [make_user() for _ in range(RACERS)]
    room_id = room.id
    barrier = threading.Barrier(RACERS)
    results: list[tuple[int, str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    path = f"/spaces/reading-room/book?start={day.isoformat()}T10:00&end={day.isoformat()}T11:00"

    def race(email: str) -> None:
        try:
            browser = Browser(server)
            _, _, page = browser.request("GET", "/auth/login")
            status, _, _ = browser.request(
                "POST", "/auth/login", {"email": email, "password": PASSWORD, "csrf_token": Browser.token(page)}
            )
            assert status == 302, status
            status, _, form = browser.request("GET", path)
            assert status == 200, status
            data = {
                "csrf_token": Browser.token(form),
                "title": "最后一个座位",
                "day": day.isoformat(),
                "start_time": "10:00",
                "end_time": "11:00",
                "units": "1",
            }
            barrier.wait(timeout=120)
            outcome = browser.request("POST", path, data)
            with lock:
                results.append(outcome)
        except BaseException as exc:  # collected and re-raised in the main thread
            barrier.abort()
            with lock:
                errors.append(exc)

    emails = [user.email for user in racers]
    threads = [threading.Thread(target=race, args=(email,)) for email in emails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    statuses = sorted(status for status, _, _ in results)
    assert len(results) == RACERS
    assert 500 not in statuses
    assert statuses.count(302) == 1, statuses
    assert statuses.count(409) == RACERS - 1, statuses
    winner = next(location for status, location, _ in results if status == 302)
    assert re.search(r"/bookings/\d+$", winner)
    refusal = next(text for status, _, text in results if status == 409)
    assert "refusal" in refusal
    db.session.expire_all()
    held = db.session.scalar(
        select(func.sum(Booking.units)).where(
            Booking.space_id == room_id, Booking.status.in_(("pending", "confirmed")), Booking.start_at == start
        )
    )
    assert held == 20
