"""What staff read and change besides bookings: the queue, space rules, accounts, the audit trail.

Every write of a booking stays in `booking.bookings.services`; space rules and accounts
are written here, each in one transaction with its audit event.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, column, distinct, func, or_, select, values
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql.elements import ColumnElement

from booking.auth.models import ROLES, User
from booking.bookings import services
from booking.bookings.models import HOLDING, AuditEvent, Booking, Status
from booking.db import UTCDateTime, write_transaction
from booking.domain.capacity import Hold, peak_units
from booking.domain.check import within_opening_hours
from booking.domain.intervals import Interval
from booking.domain.rules import MAX_SPAN
from booking.spaces.models import RULE_COLUMNS

# -- the approval queue -------------------------------------------------------------------

# "Around" a request: bookings of the same space within this margin are shown next to it.
NEIGHBOUR_MARGIN = timedelta(hours=2)


@dataclass
class QueueRow:
    booking: Booking
    neighbours: list[Booking] = field(default_factory=list)

    @property
    def overlapping(self) -> list[Booking]:
        b = self.booking
        return [n for n in self.neighbours if n.start_at < b.end_at and n.end_at > b.start_at]


@dataclass
class QueueEntry:
    """One line of the queue: a single request, or every pending occurrence of one series."""

    rows: list[QueueRow]
    series_id: int | None = None

    @property
    def booking(self) -> Booking:
        """The single request, or the series' soonest pending occurrence."""
        return self.rows[0].booking

    @property
    def neighbours(self) -> list[Booking]:
        return self.rows[0].neighbours

    @property
    def overlapping(self) -> list[Booking]:
        return self.rows[0].overlapping

    @property
    def bookings(self) -> list[Booking]:
        return [row.booking for row in self.rows]

    @property
    def overlapping_count(self) -> int:
        """How many of the entry's occurrences overlap something held."""
        return sum(1 for row in self.rows if row.overlapping)


def expire_if_stale(session: Session, ctx: services.Context) -> int:
    """Run `expire_pending` only when a cheap read finds something to expire.

    The queue calls this on every view so a station without cron still shows the truth,
    without taking SQLite's write lock on every page load.
    """
    stale = session.scalar(
        select(Booking.id).where(Booking.status == Status.PENDING.value, Booking.start_at <= ctx.now).limit(1)
    )
    session.commit()  # end the read snapshot before a writer begins
    if stale is None:
        return 0
    return services.expire_pending(session, ctx)


def _queue_key() -> ColumnElement[int]:
    """A series' pending occurrences share one key (the series id); a single request is its own (-id)."""
    return case((Booking.series_id.is_(None), -Booking.id), else_=Booking.series_id)


@dataclass
class QueuePage:
    entries: list[QueueEntry]
    total: int  # entries: a series counts once
    dates: int  # pending bookings, each occurrence of a series counted


