"""The application shell: health check, the UTC datetime type, security headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from booking.bookings.models import Booking
from booking.extensions import db
from booking.spaces.models import Closure, Location
from tests.conftest import shanghai


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_utc_datetimes_round_trip_aware(app):
    location = db.session.scalar(select(Location))
    local = shanghai(2026, 12, 1, 9)
    closure = Closure(location_id=location.id, start_at=local, end_at=local + timedelta(hours=2), reason="测试")
    db.session.add(closure)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Closure, closure.id)
    assert stored.start_at == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert stored.start_at.utcoffset() == timedelta(0)
    # a range query with an aware bound in another zone compares instants, not wall clocks
    plus_eight = timezone(timedelta(hours=8))
    found = db.session.scalar(select(Closure).where(Closure.start_at >= datetime(2026, 12, 1, 9, tzinfo=plus_eight)))
    assert found is not None


def test_naive_datetimes_are_refused_by_the_column_type(app):
    location = db.session.scalar(select(Location))
    naive = datetime(2026, 12, 1, 9)  # noqa: DTZ001 - the point of the test
    db.session.add(Closure(location_id=location.id, start_at=naive, end_at=naive + timedelta(hours=1), reason="x"))
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.commit()
    db.session.rollback()


def test_check_constraints_hold_in_the_database(app, member, space):
    room = space("meeting-room")
    start = shanghai(2026, 12, 1, 9)
    db.session.add(
        Booking(
            space_id=room.id,
            requester_id=member.id,
            created_by_id=member.id,
            title="x",
            start_at=start,
            end_at=start,
            units=1,
            status="confirmed",
        )
    )
    with pytest.raises(Exception, match=r"ends_after_start|CHECK constraint"):
        db.session.commit()
    db.session.rollback()


def test_behind_a_proxy_the_forwarded_client_and_scheme_are_used(database_url):
    from booking import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "PROXY_FIX": True, "TESTING": True})
    response = app.test_client().get(
        "/healthz", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    )
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    assert (
        "Strict-Transport-Security"
        not in plain.test_client().get("/healthz", headers={"X-Forwarded-Proto": "https"}).headers
    )


def test_a_nul_character_in_the_url_is_a_clear_400(client):
    for url in ("/spaces/%00", "/spaces/meeting-room?date=%00", "/feeds/spaces/%00.ics"):
        response = client.get(url)
        assert response.status_code == 400, url
    assert "This request could not be read" in client.get("/spaces/%00").get_data(as_text=True)
