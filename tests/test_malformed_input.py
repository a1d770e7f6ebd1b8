"""Bad input gets a clear answer, never a 500: every page and form, fed malformed values.

The station is filled with the demo data, then a member and a member of staff request every
page with odd query values and post every form with odd field values. Any 5xx fails, with
the whole list of what failed.
"""

from __future__ import annotations

import pytest

BAD = ["", "x", "2026-13-45", "9999-12-31", "0001-01-01", "2026-02-30T25:61", "-1", "1e309", "%00", "😀", "a" * 5000]

PAGES = [
    "/?date={v}",
    "/spaces/meeting-room?date={v}",
    "/spaces/exhibition?date={v}",
    "/spaces/cafe/book?start={v}&end={v}",
    "/spaces/meeting-room/book?start={v}&end=2026-12-01T10:00",
    "/spaces/exhibition/book?start={v}&end={v}",
    "/bookings/{v}",
    "/bookings/1/cancel?scope={v}",
    "/staff/reports?from={v}&to={v}&space={v}",
    "/staff/reports?from=2026-01-01&to={v}&format=csv",
    "/staff/audit?booking={v}&user={v}&space={v}&from={v}&to={v}&page={v}",
    "/staff/queue?page={v}",
    "/staff/book?member={v}&space={v}&q={v}",
    "/staff/spaces/{v}",
    "/feeds/{v}.ics",
    "/feeds/spaces/{v}.ics",
]

FORMS = [
    (
        "/spaces/meeting-room/book",
        ("title", "day", "start_time", "end_time", "attendees", "repeat", "interval", "count"),
    ),
    ("/spaces/exhibition/book", ("title", "first_day", "last_day")),
    ("/staff/closures", ("space", "start", "end", "reason", "first_day", "last_day")),
    ("/staff/spaces/meeting-room", ("capacity", "grid_minutes", "hours_0", "min_duration_minutes")),
    ("/staff/bookings/1/reject", ("reason",)),
    ("/staff/bookings/{v}/approve", ()),
    ("/bookings/{v}/cancel", ("scope",)),
    ("/staff/book", ("member", "space", "day", "start_time", "end_time", "title", "override_reason")),
    ("/account", ("display_name", "organisation", "language")),
    ("/language", ("language", "next")),
]


@pytest.mark.slow
@pytest.mark.parametrize("email", ["member@example.com", "staff@example.com"])
def test_no_page_or_form_answers_500_to_malformed_input(app, client, runner, email):
    assert runner.invoke(args=["booking", "demo"]).exit_code == 0
    assert client.post("/auth/login", data={"email": email, "password": "station-demo"}).status_code == 302
    failures = []
    for value in BAD:
        for page in PAGES:
            url = page.format(v=value)
            status = client.get(url).status_code
            if status >= 500:
                failures.append(f"GET {url[:100]} → {status}")
        for path, fields in FORMS:
            url = path.format(v=value)
            status = client.post(url, data=dict.fromkeys(fields, value)).status_code
            if status >= 500:
                failures.append(f"POST {url[:100]} {fields} = {value[:20]!r} → {status}")
    assert failures == []
