"""Races of staff actions on a real database, with real threads (see tests/bookings/test_concurrency.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from booking.bookings import services
from booking.bookings.models import Booking
from booking.domain import refusals
from booking.extensions import db
from tests.bookings.test_concurrency import run_together
from tests.conftest import shanghai


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))  # either may win: a few rounds see both orders
def test_two_staff_deciding_the_same_request(app, space, member, make_user, book, now, round_):
    room = space("exhibition")
    pending = book(room, member, shanghai(2026, 12, 10), shanghai(2026, 12, 12)).id
    approver = make_user(display_name="批准者", role="staff").id
    rejecter = make_user(display_name="拒绝者", role="staff").id

    def approve() -> str:
        actor = db.session.get(services.User, approver)
        return services.approve(db.session, services.context(actor, now=now), pending).status

    def reject() -> str:
        actor = db.session.get(services.User, rejecter)
        return services.reject(db.session, services.context(actor, now=now), pending, "同期已有展览").status

    results = run_together(app, [approve, reject])
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, services.AlreadyDecided)]
    assert len(winners) == 1, results
    assert len(losers) == 1, results
    final = db.session.get(Booking, pending)
    assert final.status == winners[0]
    assert losers[0].status == final.status
    assert losers[0].decided_by == ("批准者" if final.status == "confirmed" else "拒绝者")
    assert final.decided_by_id == (approver if final.status == "confirmed" else rejecter)


@pytest.mark.slow
def test_staff_booking_for_a_member_racing_a_member_request(app, space, member, make_user, staff, now):
    room_id = space("exhibition", max_future_bookings=None).id
    caller = make_user(display_name="来电者")
    ids = {"staff": staff.id, "caller": caller.id, "member": member.id}
    start, end = shanghai(2026, 12, 14), shanghai(2026, 12, 17)

    def on_behalf() -> int:
        actor = db.session.get(services.User, ids["staff"])
        requester = db.session.get(services.User, ids["caller"])
        return services.request_booking(
            db.session,
            services.context(actor, now=now),
            space_id=room_id,
            requester=requester,
            start=start,
            end=end,
            title="代订：金融知识展",
        ).id

    def own_request() -> int:
        user = db.session.get(services.User, ids["member"])
        return services.request_booking(
            db.session,
            services.context(user, now=now),
            space_id=room_id,
            requester=user,
            start=shanghai(2026, 12, 15),
            end=shanghai(2026, 12, 18),
            title="书画展",
        ).id

    jobs: list[Callable[[], int]] = [on_behalf, own_request]
    results = run_together(app, jobs)
    granted = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, services.BookingRefused)]
    assert len(granted) == 1, results
    assert len(refused) == 1, results
    assert isinstance(refused[0].refusal, refusals.Conflict)
    assert refused[0].refusal.blocking in ((granted[0],), ())  # PostgreSQL's constraint may name none
    assert db.session.get(Booking, granted[0]).status in ("confirmed", "pending")
