"""`flask --app wsgi booking …`: seed, demo, create-user, expire-pending, mail, backup."""

from __future__ import annotations

import random
import sqlite3
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import delete, func, select

from booking import clock
from booking.auth.models import ROLES, Organisation, User
from booking.bookings import services
from booking.bookings.models import Booking, OutgoingMail
from booking.db import utcnow
from booking.extensions import db
from booking.seed import seed as seed_station
from booking.spaces.models import Space

group = AppGroup("booking", help="Run the station: seed, demo data, accounts, housekeeping.")

DEMO_PASSWORD = "station-demo"  # noqa: S105 - printed for everyone on purpose: demo accounts only
DEMO_ACCOUNTS = (
    ("member@example.com", "王小明", "member", "huangpu-bank"),
    ("staff@example.com", "李静（服务站）", "staff", "bund-invest"),
)


def init_app(app: Flask) -> None:
    app.cli.add_command(group)


@group.command("seed")
def seed_command() -> None:
    """The station, its spaces and member units; idempotent."""
    spaces, orgs = seed_station(db.session)
    click.echo(f"seeded: {spaces} new spaces, {orgs} new member units")


@group.command("demo")
def demo_command() -> None:
    """Demo accounts and a realistic month of bookings; refuses a database with real users."""
    real = db.session.scalar(select(func.count(User.id)).where(User.is_demo.is_(False)))
    if real:
        click.echo("refused: this database has real users; demo data goes only into a fresh one", err=True)
        sys.exit(1)
    seed_station(db.session)
    accounts = {}
    for email, name, role, org_slug in DEMO_ACCOUNTS:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            org = db.session.scalar(select(Organisation).where(Organisation.slug == org_slug))
            user = User(email=email, display_name=name, role=role, organisation=org, is_demo=True)
            user.set_password(DEMO_PASSWORD)
            db.session.add(user)
        accounts[role] = user
    db.session.commit()
    if db.session.scalar(select(func.count(Booking.id))):
        click.echo("demo bookings already present")
        return
    made = _demo_bookings(accounts["member"], accounts["staff"])
    # demo bookings are not real requests: nobody is to be mailed about them
    db.session.execute(delete(OutgoingMail))
    db.session.commit()
    click.echo(f"demo: {made} bookings; log in as member@example.com or staff@example.com, password {DEMO_PASSWORD}")


def _demo_people(orgs: list[Organisation]) -> list[User]:
    names = ["陈佳怡", "张伟", "刘洋", "赵敏", "孙浩", "周婷", "吴磊", "郑雪", "Emily Chen", "David Liu"]
    people = []
    for index, name in enumerate(names):
        email = f"demo{index + 1}@example.com"
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(
                email=email, display_name=name, role="member", organisation=orgs[index % len(orgs)], is_demo=True
            )
            user.set_password(DEMO_PASSWORD)
            db.session.add(user)
        people.append(user)
    db.session.commit()
    return people


DEMO_TITLES = {
    "meeting-room": ["部门周例会", "客户路演彩排", "合规培训", "青年读书会筹备", "Quarterly review", "党小组学习"],
    "exhibition": ["外滩金融百年影像展", "绿色金融主题展", "职工书画作品展"],
    "reading-room": ["自习", "备考 CFA", "午间阅读", "Reading"],
    "cafe": ["同事交流", "工会咖啡时间", "Coffee chat"],
}


def _demo_bookings(member: User, staff: User) -> int:
    rng = random.Random(20261126)  # noqa: S311 - demo data, not security
    orgs = list(db.session.scalars(select(Organisation)))
    people = [member, *_demo_people(orgs)]
    spaces = {s.slug: s for s in db.session.scalars(select(Space).where(Space.bookable.is_(True)))}
    tz = spaces["meeting-room"].location.tz
    today = clock.today(tz)
    made = 0
    for offset in range(-14, 17):
        day = today + timedelta(days=offset)
        for slug, tries in (("meeting-room", 5), ("reading-room", 8), ("cafe", 6)):
            space = spaces[slug]
            rules = space.rules()
            cells = rules.slots_on(day)
            for _ in range(tries if cells else 0):
                cell = rng.choice(cells)
                length = rng.choice([1, 2, 2, 3, 4]) if slug != "cafe" else 1
                end = cell.start + (cell.end - cell.start) * length
                requester = rng.choice(people)
                made += _try_book(
                    space,
                    requester,
                    cell.start,
                    end,
                    rng.choice(DEMO_TITLES[slug]),
                    units=rng.randint(1, rules.max_units_per_booking),
                    attendees=rng.randint(2, 10) if slug == "meeting-room" else 1,
                )
    exhibition = spaces["exhibition"]
    for start_offset, days, title, requester in ((-10, 7, 0, member), (12, 5, 1, people[3]), (25, 10, 2, people[5])):
        first = today + timedelta(days=start_offset)
        start = datetime.combine(first, time(0), tzinfo=tz)
        end = datetime.combine(first + timedelta(days=days), time(0), tzinfo=tz)
        made += _try_book(exhibition, requester, start, end, DEMO_TITLES["exhibition"][title], public=True)
    # a few decisions, so the queue, my bookings and the audit have something to show
    pending = db.session.scalars(select(Booking).where(Booking.status == "pending").order_by(Booking.start_at)).all()
    for booking in pending[:1]:
        services.approve(db.session, services.context(staff), booking.id)
    return made


