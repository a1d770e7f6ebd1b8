"""Access and the web's defences: other people's bookings, CSRF, ?next=, throttling, cookies, CSP."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from booking import create_app
from booking.bookings.models import Booking
from booking.extensions import db
from tests.conftest import PASSWORD
from tests.spaces.helpers import at, book_as, login, weekday_ahead


@pytest.fixture
def others_booking(space, make_user):
    owner = make_user()
    room = space("meeting-room")
    day = weekday_ahead(3)
    return book_as(owner, room, at(day, 9), at(day, 10), "别人的会议")


@pytest.fixture
def app_like(app):
    """Another app on the same database with some settings changed; its engine is closed afterwards."""
    made = []

    def make(**overrides):
        made.append(_app_like(app, **overrides))
        return made[-1]

    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()


def _app_like(app, **overrides):
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "SERVER_NAME": "station.test",
        "BOOKING_HOST": "station.test",
    }
    config.update(overrides)
    return create_app(config)


def test_someone_elses_booking_is_not_found(client, member, others_booking):
    login(client, member.email)
    booking_id = others_booking.id
    assert client.get(f"/bookings/{booking_id}").status_code == 404
    assert client.post(f"/bookings/{booking_id}/cancel").status_code == 404
    assert client.get(f"/bookings/{booking_id}/cancel").status_code == 404
    assert client.get(f"/bookings/{booking_id}.ics").status_code == 404
    assert client.get("/bookings/999999").status_code == 404
    db.session.expire_all()
    assert db.session.get(Booking, booking_id).status == "confirmed"
    assert "别人的会议" not in client.get("/bookings").get_data(as_text=True)


def test_staff_see_any_booking(client, staff, others_booking):
    login(client, staff.email)
    assert client.get(f"/bookings/{others_booking.id}").status_code == 200
    assert client.get(f"/bookings/{others_booking.id}.ics").status_code == 200


def test_post_without_csrf_token_is_refused_with_a_friendly_page(app_like, member):
    csrf_app = app_like(WTF_CSRF_ENABLED=True)
    client = csrf_app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    refused = client.post("/auth/login", data={"email": member.email, "password": PASSWORD})
    assert refused.status_code == 400
    assert "This form has expired" in refused.get_data(as_text=True)
    form = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    ok = client.post("/auth/login", data={"email": member.email, "password": PASSWORD, "csrf_token": token})
    assert ok.status_code == 302
    day = weekday_ahead(3)
    data = {"title": "x", "day": day.isoformat(), "start_time": "09:00", "end_time": "10:00", "attendees": 1}
    no_token = client.post("/spaces/meeting-room/book", data=data)
    assert no_token.status_code == 400
    assert "This form has expired" in no_token.get_data(as_text=True)
    assert client.post("/bookings/1/cancel").status_code == 400


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "/\\evil.example", "http:/evil"])
def test_login_never_redirects_off_site(client, member, target):
    response = client.post(f"/auth/login?next={target}", data={"email": member.email, "password": PASSWORD})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc in ("", "station.test")
    assert location.path == "/"


def test_login_follows_a_local_next(client, member):
    response = client.post("/auth/login?next=/spaces/cafe/book", data={"email": member.email, "password": PASSWORD})
    assert urlsplit(response.headers["Location"]).path == "/spaces/cafe/book"


def test_the_eleventh_login_in_a_minute_is_throttled(app_like, member):
    limited = app_like(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    client = limited.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    codes = [
        client.post("/auth/login", data={"email": member.email, "password": "wrong"}).status_code for _ in range(11)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10] == 429
    assert "Too many attempts" in client.post("/auth/login", data={"email": "x@example.com"}).get_data(as_text=True)


def _cookie(response, name):
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(name + "="))


def test_session_and_remember_cookies_are_httponly_and_lax(client, member):
    response = client.post("/auth/login", data={"email": member.email, "password": PASSWORD, "remember": "y"})
    for name in ("session", "remember_token"):
        cookie = _cookie(response, name)
        assert "HttpOnly" in cookie, cookie
        assert "SameSite=Lax" in cookie, cookie
        assert "Secure" not in cookie  # plain http in tests


def test_cookies_are_secure_when_configured(app_like, member):
    secure = app_like(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
    response = secure.test_client().post(
        "/auth/login", data={"email": member.email, "password": PASSWORD, "remember": "y"}
    )
    for name in ("session", "remember_token"):
        assert "Secure" in _cookie(response, name)


def test_every_member_page_sends_the_csp(client, member, space):
    room = space("meeting-room")
    day = weekday_ahead(3)
    booking = book_as(member, room, at(day, 9), at(day, 10), "x")
    login(client, member.email)
    pages = [
        "/",
        "/spaces/meeting-room",
        "/spaces/exhibition",
        "/spaces/cafe",
        "/spaces/reading-room/book",
        "/bookings",
        f"/bookings/{booking.id}",
        f"/bookings/{booking.id}/cancel",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp, path
        assert "unsafe-inline" not in csp, path
        html = response.get_data(as_text=True)
        assert " style=" not in html, path  # no inline styles: CSP would block them
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path  # no inline scripts
