"""Every write of a booking goes through here, in one transaction with the lock that
keeps the capacity rule true under concurrent requests.

On SQLite the lock is the database write lock, taken by BEGIN IMMEDIATE before the
first read; on PostgreSQL it is the space row (SELECT … FOR UPDATE), backed by an
exclusion constraint on exclusive spaces. The acting user is always an argument.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached

from booking.auth import services as auth_services
from booking.auth.models import User
from booking.bookings.models import HOLDING, AuditEvent, Booking, Status
from booking.db import UTCDateTime, utcnow, watermark_values, write_transaction
from booking.domain.availability import nearest_free
from booking.domain.capacity import Hold
from booking.domain.check import ClosureSpan, Request, capacity_refusal, check_request, closure_refusal, policy_refusal
from booking.domain.intervals import Interval, NaiveDatetimeError
from booking.domain.refusals import Conflict, NaiveTime, NotBookable, Refusal
from booking.domain.rules import MAX_SPAN
from booking.spaces.models import Closure, Location, Space, rules_from


class BookingRefused(Exception):
    """The request breaks a rule; `refusal` says which, with what is in the way."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.code)
        self.refusal = refusal


class AlreadyDecided(Exception):
    """A stale click: the booking left the state the decision was made on."""

    def __init__(self, booking: Booking) -> None:
        super().__init__(f"booking {booking.id} is already {booking.status}")
        self.booking = booking
        self.status = booking.status
        self.decided_by = booking.decided_by.display_name if booking.decided_by else None
        self.decided_at = booking.decided_at


class NotPermitted(Exception):
    """The actor may not do this to this booking (a member cancelling another's, say)."""


class ReasonRequired(ValueError):
    """Rejecting, or cancelling someone else's booking, needs a reason the requester reads."""


# Called inside the transaction after every change, so mail is queued atomically with it.
# booking.notifications registers itself here; tests may add their own listeners.
listeners: list[Callable[[Session, Booking, str, User | None, str | None], None]] = []


@dataclass(frozen=True)
class Context:
    """Who acts, when and from where: passed in, never read from the request."""

    actor: User | None
    now: datetime
    ip: str | None = None
    # read once up front: inside a transaction the actor object may be expired and reload
    actor_id: int | None = None
    actor_is_staff: bool = False


def context(actor: User | None, *, now: datetime | None = None, ip: str | None = None) -> Context:
    return Context(
        actor=actor,
        now=now or utcnow(),
        ip=ip,
        actor_id=actor.id if actor is not None else None,
        actor_is_staff=actor is not None and actor.is_staff,
    )


# -- reading what the rules need -------------------------------------------------------


def lock_space(session: Session, space_id: int) -> Space:
    # the location comes along (its time zone is needed for every rule check): one query, not two
    stmt = select(Space).options(joinedload(Space.location)).where(Space.id == space_id).with_for_update(of=Space)
    return session.execute(stmt, execution_options={"populate_existing": True}).scalar_one()


@functools.cache
def _holds_stmt(*, excluding: bool) -> Any:
    """Built once per shape: the write path and the week page run it on every request."""
    b = Booking.__table__.c
    stmt = select(b.id, b.start_at, b.end_at, b.units, b.requester_id).where(
        b.space_id == bindparam("space_id"),
        b.status.in_(HOLDING),
        # the lower bound keeps the scan to the window: no booking is longer than MAX_SPAN
        b.start_at >= bindparam("lowest", type_=UTCDateTime),
        b.start_at < bindparam("end", type_=UTCDateTime),
        b.end_at > bindparam("start", type_=UTCDateTime),
    )
    return stmt.where(b.id != bindparam("exclude")) if excluding else stmt


@functools.cache
def _space_row_stmt() -> Any:
    space, location = Space.__table__, Location.__table__
    return (
        select(space, location.c.timezone)
        .join_from(space, location, space.c.location_id == location.c.id)
        .where(space.c.id == bindparam("space_id"))
        .with_for_update(of=space)
    )


def lock_space_row(session: Session, space_id: int) -> Any:
    """`lock_space` for the hot path: the space's columns and time zone as one Core row.

    Everything a request is checked against (`rules_from`) is read here, under the lock,
    without the ORM's loading; the row has the Space's column names as attributes.
    """
    return session.connection().execute(_space_row_stmt(), {"space_id": space_id}).one()


