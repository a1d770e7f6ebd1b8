"""The command line: seed, demo, create-user, expire-pending, backup."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from sqlalchemy import func, select

from booking.auth.models import Organisation, User
from booking.bookings.models import Booking
from booking.extensions import db
from booking.spaces.models import Space
from tests.conftest import TEST_DATABASE_URL


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_seed_is_idempotent(runner):
    # the app fixture seeded once already
    spaces, orgs = count(Space), count(Organisation)
    result = runner.invoke(args=["booking", "seed"])
    assert result.exit_code == 0, result.output
    assert "0 new spaces" in result.output
    assert (count(Space), count(Organisation)) == (spaces, orgs) == (5, 23)
    slugs = set(db.session.scalars(select(Space.slug).where(Space.bookable.is_(True))))
    assert slugs == {"meeting-room", "exhibition", "reading-room", "cafe"}


def test_demo_makes_accounts_and_a_month_of_bookings(runner):
    result = runner.invoke(args=["booking", "demo"])
    assert result.exit_code == 0, result.output
    assert "member@example.com" in result.output
    member = db.session.scalar(select(User).where(User.email == "member@example.com"))
    assert member.is_demo
    assert member.check_password("station-demo")
    staff = db.session.scalar(select(User).where(User.email == "staff@example.com"))
    assert staff.role == "staff"
    assert count(Booking) > 100
    statuses = set(db.session.scalars(select(Booking.status)))
    assert {"confirmed", "pending"} <= statuses


def test_demo_refuses_a_database_with_real_users(runner, member):
    result = runner.invoke(args=["booking", "demo"])
    assert result.exit_code == 1
    assert "refused" in result.output
    assert count(Booking) == 0


def test_create_user_reads_the_password_from_stdin(runner):
    result = runner.invoke(
        args=[
            "booking",
            "create-user",
            "Zhou@Example.com",
            "--role",
            "staff",
            "--name",
            "周婷",
            "--org",
            "waitan-street",
            "--password-stdin",
        ],
        input="a-long-password\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "zhou@example.com"))
    assert (user.role, user.display_name, user.organisation.slug) == ("staff", "周婷", "waitan-street")
    assert user.check_password("a-long-password")
    again = runner.invoke(args=["booking", "create-user", "zhou@example.com", "--password-stdin"], input="x" * 10)
    assert again.exit_code != 0
    assert "already exists" in again.output
    short = runner.invoke(args=["booking", "create-user", "new@example.com", "--password-stdin"], input="short\n")
    assert short.exit_code != 0
    assert "at least 8" in short.output


def test_expire_pending_command(runner):
    result = runner.invoke(args=["booking", "expire-pending"])
    assert result.exit_code == 0
    assert "expired 0" in result.output


def test_backup_copies_and_refuses_to_overwrite(runner, tmp_path, member):
    target = tmp_path / "backup.sqlite3"
    result = runner.invoke(args=["booking", "backup", str(target)])
    if TEST_DATABASE_URL:
        # PostgreSQL has its own tools; the command says so instead of copying nothing
        assert result.exit_code != 0
        assert "pg_dump" in result.output
        assert not target.exists()
        return
    assert result.exit_code == 0, result.output
    copied = sqlite3.connect(target).execute("SELECT email FROM user").fetchall()
    assert copied == [("member@example.com",)]
    again = runner.invoke(args=["booking", "backup", str(target)])
    assert again.exit_code != 0
    assert "--force" in again.output
    forced = runner.invoke(args=["booking", "backup", str(target), "--force"])
    assert forced.exit_code == 0


def test_refresh_usage_has_the_report_figures_ready(runner, space, member, book):
    from booking.db import utcnow
    from booking.staff.models import UsageCacheRow
    from tests.conftest import shanghai

    today = utcnow().astimezone(shanghai(2026, 1, 1, 0).tzinfo).date()
    yesterday = today - timedelta(days=1)
    room = space("meeting-room", opening_hours={str(d): [["08:00", "22:00"]] for d in range(7)})
    start = shanghai(yesterday.year, yesterday.month, yesterday.day, 10)
    # booked last week for yesterday, so the past booking went through the real rules
    book(room, member, start, title="周例会", now=start - timedelta(days=7))

    result = runner.invoke(args=["booking", "refresh-usage", "--days", "30"])

    assert result.exit_code == 0, result.output
    assert f"usage figures ready for {today - timedelta(days=29)} to {today}: 1 bookings" in result.output
    ready = set(db.session.scalars(select(UsageCacheRow.day).where(UsageCacheRow.kind == "d")))
    assert {today - timedelta(days=n) for n in range(30)} <= ready
    assert (
        db.session.scalar(
            select(UsageCacheRow.bookings).where(UsageCacheRow.kind == "d", UsageCacheRow.day == yesterday)
        )
        == 1
    )
