"""A series needing approval in the queue: one entry, approve all, reject all, or one date at a time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from booking.bookings import series as series_service
from booking.bookings import services
from booking.bookings.models import AuditEvent, Booking, Series
from booking.domain.recurrence import Frequency, Recurrence
from booking.extensions import db
from booking.spaces.models import Closure
from booking.staff import services as staff_services
from tests.staff.conftest import TZ, at, login, weekday_ahead


def weekly_exhibition(space: Any, member: Any, real_now: Any, *, count: int = 4, first_day: Any = None) -> Series:
    """Weekly one-day exhibitions: the exhibition area always needs approval."""
    room = space("exhibition", max_future_bookings=None)
    first_day = first_day or weekday_ahead(10)
    rule = Recurrence(Frequency.WEEKLY, weekdays=(first_day.weekday(),), count=count)
    fields = {
        "space_id": room.id,
        "requester": member,
        "first_start": at(first_day, 0),
        "first_end": at(first_day + timedelta(days=1), 0),
        "rule": rule,
    }
    ctx = services.context(member, now=real_now)
    seen = series_service.preview(db.session, ctx, **fields)
    assert seen.needs_approval
    assert len(seen.free) == count
    return series_service.request_series(
        db.session, ctx, title="每周快闪展", expected_fingerprint=seen.fingerprint, **fields
    )


def occurrences(series_id: int) -> list[Booking]:
    db.session.expire_all()
    return series_service.occurrences_of(db.session, series_id)


def test_a_series_is_one_queue_entry_with_its_dates(client, staff, member, make_user, space, book, real_now):
    series = weekly_exhibition(space, member, real_now)
    dates = occurrences(series.id)
    day = dates[0].start_at.astimezone(TZ).date() + timedelta(days=1)  # the day after the first date
    single = book(space("exhibition"), make_user(), at(day, 0), at(day + timedelta(days=1), 0), now=real_now)
    assert [b.status for b in dates] == ["pending"] * 4

    found = staff_services.pending_page(db.session, page=1, per_page=50)
    assert (found.total, found.dates) == (2, 5)
    entry = next(e for e in found.entries if e.series_id == series.id)
    assert [b.id for b in entry.bookings] == [b.id for b in dates]
    assert any(e.series_id is None and e.booking.id == single.id for e in found.entries)

    login(client, staff)
    page = client.get("/staff/queue").get_data(as_text=True)
    assert page.count(f'id="series-{series.id}"') == 1
    assert page.count("每周快闪展</h2>") == 1  # one heading for the whole series
    for booking in dates:  # each date listed, with its own decision forms
        assert f'id="booking-{booking.id}"' in page
        assert f"/staff/bookings/{booking.id}/approve" in page
    assert f"/staff/series/{series.id}/approve" in page
    assert f"/staff/series/{series.id}/reject" in page
    assert "<details" in page  # the dates fold away without script
    assert "2 requests, soonest first" in page


def test_one_page_counts_series_once(client, staff, member, make_user, space, book, real_now):
    first = weekly_exhibition(space, member, real_now, count=4, first_day=weekday_ahead(10))
    other = make_user()
    day = weekday_ahead(10) + timedelta(days=1)
    room = space("exhibition")
    singles = [
        book(room, other, at(day + timedelta(weeks=w), 0), at(day + timedelta(weeks=w, days=1), 0), now=real_now)
        for w in range(2)
    ]
    page_one = staff_services.pending_page(db.session, page=1, per_page=2)
    page_two = staff_services.pending_page(db.session, page=2, per_page=2)
    assert page_one.total == 3
    assert [e.series_id for e in page_one.entries] == [first.id, None]
    assert len(page_one.entries[0].rows) == 4
    assert [e.booking.id for e in page_two.entries] == [singles[1].id]


@pytest.mark.parametrize("series_count", [1, 3])
def test_the_queue_query_count_is_fixed(app, staff, make_user, space, book, real_now, series_count):
    for n in range(series_count):
        weekly_exhibition(space, make_user(), real_now, count=3, first_day=weekday_ahead(10) + timedelta(days=n))
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's explicit transaction start
            statements.append(statement)

    db.session.expire_all()
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        found = staff_services.pending_page(db.session, page=1, per_page=50)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len(found.entries) == series_count
    assert len(statements) == 3, statements


def test_approve_all_confirms_every_date_with_one_audit_event_each(client, staff, member, space, real_now):
    series = weekly_exhibition(space, member, real_now)
    login(client, staff)
    text = client.post(f"/staff/series/{series.id}/approve", follow_redirects=True).get_data(as_text=True)
    assert "Approved 4 requests of the series" in text
    dates = occurrences(series.id)
    assert [(b.status, b.revision) for b in dates] == [("confirmed", 1)] * 4
    assert {b.decided_by_id for b in dates} == {staff.id}
    for booking in dates:
        confirmed = db.session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.booking_id == booking.id, AuditEvent.action == "confirmed"
            )
        )
        assert confirmed == 1
    assert f'id="series-{series.id}"' not in client.get("/staff/queue").get_data(as_text=True)


def test_dates_that_no_longer_fit_stay_pending_and_are_named(client, staff, member, space, real_now):
    series = weekly_exhibition(space, member, real_now)
    third = occurrences(series.id)[2]
    # a closure written behind the service's back (services.close would cancel the date)
    db.session.add(
        Closure(
            location_id=third.space.location_id,
            space_id=third.space_id,
            start_at=third.start_at,
            end_at=third.end_at,
            reason="布展维修",
        )
    )
    db.session.commit()
    login(client, staff)
    text = client.post(f"/staff/series/{series.id}/approve", follow_redirects=True).get_data(as_text=True)
    assert "Approved 3 requests of the series" in text
    assert "1 request no longer fits and stays pending" in text
    assert f"#{third.id}" in text
    assert "布展维修" in text
    assert [b.status for b in occurrences(series.id)] == ["confirmed", "confirmed", "pending", "confirmed"]


def test_reject_all_needs_a_reason(client, staff, member, space, real_now):
    series = weekly_exhibition(space, member, real_now)
    login(client, staff)
    text = client.post(f"/staff/series/{series.id}/reject", data={"reason": "  "}, follow_redirects=True).get_data(
        as_text=True
    )
    assert "give a reason" in text
    assert [b.status for b in occurrences(series.id)] == ["pending"] * 4

    text = client.post(
        f"/staff/series/{series.id}/reject", data={"reason": "展区本季已排满"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Rejected 4 requests of the series" in text
    dates = occurrences(series.id)
    assert [(b.status, b.decision_reason) for b in dates] == [("rejected", "展区本季已排满")] * 4
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.booking_id.in_([b.id for b in dates]), AuditEvent.action == "rejected")
    ).all()
    assert len(events) == 4
    assert {e.reason for e in events} == {"展区本季已排满"}


def test_one_date_at_a_time_still_works(client, staff, member, space, real_now):
    series = weekly_exhibition(space, member, real_now)
    first, second, *_ = occurrences(series.id)
    login(client, staff)
    client.post(f"/staff/bookings/{first.id}/approve")
    client.post(f"/staff/bookings/{second.id}/reject", data={"reason": "那周有布展"})
    dates = occurrences(series.id)
    assert [b.status for b in dates] == ["confirmed", "rejected", "pending", "pending"]
    assert dates[1].decision_reason == "那周有布展"
    page = client.get("/staff/queue").get_data(as_text=True)
    assert page.count(f'id="series-{series.id}"') == 1  # the two still waiting, still one entry
    assert f'id="booking-{first.id}"' not in page
    assert f'id="booking-{dates[3].id}"' in page
    # approve all now acts on what is left
    text = client.post(f"/staff/series/{series.id}/approve", follow_redirects=True).get_data(as_text=True)
    assert "Approved 2 requests of the series" in text
    assert [b.status for b in occurrences(series.id)] == ["confirmed", "rejected", "confirmed", "confirmed"]


def test_series_decisions_are_for_staff_and_need_csrf(app, client, member, space, real_now):
    series = weekly_exhibition(space, member, real_now)
    login(client, member)
    assert client.post(f"/staff/series/{series.id}/approve").status_code == 403
    assert client.post(f"/staff/series/{series.id}/reject", data={"reason": "x"}).status_code == 403
    assert [b.status for b in occurrences(series.id)] == ["pending"] * 4


def test_series_approval_refuses_without_a_csrf_token(app, staff, member, space, real_now):
    series = weekly_exhibition(space, member, real_now)
    client = app.test_client()
    login(client, staff)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert client.post(f"/staff/series/{series.id}/approve").status_code == 400
        client.post(f"/staff/series/{series.id}/reject", data={"reason": "无令牌"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert [b.status for b in occurrences(series.id)] == ["pending"] * 4


def test_unknown_series_is_not_found(client, staff):
    login(client, staff)
    assert client.post("/staff/series/999999/approve").status_code == 404
    assert client.post("/staff/series/999999/reject", data={"reason": "x"}).status_code == 404


def test_the_queue_with_a_series_renders_in_chinese(client, staff, member, space, real_now):
    series = weekly_exhibition(space, member, real_now)
    staff.language = "zh_Hans_CN"
    db.session.commit()
    login(client, staff)
    response = client.get("/staff/queue")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="zh-Hans">' in page
    assert page.count(f'id="series-{series.id}"') == 1