def _try_book(
    space: Space,
    requester: User,
    start: datetime,
    end: datetime,
    title: str,
    *,
    units: int = 1,
    attendees: int = 1,
    public: bool = False,
) -> int:
    # past demo bookings are requested "as of" shortly before they start, within their notice rule
    now = min(utcnow(), start.astimezone(UTC) - timedelta(minutes=space.min_notice_minutes + 60))
    try:
        services.request_booking(
            db.session,
            services.context(requester, now=now),
            space_id=space.id,
            requester=requester,
            start=start,
            end=end,
            title=title,
            units=units,
            attendees=attendees,
            title_public=public,
        )
    except services.BookingRefused:
        return 0
    return 1


@group.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
@click.option("--name", default=None, help="Display name (defaults to the part before @).")
@click.option("--org", default=None, help="Member unit slug.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(email: str, role: str, name: str | None, org: str | None, password_stdin: bool) -> None:
    """Create an account (staff and admins are made this way)."""
    email = email.strip().lower()
    if db.session.scalar(select(User).where(User.email == email)):
        raise click.ClickException(f"{email} already exists")
    organisation = None
    if org:
        organisation = db.session.scalar(select(Organisation).where(Organisation.slug == org))
        if organisation is None:
            raise click.ClickException(f"unknown member unit {org!r}")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("the password must have at least 8 characters")
    user = User(email=email, display_name=name or email.split("@")[0], role=role, organisation=organisation)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"created {role} {email}")


@group.command("expire-pending")
def expire_pending_command() -> None:
    """Requests whose start passed undecided become expired; safe to run every minute."""
    count = services.expire_pending(db.session, services.context(None))
    click.echo(f"expired {count} pending requests")


@group.command("send-pending-mail")
@click.option("--limit", default=500, show_default=True, help="Send at most this many messages.")
def send_pending_mail_command(limit: int) -> None:
    """Send queued mail that has not gone out yet (retries failed sends); safe to run often."""
    from booking import mail

    sent, failed = mail.send_pending(current_app, limit=limit)
    click.echo(f"mail: {sent} sent, {failed} failed")
    if failed:
        sys.exit(1)


@group.command("send-reminders")
@click.option("--hours", default=36, show_default=True, help="Remind bookings starting within this many hours.")
def send_reminders_command(hours: int) -> None:
    """Remind each confirmed booking once, the day before; then send all pending mail. Run daily."""
    from booking import mail, notifications

    reminded = notifications.queue_reminders(db.session, now=utcnow(), within=timedelta(hours=hours))
    sent, failed = mail.send_pending(current_app)
    click.echo(f"reminders: {reminded} queued; mail: {sent} sent, {failed} failed")
    if failed:
        sys.exit(1)


@group.command("refresh-usage")
@click.option("--days", default=400, show_default=True, help="How many days up to today to have ready.")
def refresh_usage_command(days: int) -> None:
    """Work out the usage report's daily figures ahead of time; run nightly (safe any time).

    Reports read these figures and catch up with changes since on their own; only the
    first report of days nobody has asked about yet would otherwise read every booking.
    """
    from booking import i18n
    from booking.staff import reports

    tz = i18n.station_tz()
    today = utcnow().astimezone(tz).date()
    first = today - timedelta(days=max(days, 1) - 1)
    report = reports.usage(db.session, first=first, last=today, tz=tz)
    db.session.commit()
    click.echo(f"usage figures ready for {first} to {today}: {report.total.bookings} bookings")


@group.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def backup_command(path: Path, force: bool) -> None:
    """A consistent copy of the SQLite database, taken online (SQLite's backup API)."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database:
        raise click.ClickException("backup copies the embedded SQLite database; use pg_dump for PostgreSQL")
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; add --force to overwrite it")
    if path.exists():
        path.unlink()
    source = sqlite3.connect(url.database)
    target = sqlite3.connect(path)
    try:
        with target:
            source.backup(target)
    finally:
        target.close()
        source.close()
    click.echo(f"backed up {url.database} to {path}")
