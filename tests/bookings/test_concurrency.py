"""The rule that must never break, under concurrent writers on a real database.

Each writer is a thread with its own application context, so its own session and
its own database connection; a barrier releases them together.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from booking.bookings import services
from booking.bookings.models import HOLDING, AuditEvent, Booking
from booking.domain import refusals
from booking.extensions import db
from tests.conftest import shanghai

WRITERS = 16
START, END = shanghai(2026, 12, 1, 14), shanghai(2026, 12, 1, 15)


def run_together(app: Any, jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run each job in its own thread and app context; return results or the exceptions raised."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def worker(index: int, job: Callable[[], Any]) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results[index] = job()
            except Exception as exc:  # every outcome is inspected by the test
                results[index] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    db.session.rollback()  # end the test's own read snapshot so it sees what the writers committed
    return results


def requester_job(app: Any, space_id: int, user_id: int, now: Any, units: int = 1) -> Callable[[], Booking]:
    def job() -> Booking:
        user = db.session.get(services.User, user_id)
        return services.request_booking(
            db.session,
            services.context(user, now=now),
            space_id=space_id,
            requester=user,
            start=START,
            end=END,
            title="抢最后一个位子",
            units=units,
        )

    return job


def outcome(result: Any) -> str:
    if isinstance(result, Booking):
        return "granted"
    if isinstance(result, services.BookingRefused) and isinstance(result.refusal, refusals.Conflict):
        return "refused"
    return f"unexpected {result!r}"


def held_units(space_id: int) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(Booking.units), 0)).where(
            Booking.space_id == space_id, Booking.status.in_(HOLDING)
        )
    )


@pytest.mark.slow
def test_last_unit_of_an_exclusive_space(app, space, make_user, now):
    room = space("meeting-room")
    users = [make_user().id for _ in range(WRITERS)]
    results = run_together(app, [requester_job(app, room.id, uid, now) for uid in users])
    assert Counter(map(outcome, results)) == {"granted": 1, "refused": WRITERS - 1}
    assert held_units(room.id) == 1


@pytest.mark.slow
@pytest.mark.parametrize("free", [1, 3])
def test_last_seats_of_a_twenty_seat_room(app, space, make_user, book, now, free):
    room = space("reading-room")
    held = 20 - free
    while held:
        units = min(4, held)
        book(room, make_user(), START, END, units=units)
        held -= units
    users = [make_user().id for _ in range(WRITERS)]
    results = run_together(app, [requester_job(app, room.id, uid, now) for uid in users])
    assert Counter(map(outcome, results)) == {"granted": free, "refused": WRITERS - free}
    assert held_units(room.id) == 20
    refusal = next(r.refusal for r in results if isinstance(r, services.BookingRefused))
    assert refusal.left == 0


@pytest.mark.slow
def test_approve_racing_cancel(app, space, member, staff, book, now):
    room = space("exhibition", max_future_bookings=None)
    bookings = [book(room, member, shanghai(2026, 12, 10 + 2 * i), shanghai(2026, 12, 11 + 2 * i)).id for i in range(8)]
    assert all(db.session.get(Booking, bid).status == "pending" for bid in bookings)
    staff_id, member_id = staff.id, member.id

    def approve(bid: int) -> Callable[[], str]:
        def job() -> str:
            actor = db.session.get(services.User, staff_id)
            return services.approve(db.session, services.context(actor, now=now), bid).status

        return job

    def cancel(bid: int) -> Callable[[], str]:
        def job() -> str:
            actor = db.session.get(services.User, member_id)
            return services.cancel(db.session, services.context(actor, now=now), bid).status

        return job

    jobs = [job for bid in bookings for job in (approve(bid), cancel(bid))]
    results = run_together(app, jobs)
    orders = Counter()
    for index, bid in enumerate(bookings):
        approved, cancelled = results[2 * index], results[2 * index + 1]
        # the member's cancel always stands: a confirmed booking may be cancelled, and a
        # cancelled one must never come back confirmed by a decision made on "pending"
        assert cancelled == "cancelled", cancelled
        assert db.session.get(Booking, bid).status == "cancelled"
        actions = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.booking_id == bid).order_by(AuditEvent.id)
        ).all()
        if approved == "confirmed":
            assert actions == ["request", "confirmed", "cancelled"]
            orders["approve first"] += 1
        else:
            assert isinstance(approved, services.AlreadyDecided), approved
            assert approved.status == "cancelled"
            assert approved.decided_by == "王小明"
            assert actions == ["request", "cancelled"]
            orders["cancel first"] += 1
    assert sum(orders.values()) == len(bookings)
