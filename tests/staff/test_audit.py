"""The audit trail page: a booking's events, with who decided, for whom, and why."""

from __future__ import annotations

import re
from datetime import timedelta

from booking.bookings import services
from booking.extensions import db
from tests.staff.conftest import at, login, weekday_ahead


def test_a_bookings_trail_names_the_requester_and_the_reason(client, staff, make_user, space, book, real_now):
    requester = make_user(display_name="赵申请")
    day = weekday_ahead(10)
    room = space("exhibition", max_future_bookings=None)
    request = book(room, requester, at(day, 0), at(day + timedelta(days=1), 0), now=real_now)
    services.reject(db.session, services.context(staff), request.id, "展期冲突")
    login(client, staff)
    response = client.get(f"/staff/audit?booking={request.id}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "赵申请" in text  # the subject of each event, named
    assert "展期冲突" in text


def test_the_trail_in_chinese_shows_words_never_codes(client, staff, make_user, space, book, real_now):
    from booking.staff import services as staff_services

    requester = make_user(display_name="钱成员")
    room = space("meeting-room", approval="always")
    day = weekday_ahead(5)
    confirmed = book(room, requester, at(day, 10), at(day, 11), now=real_now)
    services.approve(db.session, services.context(staff), confirmed.id)
    refused = book(room, requester, at(day, 14), at(day, 15), now=real_now)
    services.reject(db.session, services.context(staff), refused.id, "时间冲突")
    seats = space("reading-room")
    staff_services.update_space_rules(
        db.session, services.context(staff), seats.id, {"max_units_per_booking": seats.max_units_per_booking + 1}
    )
    staff.language = "zh_Hans_CN"
    db.session.commit()
    login(client, staff)

    html = client.get("/staff/audit", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    table = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    words = re.sub(r"<[^>]+>", " ", table)
    for code in ("confirmed", "pending", "rejected", "request", "space_rules", "max_units_per_booking", "True", "None"):
        assert not re.search(rf"\b{code}\b", words), code
    assert "待审核 → 已确认" in words
    assert "待审核 → 未获批准" in words
    assert "提交预约申请" in words
    assert "空间规则已修改" in words
    assert f"{seats.max_units_per_booking - 1} → {seats.max_units_per_booking}" in words