def pending_page(session: Session, *, page: int, per_page: int) -> QueuePage:
    """One page of the queue, soonest first: single requests, and each series once.

    A series needing approval is one entry holding its pending occurrences; `per_page`
    and `total` count entries. Three queries whatever the page size or the series'
    length: the count, the page (grouped in SQL, joined back to its bookings), and one
    self-join for every pending booking's neighbours.
    """
    pending = Booking.status == Status.PENDING.value
    key = _queue_key()
    total, dates = session.execute(select(func.count(distinct(key)), func.count(Booking.id)).where(pending)).one()
    entries = (
        select(
            key.label("entry_key"),
            func.min(Booking.start_at).label("first_start"),
            func.min(Booking.id).label("first_id"),
        )
        .where(pending)
        .group_by(key)
        .order_by(func.min(Booking.start_at), func.min(Booking.id))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .subquery("queue_entry")
    )
    rows = list(
        session.scalars(
            select(Booking)
            .join(entries, _queue_key() == entries.c.entry_key)
            .where(pending)
            .options(
                joinedload(Booking.requester),
                joinedload(Booking.organisation),
                joinedload(Booking.space),
            )
            .order_by(entries.c.first_start, entries.c.first_id, Booking.start_at, Booking.id)
        )
    )
    queue: list[QueueEntry] = []
    by_key: dict[int, QueueEntry] = {}
    for booking in rows:
        entry_key = booking.series_id if booking.series_id is not None else -booking.id
        entry = by_key.get(entry_key)
        if entry is None:
            entry = by_key[entry_key] = QueueEntry(rows=[], series_id=booking.series_id)
            queue.append(entry)
        entry.rows.append(QueueRow(booking))
    result = QueuePage(entries=queue, total=total or 0, dates=dates or 0)
    if not rows:
        return result
    # each row's window, computed here: date arithmetic in SQL differs between databases
    windows = (
        values(
            column("pending_id", Integer),
            column("space_id", Integer),
            column("lo", UTCDateTime),
            column("ws", UTCDateTime),
            column("we", UTCDateTime),
            name="pending_window",
        )
        .data(
            [
                (
                    b.id,
                    b.space_id,
                    b.start_at - NEIGHBOUR_MARGIN - MAX_SPAN,
                    b.start_at - NEIGHBOUR_MARGIN,
                    b.end_at + NEIGHBOUR_MARGIN,
                )
                for b in rows
            ]
        )
        .cte()
    )
    w = windows.c
    stmt = (
        select(w.pending_id, Booking)
        .select_from(windows)
        .join(
            Booking,
            and_(
                Booking.space_id == w.space_id,
                Booking.id != w.pending_id,
                Booking.status.in_(HOLDING),
                # bounded below, so each probe is an index range scan (see MAX_SPAN)
                Booking.start_at >= w.lo,
                Booking.start_at < w.we,
                Booking.end_at > w.ws,
            ),
        )
        .options(joinedload(Booking.requester), joinedload(Booking.organisation))
        .order_by(Booking.start_at, Booking.id)
    )
    by_id = {row.booking.id: row for entry in queue for row in entry.rows}
    for pending_id, neighbour in session.execute(stmt).unique():
        row = by_id[pending_id]
        if neighbour.series_id is not None and neighbour.series_id == row.booking.series_id:
            continue  # the series' own occurrences are listed in its entry already
        row.neighbours.append(neighbour)
    return result


# -- space rules --------------------------------------------------------------------------


class RulesRefused(Exception):
    """The new rules contradict themselves or what is already booked."""

    def __init__(self, message: str, *, field: str | None = None, bookings: Sequence[Booking] = ()) -> None:
        super().__init__(message)
        self.field = field
        self.bookings = list(bookings)


def over_capacity(holds: Sequence[Hold], capacity: int) -> list[int]:
    """Ids of the holds that take part in an instant where more than `capacity` units are held."""
    events: list[tuple[datetime, int, int]] = []
    for hold in holds:
        events.append((hold.interval.start, hold.units, hold.booking_id))
        events.append((hold.interval.end, -hold.units, hold.booking_id))
    events.sort(key=lambda e: (e[0], e[1]))
    held = 0
    active: set[int] = set()
    culprits: set[int] = set()
    for _, delta, booking_id in events:
        held += delta
        if delta > 0:
            active.add(booking_id)
        else:
            active.discard(booking_id)
        if held > capacity:
            culprits |= active
    return sorted(culprits)


LABEL_COLUMNS = ("unit_label_zh", "unit_label_en")
# the rules that decide when a space is open: a change may strand bookings already made
HOURS_COLUMNS = ("opening_hours", "time_mode", "fixed_slots")


def _bookings_with_requesters(session: Session, *where: ColumnElement[bool]) -> list[Booking]:
    """The bookings a refusal names, in time order, their requesters loaded with them."""
    stmt = select(Booking).where(*where).options(joinedload(Booking.requester)).order_by(Booking.start_at)
    return list(session.scalars(stmt))


