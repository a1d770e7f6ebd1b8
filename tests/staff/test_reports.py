"""Usage figures checked against a day worked out by hand, on the page and in the CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from sqlalchemy import event, select

from booking.auth.models import Organisation
from booking.bookings import services
from booking.extensions import db
from booking.staff import reports
from tests.conftest import PASSWORD, shanghai
from tests.staff.conftest import TZ, login

DAY = date(2026, 12, 8)  # a Tuesday; the fixed `now` is Monday 30 November 2026, 09:00


@pytest.fixture
def known_day(app, make_user, staff, space, book, now):
    """Tuesday 8 December 2026, by hand:

    unit A: reading room 10 of 20 seats 09:00-21:00 (staff override: 12 h, 120 seat-hours, 10 people);
            a meeting-room booking 09:00-10:00 it cancels at 20:00 the evening before (late).
    unit B: meeting room 14:00-16:00 (2 h, 6 people); cafe 10:00-10:30, 2 tables (0.5 h, 1 table-hour,
            3 people); exhibition the whole day, approved (12 open hours of 24, 1 person);
            a reading-room booking 18:00-19:00 cancelled a week ahead (not late).
    A closure shuts the meeting room 18:00-21:00, so it is open 08:30-18:00 (9.5 h).

    Open unit-hours: reading 12 × 20 = 240, meeting 9.5, cafe 7 × 6 = 42, exhibition 12 → 303.5.
    Booked unit-hours: 120 + 2 + 1 + 12 = 135 → occupancy 135 / 303.5.
    """
    orgs = db.session.scalars(select(Organisation).order_by(Organisation.id)).all()
    unit_a, unit_b = orgs[0], orgs[1]
    a = make_user(organisation=unit_a)
    b = make_user(organisation=unit_b)
    reading, meeting, cafe, exhibition = (space(s) for s in ("reading-room", "meeting-room", "cafe", "exhibition"))
    book(
        reading,
        a,
        shanghai(2026, 12, 8, 9),
        shanghai(2026, 12, 8, 21),
        units=10,
        attendees=10,
        actor=staff,
        override_reason="读书会",
    )
    late = book(meeting, a, shanghai(2026, 12, 8, 9), shanghai(2026, 12, 8, 10))
    services.cancel(db.session, services.context(a, now=shanghai(2026, 12, 7, 20)), late.id)
    book(meeting, b, shanghai(2026, 12, 8, 14), shanghai(2026, 12, 8, 16), attendees=6)
    book(
        cafe,
        b,
        shanghai(2026, 12, 8, 10),
        shanghai(2026, 12, 8, 10, 30),
        units=2,
        attendees=3,
        now=shanghai(2026, 12, 5, 9),
    )
    show = book(exhibition, b, shanghai(2026, 12, 8), shanghai(2026, 12, 9), now=shanghai(2026, 11, 30, 8))
    services.approve(db.session, services.context(staff, now=shanghai(2026, 12, 1)), show.id)
    early = book(reading, b, shanghai(2026, 12, 8, 18), shanghai(2026, 12, 8, 19))
    services.cancel(db.session, services.context(b, now=shanghai(2026, 12, 1, 18)), early.id)
    services.close(
        db.session,
        services.context(staff, now=now),
        location_id=meeting.location_id,
        space_id=meeting.id,
        start=shanghai(2026, 12, 8, 18),
        end=shanghai(2026, 12, 8, 21),
        reason="设备检修",
    )
    return {"a": unit_a, "b": unit_b, "reading": reading, "meeting": meeting, "cafe": cafe, "exhibition": exhibition}


def test_figures_of_a_known_day(known_day):
    report = reports.usage(db.session, first=DAY, last=DAY, tz=TZ)
    total = report.total
    assert (total.bookings, total.people, total.cancellations, total.late_cancellations) == (4, 20, 2, 1)
    assert total.hours == pytest.approx(26.5)
    assert total.unit_hours == pytest.approx(135)
    assert total.open_unit_hours == pytest.approx(303.5)
    assert total.occupancy == pytest.approx(135 / 303.5)

    per_space = {s.slug: f for s, f in report.by_space}
    assert per_space["reading-room"].occupancy == pytest.approx(0.5)  # half full reads 50%
    assert per_space["meeting-room"].occupancy == pytest.approx(2 / 9.5)
    assert per_space["cafe"].occupancy == pytest.approx(1 / 42)
    assert per_space["exhibition"].occupancy == pytest.approx(1.0)
    assert per_space["exhibition"].hours == pytest.approx(12)

    per_unit = {org.slug: f for org, f in report.by_org}
    assert per_unit[known_day["a"].slug].hours == pytest.approx(12)
    assert per_unit[known_day["b"].slug].hours == pytest.approx(14.5)
    assert (per_unit[known_day["a"].slug].late_cancellations, per_unit[known_day["b"].slug].cancellations) == (1, 1)
    assert [week for week, _ in report.by_week] == [date(2026, 12, 7)]


def test_one_space_only(known_day):
    report = reports.usage(db.session, first=DAY, last=DAY, tz=TZ, space_id=known_day["reading"].id)
    assert report.total.occupancy == pytest.approx(0.5)
    assert report.total.bookings == 1


def test_a_range_before_the_bookings_is_empty(known_day):
    report = reports.usage(db.session, first=date(2026, 11, 1), last=date(2026, 11, 7), tz=TZ)
    assert (report.total.bookings, report.total.hours) == (0, 0)
    assert report.total.open_unit_hours > 0


def test_the_page_and_the_csv_show_the_same_numbers(client, staff, known_day):
    login(client, staff)
    page = client.get(f"/staff/reports?from={DAY}&to={DAY}").get_data(as_text=True)
    assert 'role="img"' in page
    assert "style=" not in page.split("<svg", 1)[1].split("</svg>")[0]
    assert "44%" in page  # 135 / 303.5
    response = client.get(f"/staff/reports?from={DAY}&to={DAY}&format=csv")
    assert response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["Group", "Name", "Bookings", "Booked hours"]
    total = body[0]
    assert total[0] == "Total"
    assert (total[2], total[3], total[4], total[5], total[6], total[7]) == ("4", "26.5", "20", "44.5", "2", "1")
    by_name = {row[1]: row for row in body if row[0] == "Member unit"}
    assert by_name[known_day["a"].name("en")][3] == "12.0"
    assert by_name[known_day["b"].name("en")][3] == "14.5"
    spaces = {row[1]: row for row in body if row[0] == "Space"}
    assert spaces["Reading room"][5] == "50.0"


def test_the_default_range_is_the_last_four_full_weeks():
    assert reports.default_range(date(2026, 12, 3)) == (date(2026, 11, 2), date(2026, 11, 29))


def test_a_booking_counts_in_its_local_week_not_its_utc_week(make_space, member, book):
    """Monday 7 December 2026, 01:00 in Shanghai is still Sunday 6 December in UTC."""
    all_night = make_space(opening_hours={str(d): [["00:00", "24:00"]] for d in range(7)}, max_advance_days=400)
    book(all_night, member, shanghai(2026, 12, 7, 1), shanghai(2026, 12, 7, 3), attendees=2)
    report = reports.usage(db.session, first=date(2026, 11, 30), last=date(2026, 12, 13), tz=TZ, space_id=all_night.id)
    weeks = dict(report.by_week)
    assert (weeks[date(2026, 11, 30)].bookings, weeks[date(2026, 11, 30)].hours) == (0, 0)
    assert (weeks[date(2026, 12, 7)].bookings, weeks[date(2026, 12, 7)].people) == (1, 2)
    assert weeks[date(2026, 12, 7)].hours == pytest.approx(2)


def test_the_number_of_queries_does_not_grow_with_the_range(app, known_day):
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    reports.usage(db.session, first=DAY, last=DAY, tz=TZ)  # the cache starts: both ranges below then fill missing days
    counts = []
    for first in (DAY, date(2026, 1, 1)):
        statements.clear()
        db.session.expire_all()
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            reports.usage(db.session, first=first, last=date(2026, 12, 31), tz=TZ)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        counts.append(len(statements))
    assert counts[0] == counts[1]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "2026-02-30", "😀"])
def test_absurd_dates_in_report_and_audit_filters_are_ignored_not_500(client, staff, day):
    client.post("/auth/login", data={"email": staff.email, "password": PASSWORD})
    assert client.get(f"/staff/reports?from={day}&to={day}").status_code == 200
    assert client.get(f"/staff/reports?from={day}&to={day}&format=csv").status_code == 200
    assert client.get(f"/staff/audit?from={day}&to={day}&booking={day}").status_code == 200