def holds_in(session: Session, space_id: int, window: Interval, *, exclude: int | None = None) -> list[Hold]:
    """Units held in a space over a window, in one bounded index range scan."""
    params = {"space_id": space_id, "lowest": window.start - MAX_SPAN, "start": window.start, "end": window.end}
    if exclude is not None:
        params["exclude"] = exclude
    rows = session.connection().execute(_holds_stmt(excluding=exclude is not None), params)
    return [
        Hold(booking_id=id_, interval=Interval(start, end), units=units, requester_id=requester)
        for id_, start, end, units, requester in rows
    ]


@functools.cache
def _closures_stmt() -> Any:
    c = Closure.__table__.c
    return select(c.id, c.start_at, c.end_at, c.reason).where(
        c.location_id == bindparam("location_id"),
        or_(c.space_id.is_(None), c.space_id == bindparam("space_id")),
        c.start_at < bindparam("end", type_=UTCDateTime),
        c.end_at > bindparam("start", type_=UTCDateTime),
    )


def closures_in(session: Session, space: Space, window: Interval) -> list[ClosureSpan]:
    params = {"location_id": space.location_id, "space_id": space.id, "start": window.start, "end": window.end}
    return [
        ClosureSpan(closure_id=id_, interval=Interval(start, end), reason=reason)
        for id_, start, end, reason in session.connection().execute(_closures_stmt(), params)
    ]


@functools.cache
def _future_bookings_stmt() -> Any:
    b = Booking.__table__.c
    return select(func.count(b.id)).where(
        b.space_id == bindparam("space_id"),
        b.requester_id == bindparam("requester_id"),
        b.status.in_(HOLDING),
        # implied by end_at > now (no booking is longer than MAX_SPAN), and lets the index bound the scan
        b.start_at > bindparam("lowest", type_=UTCDateTime),
        b.end_at > bindparam("now", type_=UTCDateTime),
    )


def future_bookings_of(session: Session, space_id: int, requester_id: int, now: datetime) -> int:
    params = {"space_id": space_id, "requester_id": requester_id, "lowest": now - MAX_SPAN, "now": now}
    return session.connection().execute(_future_bookings_stmt(), params).scalar() or 0


def with_nearest_free(session: Session, space: Space, refusal: Refusal, request: Request, now: datetime) -> Refusal:
    """A capacity refusal comes with the nearest time that is free, where one exists."""
    if not isinstance(refusal, Conflict):
        return refusal
    search = timedelta(days=7) if not space.whole_days else timedelta(days=60)
    window = Interval(request.interval.start - search, request.interval.end + search)
    holds = holds_in(session, space.id, window)
    closures = closures_in(session, space, window)
    rules = space.rules()
    nearest = nearest_free(rules, request, now=now, holds=holds, closures=closures, search=search)
    return Conflict(blocking=refusal.blocking, left=refusal.left, nearest_free=nearest)


# -- writing ------------------------------------------------------------------------------


def audit(
    session: Session,
    ctx: Context,
    action: str,
    *,
    booking: Booking | None = None,
    space_id: int | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str | None = None,
    details: dict[str, object] | None = None,
) -> None:
    # a plain Core INSERT: audit rows are append-only and never needed as objects in the session
    session.connection().execute(
        _audit_stmt(),
        {
            "at": ctx.now,
            "actor_id": ctx.actor_id,
            "action": action,
            "booking_id": booking.id if booking else None,
            "space_id": space_id if space_id is not None else (booking.space_id if booking else None),
            "subject_user_id": booking.requester_id if booking else None,
            "from_status": from_status,
            "to_status": to_status,
            "reason": reason,
            "ip": ctx.ip,
            "details": details,
        },
    )


@functools.cache
def _audit_stmt() -> Any:
    return insert(AuditEvent.__table__)


@functools.cache
def _watermark_stmts() -> tuple[Any, Any]:
    space, user = Space.__table__, User.__table__
    return (
        update(space).where(space.c.id == bindparam("space_id")).values(watermark_values(space)),
        update(user).where(user.c.id == bindparam("user_id")).values(watermark_values(user)),
    )


def touch_space(session: Session, space_id: int, now: datetime) -> None:
    """Move one space's watermark (its rules or closures changed, or a name its pages show)."""
    session.connection().execute(_watermark_stmts()[0], {"space_id": space_id, "now": now})


@auth_services.shown_changed.connect
def _requester_shown_changed(session: Session, *, user_id: int, now: datetime) -> None:
    """A renamed member: the spaces of their bookings show the new name (staff's feeds and pages)."""
    spaces = session.scalars(select(Booking.space_id).where(Booking.requester_id == user_id).distinct())
    for space_id in sorted(spaces):  # a fixed order, like every lock taken here
        touch_space(session, space_id, now)


