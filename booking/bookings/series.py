"""Recurring bookings: preview a series, book its free occurrences as one request, decide,
cancel and move them.

Each occurrence is an ordinary Booking row with `series_id` set, so capacity, feeds,
reports, reminders and single cancellations need no special case. This module only
adds what a series needs on top, and writes through the same lock, compare-and-swap
transitions, audit events and listeners as `services`.

The flow for a page:

1. `preview(...)` → a SeriesPreview: every occurrence free or refused (with what is in
   the way and the nearest free time), the dates the rule skipped and why, whether the
   bookings will need approval, and a `fingerprint` of the free occurrences.
2. The person confirms "book the N free ones"; the page sends the fingerprint back to
   `request_series(..., expected_fingerprint=...)`, which recomputes everything under the
   space's lock and books exactly what the person saw — or raises PreviewStale with a
   fresh preview and writes nothing.

Decisions made here, for the pages and for whoever reads this later:

- Policy limits apply per occurrence, as for single bookings; "max future bookings per
  member" counts every occurrence (they are bookings like any other, and
  `future_bookings_of` counts them that way afterwards too). So on a space allowing 5,
  a member holding 1 can book the first 4 occurrences; the rest are refused with
  TooManyFutureBookings in the preview. There is no staff override for a series.
- An occurrence refused because of the series' own earlier occurrence (a seat space, or
  whole-day bookings longer than the repeat) names it in `Conflict.blocking` as the
  negative occurrence number: -1 is occurrence 1 of this preview. Positive ids are bookings.
- Moving one occurrence detaches it: `series_id` is cleared (the audit event keeps the
  former series id), so "cancel all", series approval and the series summary no longer
  include it. Its UID (the booking id) is kept and its SEQUENCE (revision) goes up.
- "following" and "all" act on occurrences that have not started yet; the past stays as
  history. "this" behaves exactly like `services.cancel`.
- Series approval acts on pending occurrences that have not started; pending ones whose
  start has passed are left to `booking expire-pending`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, case, func, select, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from booking.auth.models import User
from booking.bookings.models import HOLDING, Booking, Series, Status
from booking.bookings.services import (
    AlreadyDecided,
    BookingRefused,
    Context,
    NotPermitted,
    ReasonRequired,
    audit,
    closures_in,
    future_bookings_of,
    holds_in,
    is_exclusion_violation,
    load_booking,
    lock_space,
    new_booking,
    notify,
    touch_watermarks,
    transition,
)
from booking.db import UTCDateTime, write_transaction
from booking.domain.availability import nearest_free
from booking.domain.capacity import Hold
from booking.domain.check import ClosureSpan, Request, capacity_refusal, check_request, closure_refusal
from booking.domain.intervals import Interval, NaiveDatetimeError
from booking.domain.recurrence import Cut, Recurrence, Skipped, expand
from booking.domain.refusals import Conflict, NaiveTime, NotBookable, NothingFree, Refusal
from booking.domain.rules import SpaceRules
from booking.spaces.models import Space

Scope = Literal["this", "following", "all"]
SCOPES: tuple[Scope, ...] = ("this", "following", "all")


class PreviewStale(Exception):
    """What is free changed between the preview and the submit; nothing was written.

    `preview` is the situation now, to show again.
    """

    def __init__(self, preview: SeriesPreview) -> None:
        super().__init__("the series preview is out of date")
        self.preview = preview


@dataclass(frozen=True)
class OccurrencePreview:
    number: int  # 1-based, in date order among the expansion's occurrences
    interval: Interval  # in the location's time zone
    refusal: Refusal | None = None  # None: free; a Conflict carries `nearest_free`

    @property
    def free(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True)
class SeriesPreview:
    """Everything a person needs to see before booking a series; nothing has been written."""

    space_id: int
    rule: Recurrence
    first_start: datetime
    first_end: datetime
    units: int
    attendees: int
    occurrences: tuple[OccurrencePreview, ...]
    skipped: tuple[Skipped, ...]  # closed days, months without the day
    cut: Cut | None  # the 52 limit or the booking horizon stopped the series early
    needs_approval: bool  # the free occurrences would be pending, for staff to decide
    fingerprint: str  # send back to request_series

    @property
    def free(self) -> tuple[OccurrencePreview, ...]:
        return tuple(o for o in self.occurrences if o.free)

    @property
    def refused(self) -> tuple[OccurrencePreview, ...]:
        return tuple(o for o in self.occurrences if not o.free)


@dataclass(frozen=True)
class SeriesDecision:
    """What a series approval did: occurrences confirmed, and those left pending with why."""

    decided: list[Booking]
    left_pending: list[tuple[Booking, Refusal]]


@dataclass(frozen=True)
class SeriesSummary:
    """One line of "My bookings" for a series."""

    series_id: int
    space_id: int
    rule: Recurrence
    first_start: datetime | None  # the wall-clock time of the series, for "Tuesdays 09:00–10:00"
    first_end: datetime | None
    next_start: datetime | None  # the next occurrence still holding and not over
    left: int  # occurrences still holding and not over
    total: int  # every occurrence the series booked, whatever became of it (moved ones excepted)


# -- preview ------------------------------------------------------------------------------


def _fingerprint(space_id: int, units: int, attendees: int, needs_approval: bool, free: Sequence[Interval]) -> str:
    text = "|".join(
        [str(space_id), str(units), str(attendees), str(needs_approval)]
        + [f"{i.start.timestamp():.0f}-{i.end.timestamp():.0f}" for i in free]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _search_span(space: Space) -> timedelta:
    # as services.with_nearest_free: a week around a slot, two months around whole days
    return timedelta(days=60) if space.whole_days else timedelta(days=7)


def _compute_preview(
    session: Session,
    space: Space,
    *,
    requester_id: int,
    first_start: datetime,
    first_end: datetime,
    rule: Recurrence,
    units: int,
    attendees: int,
    now: datetime,
    actor_is_staff: bool,
) -> SeriesPreview:
    rules = space.rules()
    duration = first_end - first_start
    expansion = expand(rule, first_start, duration, rules, now)
    occurrences: list[OccurrencePreview] = []
    free: list[Interval] = []
    if expansion.occurrences:
        search = _search_span(space)
        window = Interval(expansion.occurrences[0].start - search, expansion.occurrences[-1].end + search)
        # once for the whole span: one bounded query each, however long the series
        holds = holds_in(session, space.id, window)
        closures = closures_in(session, space, window)
        future = 0
        if rules.max_future_bookings is not None:
            future = future_bookings_of(session, space.id, requester_id, now)
        own: list[Hold] = []  # this series' free occurrences so far hold capacity too
        for number, interval in enumerate(expansion.occurrences, start=1):
            request = Request(interval=interval, units=units, attendees=attendees)
            refusal = check_request(
                rules,
                request,
                now=now,
                holds=[*holds, *own],
                closures=closures,
                future_bookings=future + len(own),
            )
            if refusal is None:
                own.append(Hold(booking_id=-number, interval=interval, units=units, requester_id=requester_id))
                free.append(interval)
            elif isinstance(refusal, Conflict):
                refusal = _with_nearest(rules, request, now, search, [*holds, *own], closures, refusal)
            occurrences.append(OccurrencePreview(number=number, interval=interval, refusal=refusal))
    needs_approval = rules.needs_approval(duration) and not actor_is_staff
    tz = rules.tz
    return SeriesPreview(
        space_id=space.id,
        rule=rule,
        first_start=first_start.astimezone(tz),
        first_end=first_end.astimezone(tz),
        units=units,
        attendees=attendees,
        occurrences=tuple(occurrences),
        skipped=expansion.skipped,
        cut=expansion.cut,
        needs_approval=needs_approval,
        fingerprint=_fingerprint(space.id, units, attendees, needs_approval, free),
    )


def _with_nearest(
    rules: SpaceRules,
    request: Request,
    now: datetime,
    search: timedelta,
    holds: Sequence[Hold],
    closures: Sequence[ClosureSpan],
    conflict: Conflict,
) -> Conflict:
    """The conflict with the nearest free time, from holds already loaded (no query per occurrence)."""
    near = Interval(request.interval.start - search - request.interval.duration, request.interval.end + search)
    nearest = nearest_free(
        rules,
        request,
        now=now,
        holds=[h for h in holds if h.interval.overlaps(near)],
        closures=[c for c in closures if c.interval.overlaps(near)],
        search=search,
    )
    return Conflict(blocking=conflict.blocking, left=conflict.left, nearest_free=nearest)


def _interval_or_refuse(first_start: datetime, first_end: datetime, now: datetime) -> None:
    try:
        Interval(first_start, first_end)
    except NaiveDatetimeError as exc:
        raise BookingRefused(NaiveTime()) from exc
    if now.tzinfo is None:
        raise BookingRefused(NaiveTime())


def preview(
    session: Session,
    ctx: Context,
    *,
    space_id: int,
    requester: User,
    first_start: datetime,
    first_end: datetime,
    rule: Recurrence,
    units: int = 1,
    attendees: int = 1,
) -> SeriesPreview:
    """Expand the rule and check every occurrence against the space as it is now. Writes nothing.

    Raises RecurrenceError (a ValueError) for a malformed rule, BookingRefused for a naive
    time or a space that cannot be booked, LookupError for an unknown space.
    """
    _interval_or_refuse(first_start, first_end, ctx.now)
    space = session.get(Space, space_id)
    if space is None:
        raise LookupError(space_id)
    if not space.bookable:
        raise BookingRefused(NotBookable())
    return _compute_preview(
        session,
        space,
        requester_id=requester.id,
        first_start=first_start,
        first_end=first_end,
        rule=rule,
        units=units,
        attendees=attendees,
        now=ctx.now,
        actor_is_staff=ctx.actor_is_staff,
    )


# -- booking a series ---------------------------------------------------------------------


def request_series(
    session: Session,
    ctx: Context,
    *,
    space_id: int,
    requester: User,
    first_start: datetime,
    first_end: datetime,
    rule: Recurrence,
    title: str,
    expected_fingerprint: str,
    units: int = 1,
    attendees: int = 1,
    title_public: bool = False,
) -> Series:
    """Book every free occurrence of the preview the person saw, in one transaction.

    Under the space's lock the preview is computed again; if its free occurrences are not
    the ones `expected_fingerprint` describes, PreviewStale (with the new preview) is
    raised and nothing is written. Otherwise: the Series row, one Booking per free
    occurrence (pending when the space wants approval and the actor is not staff), an
    audit event and the listeners (mail) for each.
    """
    _interval_or_refuse(first_start, first_end, ctx.now)
    # read before the transaction starts (see services.request_booking)
    requester_id, organisation_id = requester.id, requester.organisation_id
    creator_id = ctx.actor_id if ctx.actor_id is not None else requester_id
    with write_transaction(session):
        space = lock_space(session, space_id)
        if not space.bookable:
            raise BookingRefused(NotBookable())
        current = _compute_preview(
            session,
            space,
            requester_id=requester_id,
            first_start=first_start,
            first_end=first_end,
            rule=rule,
            units=units,
            attendees=attendees,
            now=ctx.now,
            actor_is_staff=ctx.actor_is_staff,
        )
        if current.fingerprint != expected_fingerprint:
            raise PreviewStale(current)
        if not current.free:
            raise BookingRefused(NothingFree())
        series = Series(
            space_id=space.id,
            requester_id=requester_id,
            rule=_stored_rule(current),
            created_at=ctx.now,
        )
        session.add(series)
        session.flush()
        pending = current.needs_approval
        bookings = [
            new_booking(
                space,
                occurrence.interval,
                requester_id=requester_id,
                organisation_id=organisation_id,
                creator_id=creator_id,
                title=title,
                units=units,
                attendees=attendees,
                title_public=title_public,
                pending=pending,
                now=ctx.now,
                series_id=series.id,
            )
            for occurrence in current.free
        ]
        session.add_all(bookings)
        try:
            session.flush()
        except IntegrityError as exc:  # PostgreSQL's exclusion constraint, behind the lock
            if not is_exclusion_violation(exc):
                raise
            raise BookingRefused(Conflict(blocking=(), left=0)) from exc
        for booking in bookings:
            audit(session, ctx, "request", booking=booking, to_status=booking.status, details={"series_id": series.id})
        touch_watermarks(session, bookings[0], ctx.now)  # one space, one requester: one watermark move each
        for booking in bookings:
            notify(session, booking, "requested" if pending else "confirmed", ctx)
    return series


def _stored_rule(current: SeriesPreview) -> dict[str, Any]:
    """The Series row's JSON: the rule, the first occurrence's local times, and what was not booked."""
    return {
        "recurrence": current.rule.as_dict(),
        "first_start": current.first_start.isoformat(),
        "first_end": current.first_end.isoformat(),
        "units": current.units,
        "attendees": current.attendees,
        "not_booked": [
            {"number": o.number, "start": o.interval.start.isoformat(), "code": o.refusal.code}
            for o in current.refused
            if o.refusal is not None
        ],
    }


def stored_recurrence(series: Series) -> Recurrence:
    return Recurrence.from_dict(series.rule["recurrence"])


# -- staff decisions ----------------------------------------------------------------------


def _series_for_update(session: Session, series_id: int) -> tuple[Series, Space]:
    series = session.get(Series, series_id, populate_existing=True)
    if series is None:
        raise LookupError(series_id)
    return series, lock_space(session, series.space_id)


def _pending_not_started(session: Session, series_id: int, now: datetime) -> list[Booking]:
    stmt = (
        select(Booking)
        .where(Booking.series_id == series_id, Booking.status == Status.PENDING.value, Booking.start_at > now)
        .order_by(Booking.start_at, Booking.id)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(stmt))


def approve_series(session: Session, ctx: Context, series_id: int) -> SeriesDecision:
    """Confirm every pending occurrence that has not started, each re-checked under the lock.

    An occurrence that no longer fits (a closure, or capacity lowered since) stays
    pending and comes back in `left_pending` with its refusal; the rest are confirmed,
    each with its own audit event, SEQUENCE bump and mail.
    """
    if not ctx.actor_is_staff:
        raise NotPermitted("only staff approve requests")
    with write_transaction(session):
        series, space = _series_for_update(session, series_id)
        pending = _pending_not_started(session, series.id, ctx.now)
        decision = SeriesDecision(decided=[], left_pending=[])
        if not pending:
            return decision
        window = Interval(pending[0].start_at, max(b.end_at for b in pending))
        holds = holds_in(session, space.id, window)
        closures = closures_in(session, space, window)
        rules = space.rules()
        for booking in pending:
            interval = Interval(booking.start_at, booking.end_at)
            request = Request(interval=interval, units=booking.units, attendees=booking.attendees)
            refusal: Refusal | None = closure_refusal(interval, closures) or capacity_refusal(
                rules, request, [h for h in holds if h.booking_id != booking.id]
            )
            if refusal is not None:
                decision.left_pending.append((booking, refusal))
                continue
            decision.decided.append(
                transition(
                    session,
                    ctx,
                    booking,
                    from_statuses=[Status.PENDING.value],
                    to_status=Status.CONFIRMED.value,
                    reason=None,
                    action="confirmed",
                )
            )
        return decision


def reject_series(session: Session, ctx: Context, series_id: int, reason: str) -> list[Booking]:
    """Reject every pending occurrence that has not started, with one reason for all."""
    if not ctx.actor_is_staff:
        raise NotPermitted("only staff reject requests")
    if not reason or not reason.strip():
        raise ReasonRequired("a rejection needs a reason")
    with write_transaction(session):
        series, _ = _series_for_update(session, series_id)
        return [
            transition(
                session,
                ctx,
                booking,
                from_statuses=[Status.PENDING.value],
                to_status=Status.REJECTED.value,
                reason=reason.strip(),
                action="rejected",
            )
            for booking in _pending_not_started(session, series.id, ctx.now)
        ]


# -- cancelling and moving ----------------------------------------------------------------


def cancel_occurrences(
    session: Session,
    ctx: Context,
    booking_id: int,
    scope: Scope,
    reason: str | None = None,
) -> list[Booking]:
    """Cancel this occurrence, this and the following ones, or all of its series.

    "this" is `services.cancel` exactly (the requester before the start; staff any time,
    with a reason when it is someone else's). "following" and "all" cancel the series'
    pending and confirmed occurrences that have not started yet — from this one's start
    on, or all of them — and leave the past as it was. A booking outside any series
    (never in one, or moved out of one) has only itself to cancel, whatever the scope.
    Returns the bookings cancelled, in time order; each has its audit event and mail.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope is one of {', '.join(SCOPES)}")
    if ctx.actor_id is None:
        raise NotPermitted("anonymous users cannot cancel")
    reason = reason.strip() if reason and reason.strip() else None
    with write_transaction(session):
        booking = load_booking(session, booking_id)
        lock_space(session, booking.space_id)
        own = booking.requester_id == ctx.actor_id
        if not ctx.actor_is_staff and not own:
            raise NotPermitted("members cancel only their own bookings")
        if ctx.actor_is_staff and not own and reason is None:
            raise ReasonRequired("staff cancelling someone's booking give a reason")
        if scope == "this" or booking.series_id is None:
            if not ctx.actor_is_staff and booking.start_at <= ctx.now and booking.holding:
                raise NotPermitted("the booking has already started")
            if not booking.holding:
                raise AlreadyDecided(booking)
            targets = [booking]
        else:
            stmt = select(Booking).where(
                Booking.series_id == booking.series_id,
                Booking.status.in_(HOLDING),
                Booking.start_at > ctx.now,
            )
            if scope == "following":
                stmt = stmt.where(Booking.start_at >= booking.start_at)
            stmt = stmt.order_by(Booking.start_at, Booking.id).execution_options(populate_existing=True)
            targets = list(session.scalars(stmt))
        return [
            transition(
                session,
                ctx,
                target,
                from_statuses=list(HOLDING),
                to_status=Status.CANCELLED.value,
                reason=reason,
                action="cancelled",
            )
            for target in targets
        ]


def move_occurrence(
    session: Session,
    ctx: Context,
    booking_id: int,
    new_start: datetime,
    new_end: datetime,
    reason: str | None = None,
) -> Booking:
    """Give one booking (an occurrence, or any single booking) a new time, detaching it from its series.

    Checked under the lock like a new request, without counting the booking itself:
    shape, closures, policy and capacity. It keeps its id (the calendar UID) and its
    revision (SEQUENCE) goes up, so calendars move the event. Its status is decided like a
    new request's: pending if the new time needs approval and the actor is not staff,
    otherwise confirmed. Audited as "moved" with the times before and after.
    Members move their own bookings before they start; staff move any.
    """
    if ctx.actor_id is None:
        raise NotPermitted("anonymous users cannot move bookings")
    try:
        interval = Interval(new_start, new_end)
    except NaiveDatetimeError as exc:
        raise BookingRefused(NaiveTime()) from exc
    with write_transaction(session):
        booking = load_booking(session, booking_id)
        space = lock_space(session, booking.space_id)
        if not ctx.actor_is_staff:
            if booking.requester_id != ctx.actor_id:
                raise NotPermitted("members move only their own bookings")
            if booking.start_at <= ctx.now and booking.holding:
                raise NotPermitted("the booking has already started")
        if not booking.holding:
            raise AlreadyDecided(booking)
        rules = space.rules()
        request = Request(interval=interval, units=booking.units, attendees=booking.attendees)
        search = _search_span(space)
        window = Interval(interval.start - search, interval.end + search)
        holds = holds_in(session, space.id, window, exclude=booking.id)
        closures = closures_in(session, space, window)
        future = 0
        if rules.max_future_bookings is not None:
            future = future_bookings_of(session, space.id, booking.requester_id, ctx.now)
            if booking.end_at > ctx.now:
                future -= 1  # itself
        refusal = check_request(rules, request, now=ctx.now, holds=holds, closures=closures, future_bookings=future)
        if isinstance(refusal, Conflict):
            refusal = _with_nearest(rules, request, ctx.now, search, holds, closures, refusal)
        if refusal is not None:
            raise BookingRefused(refusal)
        before_status, before = booking.status, Interval(booking.start_at, booking.end_at)
        former_series = booking.series_id
        pending = rules.needs_approval(interval.duration) and not ctx.actor_is_staff
        status = Status.PENDING.value if pending else Status.CONFIRMED.value
        decision: dict[str, Any] = {}
        if status != before_status:
            decision = {"decided_by_id": None if pending else ctx.actor_id, "decided_at": None if pending else ctx.now}
        try:
            result = session.execute(
                update(Booking)
                .where(Booking.id == booking.id, Booking.status == before_status, Booking.revision == booking.revision)
                .values(
                    start_at=interval.start,
                    end_at=interval.end,
                    series_id=None,
                    status=status,
                    revision=Booking.revision + 1,
                    updated_at=ctx.now,
                    **decision,
                )
                .execution_options(synchronize_session=False)
            )
        except IntegrityError as exc:
            if not is_exclusion_violation(exc):
                raise
            raise BookingRefused(Conflict(blocking=(), left=0)) from exc
        if result.rowcount != 1:  # type: ignore[attr-defined]
            session.refresh(booking)
            raise AlreadyDecided(booking)
        session.refresh(booking)
        details: dict[str, object] = {
            "from": {"start": before.start.isoformat(), "end": before.end.isoformat()},
            "to": {"start": booking.start_at.isoformat(), "end": booking.end_at.isoformat()},
        }
        if former_series is not None:
            details["series_id"] = former_series
        audit(
            session,
            ctx,
            "moved",
            booking=booking,
            from_status=before_status,
            to_status=status,
            reason=reason.strip() if reason and reason.strip() else None,
            details=details,
        )
        touch_watermarks(session, booking, ctx.now)
        # the mail listener knows no "moved" yet: an updated invitation (same UID, higher
        # SEQUENCE) is what a "confirmed" mail sends, and a new request is what staff review
        notify(session, booking, "requested" if pending else "confirmed", ctx, reason)
        return booking


# -- reading ------------------------------------------------------------------------------


def occurrences_of(session: Session, series_id: int) -> list[Booking]:
    """Every occurrence still in a series, in time order, whatever its status."""
    stmt = select(Booking).where(Booking.series_id == series_id).order_by(Booking.start_at, Booking.id)
    return list(session.scalars(stmt))


def series_summary(
    session: Session, requester_id: int, now: datetime, *, include_finished: bool = False
) -> list[SeriesSummary]:
    """A requester's series for "My bookings", soonest next occurrence first, in one query.

    Without `include_finished`, only series with an occurrence still to come.
    """
    upcoming = and_(Booking.status.in_(HOLDING), Booking.end_at > now)
    per_series = (
        select(
            Booking.series_id.label("series_id"),
            func.count(Booking.id).label("total"),
            func.count(case((upcoming, Booking.id))).label("remaining"),
            type_coerce(func.min(case((upcoming, Booking.start_at))), UTCDateTime).label("next_start"),
        )
        .where(Booking.requester_id == requester_id, Booking.series_id.is_not(None))
        .group_by(Booking.series_id)
        .subquery()
    )
    stmt = (
        select(Series, per_series.c.total, per_series.c.remaining, per_series.c.next_start)
        .join(per_series, per_series.c.series_id == Series.id)
        .where(Series.requester_id == requester_id)
        .order_by(per_series.c.next_start.is_(None), per_series.c.next_start, Series.id)
    )
    if not include_finished:
        stmt = stmt.where(per_series.c.remaining > 0)
    summaries = []
    for series, total, remaining, next_start in session.execute(stmt):
        stored = series.rule or {}
        first_start, first_end = stored.get("first_start"), stored.get("first_end")
        summaries.append(
            SeriesSummary(
                series_id=series.id,
                space_id=series.space_id,
                rule=Recurrence.from_dict(stored["recurrence"]),
                first_start=datetime.fromisoformat(first_start) if first_start else None,
                first_end=datetime.fromisoformat(first_end) if first_end else None,
                next_start=next_start,
                left=remaining,
                total=total,
            )
        )
    return summaries