def update_space_rules(
    session: Session,
    ctx: services.Context,
    space_id: int,
    changes: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
) -> dict[str, tuple[Any, Any]]:
    """Apply new rules under the space's lock, validated as a whole, audited before → after.

    Capacity may not drop below what future holding bookings hold at once, and new opening
    hours must still hold every future booking (no member may arrive at a closed door): the
    bookings in the way are named in the refusal so staff can move or cancel them first.
    """
    unknown = (set(changes) - set(RULE_COLUMNS)) | (set(labels or {}) - set(LABEL_COLUMNS))
    if unknown:
        raise ValueError(f"not rule columns: {sorted(unknown)}")
    with write_transaction(session):
        space = services.lock_space(session, space_id)
        before = space.rule_snapshot() | {c: getattr(space, c) for c in LABEL_COLUMNS}
        for column, value in (changes | (labels or {})).items():
            setattr(space, column, value)
        try:
            space.rules()  # the domain validates the whole: grid, durations, hours, MAX_SPAN
        except ValueError as exc:
            raise RulesRefused(str(exc)) from exc
        if space.capacity < before["capacity"]:
            last_end = session.scalar(
                select(func.max(Booking.end_at)).where(
                    Booking.space_id == space.id, Booking.status.in_(HOLDING), Booking.end_at > ctx.now
                )
            )
            if last_end is not None:
                holds = services.holds_in(session, space.id, Interval(ctx.now, max(last_end, ctx.now + MAX_SPAN)))
                if peak_units(holds, Interval(ctx.now, last_end)) > space.capacity:
                    ids = over_capacity(holds, space.capacity)
                    bookings = _bookings_with_requesters(session, Booking.id.in_(ids))
                    raise RulesRefused("capacity below future holds", field="capacity", bookings=bookings)
        if any(before[c] != getattr(space, c) for c in HOURS_COLUMNS):
            rules = space.rules()
            future = _bookings_with_requesters(
                session, Booking.space_id == space.id, Booking.status.in_(HOLDING), Booking.end_at > ctx.now
            )
            outside = [b for b in future if not within_opening_hours(rules, Interval(b.start_at, b.end_at))]
            if outside:
                raise RulesRefused("future bookings outside the new hours", field="opening_hours", bookings=outside)
        after = space.rule_snapshot() | {c: getattr(space, c) for c in LABEL_COLUMNS}
        diff = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
        if diff:
            services.audit(
                session,
                ctx,
                "space_rules",
                space_id=space.id,
                details={"before": {k: v[0] for k, v in diff.items()}, "after": {k: v[1] for k, v in diff.items()}},
            )
            session.flush()
            services.touch_space(session, space.id, ctx.now)
            session.expire(space, ["version", "changed_at"])
    return diff


# -- accounts -----------------------------------------------------------------------------


class LastAdmin(Exception):
    """An admin may not demote or deactivate themselves: someone must be left to undo it."""


def update_user(
    session: Session,
    ctx: services.Context,
    user_id: int,
    *,
    role: str,
    organisation_id: int | None,
    active: bool,
) -> dict[str, tuple[Any, Any]]:
    if ctx.actor is None or not ctx.actor.is_admin:
        raise services.NotPermitted("only admins manage accounts")
    if role not in ROLES:
        raise ValueError(role)
    with write_transaction(session):
        user = session.get(User, user_id, populate_existing=True)
        if user is None:
            raise LookupError(user_id)
        if user.id == ctx.actor.id and (role != "admin" or not active):
            raise LastAdmin()
        before = {"role": user.role, "organisation_id": user.organisation_id, "active": user.active}
        user.role = role
        user.organisation_id = organisation_id
        if user.active and not active:
            # sessions and remember cookies carry session_token; the feed URL its hash
            user.session_token = secrets.token_urlsafe(32)
            user.feed_token_hash = None
        elif before["role"] != role:
            user.session_token = secrets.token_urlsafe(32)  # a changed role starts a fresh session
        user.active = active
        after = {"role": user.role, "organisation_id": user.organisation_id, "active": user.active}
        diff = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
        if diff:
            services.audit(
                session,
                ctx,
                "account",
                details={
                    "user_id": user.id,
                    "email": user.email,
                    "before": {k: v[0] for k, v in diff.items()},
                    "after": {k: v[1] for k, v in diff.items()},
                },
            )
    return diff


# -- the audit trail ----------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    booking_id: int | None = None
    user_id: int | None = None
    space_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None


def audit_page(session: Session, query: AuditFilter, *, page: int, per_page: int) -> tuple[list[AuditEvent], int]:
    stmt = select(AuditEvent)
    if query.booking_id is not None:
        stmt = stmt.where(AuditEvent.booking_id == query.booking_id)
    if query.user_id is not None:
        stmt = stmt.where(or_(AuditEvent.actor_id == query.user_id, AuditEvent.subject_user_id == query.user_id))
    if query.space_id is not None:
        stmt = stmt.where(AuditEvent.space_id == query.space_id)
    if query.start is not None:
        stmt = stmt.where(AuditEvent.at >= query.start)
    if query.end is not None:
        stmt = stmt.where(AuditEvent.at < query.end)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    events = list(
        session.scalars(
            stmt.options(joinedload(AuditEvent.actor))
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    return events, total


def names_of(session: Session, user_ids: set[int]) -> dict[int, str]:
    """Display names for the users an audit page mentions, in one query."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids)))
    # .all(): a Result has keys(), so dict(rows) would take it for a mapping and fail
    return dict(rows.all())  # type: ignore[arg-type]