def touch_watermarks(session: Session, booking: Booking, now: datetime) -> None:
    """Move the feed watermarks of the space and the requester forward."""
    conn = session.connection()
    space_stmt, user_stmt = _watermark_stmts()
    conn.execute(space_stmt, {"space_id": booking.space_id, "now": now})
    conn.execute(user_stmt, {"user_id": booking.requester_id, "now": now})


def notify(session: Session, booking: Booking, kind: str, ctx: Context, reason: str | None = None) -> None:
    for listener in listeners:
        listener(session, booking, kind, ctx.actor, reason)


def is_exclusion_violation(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "23P01"


def new_booking(
    space: Space,
    interval: Interval,
    *,
    requester_id: int,
    organisation_id: int | None,
    creator_id: int,
    title: str,
    units: int,
    attendees: int,
    title_public: bool,
    pending: bool,
    now: datetime,
    series_id: int | None = None,
    override_reason: str | None = None,
) -> Booking:
    """The row a checked request becomes: pending for staff to decide, else confirmed at once."""
    return Booking(
        space_id=space.id,
        requester_id=requester_id,
        created_by_id=creator_id,
        organisation_id=organisation_id,
        series_id=series_id,
        title=title,
        attendees=attendees,
        units=units,
        start_at=interval.start,
        end_at=interval.end,
        status=Status.PENDING.value if pending else Status.CONFIRMED.value,
        title_public=title_public and space.titles_public,
        exclusive=space.capacity == 1,  # space may be a Space or a Core row of its table
        override_reason=override_reason,
        decided_by_id=None if pending else creator_id,
        decided_at=None if pending else now,
        created_at=now,
        updated_at=now,
    )


@functools.cache
def _booking_insert() -> tuple[Any, dict[str, Any]]:
    table = Booking.__table__
    defaults = {c.key: c.default.arg for c in table.columns if c.default is not None and c.default.is_scalar}
    return insert(table).returning(table.c.id), defaults


def insert_booking(session: Session, booking: Booking) -> Booking:
    """INSERT a new booking with one prebuilt statement; the object joins the session as persistent.

    The unit of work would cost as much as every other statement of a request together.
    Every column is set on the object first (its defaults included), so reading one later
    never goes back to the database.
    """
    stmt, defaults = _booking_insert()
    given = booking.__dict__  # what the constructor set, read without the ORM's instrumentation
    values = {}
    for column in Booking.__table__.columns:
        key = column.key
        if key == "id":
            continue
        value = given.get(key)
        if value is None:
            value = defaults.get(key)
            setattr(booking, key, value)
        values[key] = value
    booking.id = session.connection().execute(stmt, values).scalar_one()
    make_transient_to_detached(booking)
    session.add(booking)
    return booking


def request_booking(
    session: Session,
    ctx: Context,
    *,
    space_id: int,
    requester: User,
    start: datetime,
    end: datetime,
    title: str,
    units: int = 1,
    attendees: int = 1,
    title_public: bool = False,
    override_reason: str | None = None,
    series_id: int | None = None,
) -> Booking:
    """Hold capacity for a request: confirmed at once, or pending when staff must approve.

    Staff acting for a member may pass `override_reason` to lift the space's policy
    limits (duration, notice, advance, units, count) — never capacity, closures, the
    grid or opening hours. The reason is recorded on the booking and in the audit trail.
    """
    try:
        interval = Interval(start, end)
    except NaiveDatetimeError as exc:
        raise BookingRefused(NaiveTime()) from exc
    if ctx.now.tzinfo is None:
        raise BookingRefused(NaiveTime())
    overriding = bool(override_reason and override_reason.strip() and ctx.actor_is_staff)
    # read before the transaction starts: write_transaction ends any open read transaction,
    # which would expire these objects and cost a reload each
    requester_id, organisation_id = requester.id, requester.organisation_id
    creator_id = ctx.actor_id if ctx.actor_id is not None else requester_id
    staff_booking = ctx.actor_is_staff
    with write_transaction(session):
        space = lock_space_row(session, space_id)
        if not space.bookable:
            raise BookingRefused(NotBookable())
        rules = rules_from(space, ZoneInfo(space.timezone))
        request = Request(interval=interval, units=units, attendees=attendees)
        holds = holds_in(session, space.id, interval)
        closures = closures_in(session, space, interval)
        future = 0
        if rules.max_future_bookings is not None:
            future = future_bookings_of(session, space.id, requester_id, ctx.now)
        refusal = check_request(
            rules,
            request,
            now=ctx.now,
            holds=holds,
            closures=closures,
            future_bookings=future,
            enforce_policy=not overriding,
        )
        if refusal is not None:
            space_object = session.get_one(Space, space_id)  # a refusal may take its time
            raise BookingRefused(with_nearest_free(session, space_object, refusal, request, ctx.now))
        overridden = policy_refusal(rules, request, now=ctx.now, future_bookings=future) if overriding else None
        needs_approval = rules.needs_approval(interval.duration) and not staff_booking
        booking = new_booking(
            space,
            interval,
            requester_id=requester_id,
            organisation_id=organisation_id,
            creator_id=creator_id,
            title=title,
            units=units,
            attendees=attendees,
            title_public=title_public,
            pending=needs_approval,
            now=ctx.now,
            series_id=series_id,
            override_reason=override_reason.strip() if overridden is not None and override_reason else None,
        )
        try:
            insert_booking(session, booking)
        except IntegrityError as exc:
            if not is_exclusion_violation(exc):
                raise
            raise BookingRefused(Conflict(blocking=(), left=0)) from exc
        audit(
            session,
            ctx,
            "request",
            booking=booking,
            to_status=booking.status,
            reason=booking.override_reason,
            details={"override": overridden.code} if overridden is not None else None,
        )
        touch_watermarks(session, booking, ctx.now)
        notify(session, booking, "requested" if needs_approval else "confirmed", ctx)
    return booking


def load_booking(session: Session, booking_id: int) -> Booking:
    booking = session.get(Booking, booking_id, populate_existing=True)
    if booking is None:
        raise LookupError(booking_id)
    return booking


def transition(
    session: Session,
    ctx: Context,
    booking: Booking,
    *,
    from_statuses: Sequence[str],
    to_status: str,
    reason: str | None,
    action: str,
) -> Booking:
    """Compare-and-swap: change state only from the state the decision was made on.

    The caller holds the space's lock already: every writer takes the space row first,
    then the booking, so two writers never wait on each other in opposite order.
    """
    before = booking.status
    result = session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.status.in_(from_statuses))
        .values(
            status=to_status,
            revision=Booking.revision + 1,
            updated_at=ctx.now,
            decided_by_id=ctx.actor_id,
            decided_at=ctx.now,
            decision_reason=reason,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(booking)
        raise AlreadyDecided(booking)
    session.refresh(booking)
    audit(session, ctx, action, booking=booking, from_status=before, to_status=to_status, reason=reason)
    touch_watermarks(session, booking, ctx.now)
    notify(session, booking, action, ctx, reason)
    return booking


def approve(session: Session, ctx: Context, booking_id: int) -> Booking:
    """Staff confirm a pending request after re-checking capacity and closures under the lock."""
    if not ctx.actor_is_staff:
        raise NotPermitted("only staff approve requests")
    with write_transaction(session):
        booking = load_booking(session, booking_id)
        space = lock_space(session, booking.space_id)
        if booking.status != Status.PENDING.value:
            raise AlreadyDecided(booking)
        interval = Interval(booking.start_at, booking.end_at)
        request = Request(interval=interval, units=booking.units, attendees=booking.attendees)
        closed = closure_refusal(interval, closures_in(session, space, interval))
        if closed is not None:
            raise BookingRefused(closed)
        conflict = capacity_refusal(space.rules(), request, holds_in(session, space.id, interval, exclude=booking.id))
        if conflict is not None:
            raise BookingRefused(conflict)
        return transition(
            session,
            ctx,
            booking,
            from_statuses=[Status.PENDING.value],
            to_status=Status.CONFIRMED.value,
            reason=None,
            action="confirmed",
        )


def reject(session: Session, ctx: Context, booking_id: int, reason: str) -> Booking:
    if not ctx.actor_is_staff:
        raise NotPermitted("only staff reject requests")
    if not reason or not reason.strip():
        raise ReasonRequired("a rejection needs a reason")
    with write_transaction(session):
        booking = load_booking(session, booking_id)
        lock_space(session, booking.space_id)
        return transition(
            session,
            ctx,
            booking,
            from_statuses=[Status.PENDING.value],
            to_status=Status.REJECTED.value,
            reason=reason.strip(),
            action="rejected",
        )


def cancel(session: Session, ctx: Context, booking_id: int, reason: str | None = None) -> Booking:
    """The requester cancels before the start; staff cancel any time, with a reason."""
    if ctx.actor_id is None:
        raise NotPermitted("anonymous users cannot cancel")
    with write_transaction(session):
        booking = load_booking(session, booking_id)
        lock_space(session, booking.space_id)
        own = booking.requester_id == ctx.actor_id
        if not ctx.actor_is_staff:
            if not own:
                raise NotPermitted("members cancel only their own bookings")
            if booking.start_at <= ctx.now and booking.holding:
                raise NotPermitted("the booking has already started")
        elif not own and not (reason and reason.strip()):
            raise ReasonRequired("staff cancelling someone's booking give a reason")
        if not booking.holding:
            raise AlreadyDecided(booking)
        return transition(
            session,
            ctx,
            booking,
            from_statuses=list(HOLDING),
            to_status=Status.CANCELLED.value,
            reason=reason.strip() if reason else None,
            action="cancelled",
        )


def expire_pending(session: Session, ctx: Context) -> int:
    """Pending requests whose start has passed undecided become expired. Safe to run often."""
    with write_transaction(session):
        stale = session.scalars(
            select(Booking).where(Booking.status == Status.PENDING.value, Booking.start_at <= ctx.now)
        ).all()
        for space_id in sorted({booking.space_id for booking in stale}):
            lock_space(session, space_id)
        for booking in stale:
            transition(
                session,
                ctx,
                booking,
                from_statuses=[Status.PENDING.value],
                to_status=Status.EXPIRED.value,
                reason=None,
                action="expired",
            )
        return len(stale)


# -- staff: closures ----------------------------------------------------------------------


class ClosureChanged(Exception):
    """Bookings appeared in the closure's range after staff previewed it: show them again."""

    def __init__(self, bookings: list[Booking]) -> None:
        super().__init__(f"{len(bookings)} bookings in the way changed since the preview")
        self.bookings = bookings


def holding_in_range(session: Session, location_id: int, space_id: int | None, window: Interval) -> list[Booking]:
    """Pending and confirmed bookings a closure over `window` would cancel, soonest first."""
    stmt = (
        select(Booking)
        .join(Space, Space.id == Booking.space_id)
        .where(
            Space.location_id == location_id,
            Booking.status.in_(HOLDING),
            Booking.start_at >= window.start - MAX_SPAN,
            Booking.start_at < window.end,
            Booking.end_at > window.start,
        )
        .order_by(Booking.start_at, Booking.id)
    )
    if space_id is not None:
        stmt = stmt.where(Booking.space_id == space_id)
    return list(session.scalars(stmt))


def close(
    session: Session,
    ctx: Context,
    *,
    location_id: int,
    space_id: int | None,
    start: datetime,
    end: datetime,
    reason: str,
    expected_booking_ids: set[int] | frozenset[int] = frozenset(),
) -> tuple[Closure, list[Booking]]:
    """Close one space (or, with `space_id` None, the whole station) and cancel what it covers.

    In one transaction under the locks of every affected space: no booking can slip in
    between the closure and the cancellations. Each cancellation is an ordinary staff
    cancellation with the closure's reason (audit event and listeners included, so owners
    get the cancellation mail). Bookings staff did not see in the preview
    (`expected_booking_ids`) refuse the whole closure with ClosureChanged.
    """
    if ctx.actor is None or not ctx.actor.is_staff:
        raise NotPermitted("only staff close spaces")
    if not reason or not reason.strip():
        raise ReasonRequired("a closure needs a reason members read")
    reason = reason.strip()
    window = Interval(start, end)
    with write_transaction(session):
        space_ids = (
            [space_id]
            if space_id is not None
            else list(session.scalars(select(Space.id).where(Space.location_id == location_id).order_by(Space.id)))
        )
        for locked in sorted(space_ids):  # always in id order: two closures never deadlock
            lock_space(session, locked)
        in_the_way = holding_in_range(session, location_id, space_id, window)
        unseen = [b for b in in_the_way if b.id not in expected_booking_ids]
        if unseen:
            raise ClosureChanged(in_the_way)
        closure = Closure(
            location_id=location_id,
            space_id=space_id,
            start_at=window.start,
            end_at=window.end,
            reason=reason,
            created_by_id=ctx.actor.id,
            created_at=ctx.now,
        )
        session.add(closure)
        session.flush()
        audit(
            session,
            ctx,
            "closure",
            space_id=space_id,
            reason=reason,
            details={
                "closure_id": closure.id,
                "start": window.start.isoformat(),
                "end": window.end.isoformat(),
                "cancelled": [b.id for b in in_the_way],
            },
        )
        for booking in in_the_way:
            transition(
                session,
                ctx,
                booking,
                from_statuses=list(HOLDING),
                to_status=Status.CANCELLED.value,
                reason=reason,
                action="cancelled",
            )
        # every space the closure covers shows it (week pages, feeds' busy time): move each
        # one's watermark, not only those of the bookings it cancelled
        for touched in space_ids:
            touch_space(session, touched, ctx.now)
    return closure, in_the_way
