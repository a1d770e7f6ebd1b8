"""Recurring bookings on a real database: preview, book the free ones, decide, cancel, move."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from booking.bookings import series as series_service
from booking.bookings import services
from booking.bookings.models import HOLDING, AuditEvent, Booking, OutgoingMail, Series
from booking.domain import refusals
from booking.domain.intervals import Interval
from booking.domain.recurrence import Frequency, Recurrence
from booking.extensions import db
from booking.spaces.models import Closure
from tests.bookings.test_concurrency import run_together
from tests.conftest import shanghai

WEEKLY_10 = Recurrence(Frequency.WEEKLY, weekdays=(1,), count=10)  # Tuesdays, 1 Dec 2026 to 2 Feb 2027


def tue(n: int, hour: int, minute: int = 0) -> datetime:
    """Occurrence n (from 1) of the Tuesday series: Tuesday 1 December 2026 plus n-1 weeks."""
    return shanghai(2026, 12, 1, hour, minute) + timedelta(weeks=n - 1)


@pytest.fixture
def room(space: Any) -> Any:
    """The meeting room, with room for a ten-week series."""
    return space("meeting-room", max_future_bookings=None, max_advance_days=90)


def preview(space: Any, requester: Any, now: datetime, **fields: Any) -> series_service.SeriesPreview:
    actor = fields.pop("actor", requester)
    fields.setdefault("rule", WEEKLY_10)
    fields.setdefault("first_start", tue(1, 10))
    fields.setdefault("first_end", fields["first_start"] + timedelta(hours=1))
    return series_service.preview(
        db.session, services.context(actor, now=now), space_id=space.id, requester=requester, **fields
    )


def request(space: Any, requester: Any, now: datetime, fingerprint: str, **fields: Any) -> Series:
    actor = fields.pop("actor", requester)
    fields.setdefault("rule", WEEKLY_10)
    fields.setdefault("first_start", tue(1, 10))
    fields.setdefault("first_end", fields["first_start"] + timedelta(hours=1))
    fields.setdefault("title", "每周例会")
    return series_service.request_series(
        db.session,
        services.context(actor, now=now),
        space_id=space.id,
        requester=requester,
        expected_fingerprint=fingerprint,
        **fields,
    )


def book_series(space: Any, requester: Any, now: datetime, **fields: Any) -> Series:
    seen = preview(space, requester, now, **{k: v for k, v in fields.items() if k not in ("title", "title_public")})
    return request(space, requester, now, seen.fingerprint, **fields)


def occurrences(series_id: int) -> list[Booking]:
    db.session.expire_all()
    return series_service.occurrences_of(db.session, series_id)


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def actions(booking_id: int) -> list[str]:
    return list(
        db.session.scalars(select(AuditEvent.action).where(AuditEvent.booking_id == booking_id).order_by(AuditEvent.id))
    )


# -- preview and request ------------------------------------------------------------------


def test_a_conflict_is_shown_and_the_free_ones_are_booked(room, member, make_user, book, now):
    taken = book(room, make_user(), tue(4, 10), tue(4, 11))
    seen = preview(room, member, now)
    assert [o.number for o in seen.free] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    (blocked,) = seen.refused
    assert blocked.number == 4
    assert isinstance(blocked.refusal, refusals.Conflict)
    assert blocked.refusal.blocking == (taken.id,)
    assert blocked.refusal.nearest_free == Interval(tue(4, 11), tue(4, 12))
    assert not seen.needs_approval
    assert (count(Series), count(Booking)) == (0, 1), "a preview writes nothing"

    created = request(room, member, now, seen.fingerprint, title="周二例会")
    booked = occurrences(created.id)
    assert len(booked) == 9
    assert [b.start_at for b in booked] == [o.interval.start for o in seen.free]
    assert all(b.start_at.tzinfo is UTC for b in booked)
    assert {(b.status, b.revision, b.exclusive, b.title, b.organisation_id, b.requester_id) for b in booked} == {
        ("confirmed", 0, True, "周二例会", member.organisation_id, member.id)
    }
    assert all(actions(b.id) == ["request"] for b in booked)
    mailed = db.session.scalars(select(OutgoingMail.booking_id).where(OutgoingMail.booking_id != taken.id)).all()
    assert sorted(mailed) == [b.id for b in booked]  # one confirmation each, queued in the same transaction
    stored = db.session.get(Series, created.id)
    assert series_service.stored_recurrence(stored) == WEEKLY_10
    assert stored.rule["first_start"] == "2026-12-01T10:00:00+08:00"
    assert stored.rule["not_booked"] == [{"number": 4, "start": tue(4, 10).isoformat(), "code": "conflict"}]
    assert (stored.space_id, stored.requester_id) == (room.id, member.id)


def test_a_slot_taken_after_the_preview_makes_the_submit_stale(room, member, make_user, book, now):
    seen = preview(room, member, now)
    assert len(seen.free) == 10
    taken = book(room, make_user(), tue(7, 10), tue(7, 11))
    with pytest.raises(series_service.PreviewStale) as exc_info:
        request(room, member, now, seen.fingerprint)
    fresh = exc_info.value.preview
    assert [o.number for o in fresh.refused] == [7]
    assert fresh.refused[0].refusal.blocking == (taken.id,)
    assert fresh.fingerprint != seen.fingerprint
    db.session.rollback()
    assert (count(Series), count(Booking), count(AuditEvent)) == (0, 1, 1), "nothing of the series was written"
    # booking what is free now, as the person saw it again, goes through
    created = request(room, member, now, fresh.fingerprint)
    assert len(occurrences(created.id)) == 9


def test_max_future_bookings_counts_every_occurrence(space, member, book, now):
    room = space("meeting-room")  # seeded: at most 5 future bookings per member, 30 days ahead
    book(room, member, shanghai(2026, 12, 1, 15), shanghai(2026, 12, 1, 16))
    seen = preview(room, member, now, rule=Recurrence(Frequency.DAILY, count=8))
    # 1–4 and 7–8 December: the weekend is closed and said so; the member may hold 4 more
    assert [s.day.day for s in seen.skipped] == [5, 6]
    assert len(seen.free) == 4
    assert [type(o.refusal) for o in seen.refused] == [refusals.TooManyFutureBookings] * 2


def test_a_series_cannot_overbook_itself(space, member, staff, now):
    area = space("exhibition", max_future_bookings=None)
    first = shanghai(2026, 12, 14)
    seen = preview(
        area,
        member,
        now,
        actor=staff,
        rule=Recurrence(Frequency.DAILY, count=3),
        first_start=first,
        first_end=first + timedelta(days=3),
    )
    assert [o.number for o in seen.free] == [1]
    assert [o.refusal.blocking for o in seen.refused] == [(-1,), (-1,)]  # occurrence 1 of this series
    assert not seen.needs_approval  # staff booking for a member


def test_the_preview_reads_the_space_once_however_long_the_series(app, room, member, now):
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    preview(room, member, now)  # loads the space and its location into the session first
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        preview(room, member, now, rule=Recurrence(Frequency.WEEKLY, weekdays=(1,), count=2))
        short = len(statements)
        statements.clear()
        preview(room, member, now, rule=Recurrence(Frequency.WEEKLY, weekdays=(1, 2, 3), count=30))
        long = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert long == short
    assert short <= 3  # holds, closures, nothing per occurrence


def test_nothing_free_is_refused(room, member, make_user, book, now):
    book(room, make_user(), tue(1, 10), tue(1, 11))
    rule = Recurrence(Frequency.WEEKLY, weekdays=(1,), count=1)
    seen = preview(room, member, now, rule=rule)
    with pytest.raises(services.BookingRefused) as exc_info:
        request(room, member, now, seen.fingerprint, rule=rule)
    assert isinstance(exc_info.value.refusal, refusals.NothingFree)


# -- approval -----------------------------------------------------------------------------


def test_a_series_needing_approval_is_approved_in_one_call(space, member, staff, now):
    room = space("meeting-room", max_future_bookings=None)  # over 3 hours needs approval
    rule = Recurrence(Frequency.WEEKLY, weekdays=(1,), count=4)
    seen = preview(room, member, now, rule=rule, first_start=tue(1, 9), first_end=tue(1, 13))
    assert seen.needs_approval
    created = request(room, member, now, seen.fingerprint, rule=rule, first_start=tue(1, 9), first_end=tue(1, 13))
    assert [b.status for b in occurrences(created.id)] == ["pending"] * 4
    # a closure written behind the service's back (services.close would cancel it): no longer fits
    db.session.add(
        Closure(location_id=room.location_id, space_id=room.id, start_at=tue(3, 8), end_at=tue(3, 18), reason="检修")
    )
    db.session.commit()

    with pytest.raises(services.NotPermitted):
        series_service.approve_series(db.session, services.context(member, now=now), created.id)
    decision = series_service.approve_series(db.session, services.context(staff, now=now), created.id)
    assert [b.start_at for b in decision.decided] == [tue(1, 9), tue(2, 9), tue(4, 9)]
    ((left, why),) = decision.left_pending
    assert left.start_at == tue(3, 9)
    assert isinstance(why, refusals.Closed)
    booked = occurrences(created.id)
    assert [(b.status, b.revision) for b in booked] == [
        ("confirmed", 1),
        ("confirmed", 1),
        ("pending", 0),
        ("confirmed", 1),
    ]
    assert actions(booked[0].id) == ["request", "confirmed"]

    rejected = series_service.reject_series(db.session, services.context(staff, now=now), created.id, " 当天检修 ")
    assert [b.start_at for b in rejected] == [tue(3, 9)]
    assert occurrences(created.id)[2].decision_reason == "当天检修"
    with pytest.raises(services.ReasonRequired):
        series_service.reject_series(db.session, services.context(staff, now=now), created.id, " ")


# -- cancelling ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "from_occurrence", "cancel_at", "cancelled"),
    [
        pytest.param("this", 5, None, [5], id="this"),
        pytest.param("following", 5, None, [5, 6, 7, 8, 9, 10], id="following"),
        pytest.param("all", 5, None, list(range(1, 11)), id="all"),
        # on 15 December at noon, occurrences 1–3 are history and stay as they were
        pytest.param("all", 5, tue(3, 12), [4, 5, 6, 7, 8, 9, 10], id="all-mid-series"),
        pytest.param("following", 2, tue(3, 12), [4, 5, 6, 7, 8, 9, 10], id="following-from-the-past"),
    ],
)
def test_cancel_scopes(room, member, now, scope, from_occurrence, cancel_at, cancelled):
    created = book_series(room, member, now)
    booked = occurrences(created.id)
    ctx = services.context(member, now=cancel_at or now)
    done = series_service.cancel_occurrences(db.session, ctx, booked[from_occurrence - 1].id, scope)
    assert [booked.index(b) + 1 for b in done] == cancelled
    after = occurrences(created.id)
    assert [n for n, b in enumerate(after, start=1) if b.status == "cancelled"] == cancelled
    assert all(b.holding for n, b in enumerate(after, start=1) if n not in cancelled)
    for n in cancelled:
        assert after[n - 1].revision == 1
        assert actions(after[n - 1].id) == ["request", "cancelled"]


def test_cancel_permissions(room, member, make_user, staff, now):
    created = book_series(room, member, now)
    first = occurrences(created.id)[0]
    with pytest.raises(services.NotPermitted):
        series_service.cancel_occurrences(db.session, services.context(make_user(), now=now), first.id, "all")
    with pytest.raises(services.ReasonRequired):
        series_service.cancel_occurrences(db.session, services.context(staff, now=now), first.id, "all")
    with pytest.raises(services.NotPermitted, match="started"):
        series_service.cancel_occurrences(db.session, services.context(member, now=tue(1, 10, 30)), first.id, "this")
    done = series_service.cancel_occurrences(
        db.session, services.context(staff, now=now), first.id, "all", reason="场地改造"
    )
    assert len(done) == 10
    assert {b.decision_reason for b in done} == {"场地改造"}
    with pytest.raises(services.AlreadyDecided):
        series_service.cancel_occurrences(db.session, services.context(member, now=now), first.id, "this")


# -- moving one occurrence ----------------------------------------------------------------


def test_moving_an_occurrence_detaches_it(room, member, make_user, book, now):
    created = book_series(room, member, now)
    second, third = occurrences(created.id)[1:3]
    moved = series_service.move_occurrence(
        db.session, services.context(member, now=now), second.id, tue(2, 14), tue(2, 15)
    )
    assert (moved.id, moved.series_id, moved.revision, moved.status) == (second.id, None, 1, "confirmed")
    assert (moved.start_at, moved.end_at) == (tue(2, 14), tue(2, 15))
    event_ = db.session.scalars(
        select(AuditEvent).where(AuditEvent.booking_id == second.id, AuditEvent.action == "moved")
    ).one()
    assert event_.details == {
        "from": {"start": tue(2, 10).astimezone(UTC).isoformat(), "end": tue(2, 11).astimezone(UTC).isoformat()},
        "to": {"start": tue(2, 14).astimezone(UTC).isoformat(), "end": tue(2, 15).astimezone(UTC).isoformat()},
        "series_id": created.id,
    }
    assert len(occurrences(created.id)) == 9
    # "all" no longer reaches it
    series_service.cancel_occurrences(db.session, services.context(member, now=now), third.id, "all")
    assert db.session.get(Booking, second.id).status == "confirmed"


def test_moving_onto_a_taken_time_is_refused(room, member, make_user, book, now):
    created = book_series(room, member, now)
    third = occurrences(created.id)[2]
    taken = book(room, make_user(), tue(3, 14), tue(3, 15))
    with pytest.raises(services.BookingRefused) as exc_info:
        series_service.move_occurrence(db.session, services.context(member, now=now), third.id, tue(3, 14), tue(3, 15))
    refusal = exc_info.value.refusal
    assert isinstance(refusal, refusals.Conflict)
    assert refusal.blocking == (taken.id,)
    assert refusal.nearest_free == Interval(tue(3, 15), tue(3, 16))
    db.session.rollback()
    unchanged = db.session.get(Booking, third.id)
    assert (unchanged.series_id, unchanged.revision, unchanged.start_at) == (created.id, 0, tue(3, 10))
    # overlapping only its own old time is fine: it does not block itself
    moved = series_service.move_occurrence(
        db.session, services.context(member, now=now), third.id, tue(3, 10, 30), tue(3, 11, 30)
    )
    assert moved.start_at == tue(3, 10, 30)


def test_moving_into_approval_makes_it_pending(space, member, now):
    room = space("meeting-room", max_future_bookings=None)
    rule = Recurrence(Frequency.WEEKLY, weekdays=(1,), count=2)
    created = book_series(room, member, now, rule=rule)
    first = occurrences(created.id)[0]
    moved = series_service.move_occurrence(
        db.session, services.context(member, now=now), first.id, tue(1, 9), tue(1, 13)
    )
    assert (moved.status, moved.decided_by_id, moved.revision) == ("pending", None, 1)


# -- the rule that must never break -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_a_series_and_a_single_booking_race_for_one_slot(app, room, member, make_user, now, round_):
    seen = preview(room, member, now)
    room_id, member_id, other_id = room.id, member.id, make_user().id

    def series_job() -> Any:
        user = db.session.get(services.User, member_id)
        return series_service.request_series(
            db.session,
            services.context(user, now=now),
            space_id=room_id,
            requester=user,
            first_start=tue(1, 10),
            first_end=tue(1, 11),
            rule=WEEKLY_10,
            title="系列",
            expected_fingerprint=seen.fingerprint,
        ).id

    def single_job() -> Any:
        user = db.session.get(services.User, other_id)
        return services.request_booking(
            db.session,
            services.context(user, now=now),
            space_id=room_id,
            requester=user,
            start=tue(5, 10),
            end=tue(5, 11),
            title="单次",
        ).id

    series_result, single_result = run_together(app, [series_job, single_job])
    holding_at_slot = db.session.scalars(
        select(Booking).where(Booking.space_id == room_id, Booking.start_at == tue(5, 10), Booking.status.in_(HOLDING))
    ).all()
    assert len(holding_at_slot) == 1
    if isinstance(series_result, int):
        assert isinstance(single_result, services.BookingRefused), single_result
        assert holding_at_slot[0].series_id == series_result
        assert count(Booking) == 10
    else:
        assert isinstance(series_result, series_service.PreviewStale), series_result
        assert isinstance(single_result, int), single_result
        assert holding_at_slot[0].id == single_result
        assert (count(Series), count(Booking)) == (0, 1)
    assert Counter(type(r).__name__ for r in (series_result, single_result))["int"] == 1


# -- my bookings --------------------------------------------------------------------------


def test_series_summary(room, space, member, make_user, now):
    created = book_series(room, member, now, title="周二例会")
    reading = space("reading-room", max_future_bookings=None)
    other_rule = Recurrence(Frequency.DAILY, count=3)
    mine_too = book_series(reading, member, now, rule=other_rule, first_start=tue(1, 9), first_end=tue(1, 10))
    book_series(room, make_user(), now, first_start=tue(1, 15))  # someone else's
    booked = occurrences(created.id)
    series_service.cancel_occurrences(db.session, services.context(member, now=now), booked[1].id, "this")

    summaries = series_service.series_summary(db.session, member.id, now)
    assert [(s.series_id, s.total, s.left, s.next_start) for s in summaries] == [
        (mine_too.id, 3, 3, tue(1, 9)),
        (created.id, 10, 9, tue(1, 10)),
    ]
    weekly = summaries[1]
    assert (weekly.rule, weekly.space_id) == (WEEKLY_10, room.id)
    assert (weekly.first_start, weekly.first_end) == (tue(1, 10), tue(1, 11))
    assert weekly.next_start.tzinfo is not None

    middle = tue(3, 12)  # occurrences 1–3 are over, 2 was cancelled; the daily series is over
    assert [
        (s.series_id, s.total, s.left, s.next_start)
        for s in series_service.series_summary(db.session, member.id, middle)
    ] == [(created.id, 10, 7, tue(4, 10))]
    everything = series_service.series_summary(db.session, member.id, middle, include_finished=True)
    assert [(s.series_id, s.left, s.next_start) for s in everything] == [
        (created.id, 7, tue(4, 10)),
        (mine_too.id, 0, None),
    ]
