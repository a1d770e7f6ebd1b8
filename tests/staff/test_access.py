"""Every staff URL: members get 403, anonymous visitors the login page, staff not the admin pages."""

from __future__ import annotations

import pytest

from tests.staff.conftest import login

GET_URLS = [
    "/staff/",
    "/staff/queue",
    "/staff/book",
    "/staff/closures",
    "/staff/spaces",
    "/staff/spaces/meeting-room",
    "/staff/audit",
    "/staff/reports",
    "/staff/reports?format=csv",
    "/staff/bookings/1",
    "/staff/users",
]
POST_URLS = [
    "/staff/bookings/1/approve",
    "/staff/bookings/1/reject",
    "/staff/bookings/1/cancel",
    "/staff/series/1/approve",
    "/staff/series/1/reject",
    "/staff/book",
    "/staff/closures",
    "/staff/spaces/meeting-room",
    "/staff/users/1",
]


def test_every_staff_rule_is_listed(app):
    """A new staff URL must be added above, so its protection is tested."""
    rules = {rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("staff.")}
    listed = {url.split("?")[0] for url in GET_URLS + POST_URLS}
    for rule in rules:
        concrete = rule.replace("<int:booking_id>", "1").replace("<int:user_id>", "1").replace("<slug>", "meeting-room")
        concrete = concrete.replace("<int:series_id>", "1")
        assert concrete in listed, rule


@pytest.mark.parametrize("url", GET_URLS)
def test_member_gets_403_on_get(client, member, url):
    login(client, member)
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", POST_URLS)
def test_member_gets_403_on_post(client, member, url):
    login(client, member)
    assert client.post(url, data={"reason": "x"}).status_code == 403


@pytest.mark.parametrize("url", GET_URLS)
def test_anonymous_is_sent_to_login_on_get(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize("url", POST_URLS)
def test_anonymous_is_sent_to_login_on_post(client, url):
    response = client.post(url)
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize("url", ["/staff/users", "/staff/users/1"])
def test_staff_who_are_not_admins_cannot_manage_accounts(client, staff, url):
    login(client, staff)
    response = client.get(url) if url == "/staff/users" else client.post(url, data={})
    assert response.status_code == 403


@pytest.mark.parametrize("url", [u for u in GET_URLS if "users" not in u and "bookings/1" not in u])
def test_staff_reach_every_staff_page(client, staff, url):
    login(client, staff)
    response = client.get(url)
    assert response.status_code in (200, 302), url
