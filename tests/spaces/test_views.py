"""The spaces pages: the home cards, the week (and month) grid, and their query budget."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event, select

from booking.bookings import services
from booking.bookings.models import Booking
from booking.db import utcnow
from booking.extensions import db
from booking.spaces.models import Closure
from tests.spaces.helpers import at, local, login, today, weekday_ahead


def test_home_lists_every_space_with_today(client, member):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for name in ("Shared meeting room", "Pop-up exhibition area", "Reading room", "Public-welfare cafe"):
        assert name in html
    assert "Walk-in, no booking needed" in html
    chinese = client.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    for name in ("共享会议室", "快闪临展区", "职工书屋", "公益咖吧", "骑行加油站"):
        assert name in chinese
    assert "/spaces/meeting-room" in html
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    login(client, member.email)
    assert client.get("/").status_code == 200


def test_home_shows_seats_left_now_and_next_free(client, space, make_space, make_user):
    # open around the clock, so the test reads the same whatever the hour in Shanghai
    room = make_space(
        capacity=20,
        grid_minutes=60,
        min_duration_minutes=60,
        max_units_per_booking=4,
        opening_hours={str(d): [["00:00", "24:00"]] for d in range(7)},
        unit_label_zh="座",
        unit_label_en="seat",
        sort_order=0,
    )
    now = utcnow().astimezone(room.location.tz)
    start = now.replace(minute=0, second=0, microsecond=0)
    services.request_booking(
        db.session,
        services.context(make_user()),
        space_id=room.id,
        requester=make_user(),
        start=start + timedelta(hours=1),
        end=start + timedelta(hours=2),
        title="x",
        units=4,
    )
    html = client.get("/").get_data(as_text=True)
    assert "free now" in html
    assert "Next free:" in html


def test_home_query_count_does_not_grow_with_bookings(app, client, space, make_user):
    room = space("reading-room").id
    counted = _counter(app)
    db.session.remove()
    client.get("/")
    before = len(counted)
    _fill_reading_room(room, make_user, today(), 60)
    db.session.remove()
    counted.clear()
    client.get("/")
    assert len(counted) == before, counted


def test_week_renders_for_anonymous_with_prefill_links(client):
    day = weekday_ahead(3)
    response = client.get(f"/spaces/meeting-room?date={day.isoformat()}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f"/spaces/meeting-room/book?start={local(day, 9)}&amp;end={local(day, 9, 30)}" in html
    assert "Free" in html
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    monday = day - timedelta(days=day.weekday())
    assert f"date={(day - timedelta(days=7)).isoformat()}" in html
    assert f"date={(day + timedelta(days=7)).isoformat()}" in html
    assert monday.strftime("%-d") in html


def test_week_marks_own_bookings_and_seats_left(client, space, member, make_user):
    room = space("reading-room")
    day = today() + timedelta(days=2)
    mine = services.request_booking(
        db.session,
        services.context(member),
        space_id=room.id,
        requester=member,
        start=at(day, 10),
        end=at(day, 11),
        title="自习",
        units=2,
    )
    other = make_user()
    services.request_booking(
        db.session,
        services.context(other),
        space_id=room.id,
        requester=other,
        start=at(day, 12),
        end=at(day, 13),
        title="x",
        units=3,
    )
    login(client, member.email)
    html = client.get(f"/spaces/reading-room?date={day.isoformat()}").get_data(as_text=True)
    assert "Yours" in html
    assert f"/bookings/{mine.id}" in html
    assert "17 left" in html  # 20 seats, 3 taken by someone else
    assert "18 left" in html  # next to "Yours" on our own cell


def test_closure_reason_is_visible_and_in_title(client, space, staff):
    room = space("meeting-room")
    day = weekday_ahead(3)
    db.session.add(
        Closure(
            location_id=room.location_id,
            space_id=room.id,
            start_at=at(day, 9),
            end_at=at(day, 12),
            reason="设备检修",
            created_by_id=staff.id,
        )
    )
    db.session.commit()
    html = client.get(f"/spaces/meeting-room?date={day.isoformat()}").get_data(as_text=True)
    assert 'class="cell-reason">设备检修</span>' in html  # tap: visible text
    assert "— 设备检修" in html  # hover: the title attribute, and the closures list above the grid
    assert "Closures:" in html


def test_whole_day_space_shows_a_month_with_date_links(client):
    day = today() + timedelta(days=20)
    html = client.get(f"/spaces/exhibition?date={day.isoformat()}").get_data(as_text=True)
    assert "month-grid" in html
    iso = day.isoformat()
    assert f"/spaces/exhibition/book?start={iso}&amp;end={iso}" in html
    assert "Staff review every request" in html


def test_walk_in_space_has_no_grid(client):
    html = client.get("/spaces/cycling-stop").get_data(as_text=True)
    assert "Walk-in, no booking needed" in html
    assert "week-grid" not in html
    assert client.get("/spaces/nowhere").status_code == 404


def test_cafe_shows_fixed_slots(client):
    day = weekday_ahead(2)
    html = client.get(f"/spaces/cafe?date={day.isoformat()}").get_data(as_text=True)
    assert f"/spaces/cafe/book?start={local(day, 10)}&amp;end={local(day, 10, 30)}" in html
    assert "10:00" in html
    assert "16:30" in html


def _counter(app):
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        # BEGIN/COMMIT depend on whether the test's own session left a transaction open, not on the page
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    return statements


def _fill_reading_room(room_id, make_user, first_day, count):
    """`count` one-seat, one-hour bookings spread over the week, written directly (no policy limits),
    moving the space's watermark in the same transaction as every writer does."""
    people = [make_user() for _ in range(5)]
    rows = []
    for n in range(count):
        day = first_day + timedelta(days=n % 7)
        hour = 9 + (n // 7) % 12
        rows.append(
            Booking(
                space_id=room_id,
                requester_id=people[n % 5].id,
                created_by_id=people[n % 5].id,
                title=f"自习 {n}",
                units=1,
                attendees=1,
                start_at=at(day, hour),
                end_at=at(day, hour + 1),
                status="confirmed",
            )
        )
    db.session.add_all(rows)
    _move_watermark(room_id)


def _move_watermark(space_id):
    services.touch_space(db.session, space_id, utcnow())
    db.session.commit()


def test_week_query_count_is_the_same_with_0_and_200_bookings(app, client, space, member, make_user):
    """After a change: one query for the window's holds and one for its closures, whatever the data."""
    room = space("reading-room").id
    monday = today() - timedelta(days=today().weekday()) + timedelta(days=7)
    url = f"/spaces/reading-room?date={monday.isoformat()}"
    login(client, member.email)
    client.get(url)  # warm: nothing lazily loaded on first use is counted below
    statements = _counter(app)
    _move_watermark(room)  # a change nobody has seen yet: the grid is worked out afresh
    db.session.remove()  # each measured request starts from an empty session, as a real one does
    statements.clear()
    assert client.get(url).status_code == 200
    empty = list(statements)
    _fill_reading_room(room, make_user, monday, 200)
    assert db.session.scalar(select(db.func.count(Booking.id))) == 200
    db.session.remove()
    statements.clear()
    html = client.get(url).get_data(as_text=True)
    assert "left" in html
    print(f"week page queries: {len(empty)} with 0 bookings, {len(statements)} with 200")
    assert len(statements) == len(empty)
    assert sum("FROM booking" in s for s in statements) == 1
    assert sum("FROM closure" in s for s in statements) == 1

    # unchanged since: the grid comes from the cache, without reading a single booking
    db.session.remove()
    statements.clear()
    assert _tokenless(client.get(url).get_data(as_text=True)) == _tokenless(html)
    assert sum("FROM booking" in s for s in statements) == 0
    assert len(statements) < len(empty)


def _tokenless(html):
    """The page without its form tokens, which are signed with the time and differ on every page."""
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"', html)


def test_an_unchanged_week_costs_one_query_for_visitors(app, client, space, make_user):
    """Not logged in: the whole page is shared, and only the space's watermark is read."""
    room = space("reading-room").id
    monday = today() - timedelta(days=today().weekday()) + timedelta(days=7)
    url = f"/spaces/reading-room?date={monday.isoformat()}"
    first = client.get(url).get_data(as_text=True)
    statements = _counter(app)
    db.session.remove()
    again = client.get(url).get_data(as_text=True)
    assert _tokenless(again) == _tokenless(first)
    assert len(statements) == 1
    assert "FROM space" in statements[0]

    _fill_reading_room(room, make_user, monday, 7)  # one booking a day, watermark moved
    db.session.remove()
    changed = client.get(url).get_data(as_text=True)
    assert changed != first
    assert changed.count("cell cell-partly") > first.count("cell cell-partly")


def test_a_visitor_page_from_the_cache_carries_the_visitors_own_form_token(app, client, space):
    """The cached page has a hole where the language form's token goes: each session gets its own."""
    app.config["WTF_CSRF_ENABLED"] = True
    monday = today() - timedelta(days=today().weekday()) + timedelta(days=7)
    url = f"/spaces/meeting-room?date={monday.isoformat()}"
    tokens = []
    for _ in range(2):
        visitor = app.test_client()  # the `client` fixture made this an IsolatedClient: a fresh `g` each request
        html = visitor.get(url).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        tokens.append(token)
        switched = visitor.post("/language", data={"csrf_token": token, "language": "zh_Hans_CN", "next": url})
        assert switched.status_code == 302  # the token works for this visitor's session
        assert "\x00" not in html
    assert tokens[0] != tokens[1]


def test_a_station_closure_reaches_cached_pages_of_spaces_it_cancelled_nothing_in(client, space, member, staff, book):
    """A closure moves the watermark of every space it covers, not only those whose bookings it cancelled."""
    room, reading = space("meeting-room"), space("reading-room")
    day = weekday_ahead(3)
    book(room, member, at(day, 9), title="周会", now=utcnow())
    url = f"/spaces/reading-room?date={day.isoformat()}"
    before = client.get(url).get_data(as_text=True)  # cached for visitors now
    assert "停电检修" not in before

    _closure, cancelled = services.close(
        db.session,
        services.context(staff),
        location_id=reading.location_id,
        space_id=None,
        start=at(day, 8),
        end=at(day, 12),
        reason="停电检修",
        expected_booking_ids={b.id for b in db.session.scalars(select(Booking))},
    )
    assert [b.space_id for b in cancelled] == [room.id]
    db.session.remove()
    after = client.get(url).get_data(as_text=True)
    assert 'class="cell-reason">停电检修</span>' in after


def test_the_walk_in_cycling_stop_shows_its_opening_hours(client, space):
    stop = space("cycling-stop")
    stop.opening_hours = {str(d): [["07:00", "21:00"]] for d in range(6)}  # closed on Sundays
    db.session.commit()
    html = client.get("/spaces/cycling-stop").get_data(as_text=True)
    assert "Walk-in, no booking needed" in html
    hours = re.search(r'<section class="card card-body shadow-sm opening-hours".*?</section>', html, re.S).group(0)
    rows = re.findall(r'<th scope="row" class="fw-normal">(\w+)</th><td>([^<]+)</td>', hours)
    assert rows == [
        ("Mon", "07:00–21:00"),
        ("Tue", "07:00–21:00"),
        ("Wed", "07:00–21:00"),
        ("Thu", "07:00–21:00"),
        ("Fri", "07:00–21:00"),
        ("Sat", "07:00–21:00"),
        ("Sun", "Closed"),
    ]
    chinese = client.get("/spaces/cycling-stop", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "开放时间" in chinese
    assert "周一" in chinese
