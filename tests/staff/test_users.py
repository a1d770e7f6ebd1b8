"""Admins manage accounts: role, member unit, deactivation that ends sessions and feeds."""

from __future__ import annotations

from sqlalchemy import select

from booking.auth.models import Organisation, User
from booking.extensions import db
from tests.staff.conftest import login


def test_deactivating_ends_sessions_and_the_feed(client, app, admin, member):
    member.new_feed_token()
    db.session.commit()
    old_session = member.session_token
    member_client = app.test_client()
    login(member_client, member)
    login(client, admin)
    org = db.session.scalars(select(Organisation).order_by(Organisation.id.desc())).first()
    response = client.post(
        f"/staff/users/{member.id}", data={f"u{member.id}-role": "member", f"u{member.id}-organisation": org.id}
    )
    assert response.status_code == 302
    db.session.expire_all()
    changed = db.session.get(User, member.id)
    assert (changed.active, changed.feed_token_hash, changed.organisation_id) == (False, None, org.id)
    assert changed.session_token != old_session
    assert member_client.get("/bookings").status_code in (302, 401)  # the old session is gone
    assert "account" in client.get("/staff/audit").get_data(as_text=True)


def test_promote_to_staff(client, admin, member):
    login(client, admin)
    client.post(
        f"/staff/users/{member.id}",
        data={
            f"u{member.id}-role": "staff",
            f"u{member.id}-organisation": member.organisation_id,
            f"u{member.id}-active": "y",
        },
    )
    db.session.expire_all()
    assert db.session.get(User, member.id).role == "staff"


def test_admins_cannot_lock_themselves_out(client, admin):
    login(client, admin)
    response = client.post(
        f"/staff/users/{admin.id}",
        data={f"u{admin.id}-role": "member", f"u{admin.id}-organisation": 0},
        follow_redirects=True,
    )
    assert "cannot demote or deactivate your own account" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, admin.id).role == "admin"


def test_users_page_lists_accounts(client, admin, member):
    login(client, admin)
    assert member.email in client.get("/staff/users").get_data(as_text=True)
