"""Accounts: registration, the same answer for every failed login, password resets, sessions."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from booking.auth import services as auth_services
from booking.auth.models import Organisation, User
from booking.bookings.models import OutgoingMail
from booking.extensions import db
from tests.conftest import PASSWORD


def register(client, **fields):
    org = db.session.scalar(select(Organisation).order_by(Organisation.id))
    data = {
        "email": "new.member@example.com",
        "display_name": "新成员 🌿",
        "organisation": org.id,
        "password": PASSWORD,
        "confirm": PASSWORD,
    }
    data.update(fields)
    return client.post("/auth/register", data=data)


def test_register_creates_a_member_and_logs_in(client):
    response = register(client, email="New.Member@Example.com")
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "new.member@example.com"))
    assert (user.role, user.display_name) == ("member", "新成员 🌿")
    assert user.password_hash != PASSWORD
    assert client.get("/account").status_code == 200


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": "12345678", "confirm": "12345678"}, "too common"),
        ({"password": "short", "confirm": "short"}, "between 8 and 128"),
        ({"confirm": "something else"}, "passwords differ"),
        ({"email": "not an email"}, "Invalid email"),
        ({"organisation": "999999"}, "Not a valid choice"),
        ({"display_name": ""}, "This field is required"),
    ],
    ids=["common", "short", "mismatch", "email", "unit", "name"],
)
def test_register_refusals_are_form_errors(client, fields, message):
    response = register(client, **fields)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(User).where(User.email == "new.member@example.com")) is None


def test_an_email_registers_once(client, member):
    response = register(client, email=member.email.upper())
    assert "exists already" in response.get_data(as_text=True)


def _login(client, email, password):
    started = time.perf_counter()
    response = client.post("/auth/login", data={"email": email, "password": password})
    return response, time.perf_counter() - started


def test_unknown_email_wrong_password_and_deactivated_read_the_same(client, member, make_user):
    gone = make_user(active=False)
    _login(client, "warm-up@example.com", "whatever-it-is")  # the first request compiles templates: not timed
    answers = [
        _login(client, "nobody@example.com", "whatever-it-is"),
        _login(client, member.email, "not the password"),
        _login(client, gone.email, PASSWORD),
    ]
    bodies = [
        re.search(r'<div class="alert alert-danger"[^>]*>(.*?)</div>', r.get_data(as_text=True)).group(1)
        for r, _ in answers
    ]
    assert {r.status_code for r, _ in answers} == {401}
    assert len(set(bodies)) == 1
    # every path verifies a password hash, so none answers markedly faster (no email oracle)
    durations = [seconds for _, seconds in answers]
    assert max(durations) < 4 * min(durations)


def test_login_renews_the_session_and_logout_is_post_only(client, member):
    client.get("/auth/login")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    response = client.post("/auth/login", data={"email": member.email, "password": PASSWORD})
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert "planted" not in session
    assert client.get("/auth/logout").status_code == 405
    assert client.post("/auth/logout").status_code == 302
    assert client.get("/account").status_code == 302  # back to the login page


def test_reset_link_works_once(client, member):
    response = client.post("/auth/reset", data={"email": member.email})
    assert response.status_code == 302
    mail = db.session.scalar(select(OutgoingMail).where(OutgoingMail.kind == "password-reset"))
    assert mail.recipient == member.email
    link = re.search(r"https?://\S+/auth/reset/(\S+)", mail.body_text)
    assert link is not None
    path = f"/auth/reset/{link.group(1)}"
    assert client.get(path).status_code == 200
    new_password = "a brand new passphrase"
    assert client.post(path, data={"password": new_password, "confirm": new_password}).status_code == 302
    db.session.refresh(member)
    assert member.check_password(new_password)
    client.post("/auth/logout")
    again = client.post(path, data={"password": "yet another one!", "confirm": "yet another one!"})
    assert again.status_code == 302
    assert again.headers["Location"].endswith("/auth/reset")
    db.session.refresh(member)
    assert member.check_password(new_password)


def test_reset_for_an_unknown_email_reads_the_same_and_mails_nobody(client, member):
    known = client.post("/auth/reset", data={"email": member.email}, follow_redirects=True)
    unknown = client.post("/auth/reset", data={"email": "nobody@example.com"}, follow_redirects=True)
    assert known.status_code == unknown.status_code == 200
    flash = "If an account uses this address"
    assert flash in known.get_data(as_text=True)
    assert flash in unknown.get_data(as_text=True)
    recipients = db.session.scalars(select(OutgoingMail.recipient)).all()
    assert recipients == [member.email]


def test_reset_tokens_expire_and_cannot_be_forged(app, client, member, monkeypatch):
    with app.test_request_context():
        token = auth_services.reset_token(member)
    assert auth_services.user_for_reset(db.session, token).id == member.id
    assert auth_services.user_for_reset(db.session, token[:-2] + "xx") is None
    monkeypatch.setattr(auth_services, "RESET_MAX_AGE", -1)
    assert auth_services.user_for_reset(db.session, token) is None
    response = client.get(f"/auth/reset/{token}")
    assert response.status_code == 302


def test_a_new_password_ends_other_sessions(client, app, member):
    assert client.post("/auth/login", data={"email": member.email, "password": PASSWORD}).status_code == 302
    assert client.get("/account").status_code == 200
    auth_services.set_password(db.session, member, "changed elsewhere, long enough")
    assert client.get("/account").status_code == 302


def _selected(page: str, name: str) -> list[str]:
    """The values of the options marked selected in the <select name=...> of a page."""
    select_html = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select_html, f"no select {name}"
    options = re.findall(r"<option([^>]*)>", select_html.group(1))
    return [re.search(r'value="([^"]*)"', o).group(1) for o in options if re.search(r"\bselected\b", o)]


def test_the_account_form_shows_and_keeps_the_saved_member_unit(client, make_user):
    orgs = db.session.scalars(select(Organisation).order_by(Organisation.id)).all()
    not_first = orgs[3]
    user = make_user(organisation=not_first)
    user_id, email = user.id, user.email
    client.post("/auth/login", data={"email": email, "password": PASSWORD})

    page = client.get("/account").get_data(as_text=True)
    assert _selected(page, "organisation") == [str(not_first.id)]

    # the unchanged form, as a browser posts it, with only the language changed
    response = client.post(
        "/account", data={"display_name": user.display_name, "organisation": not_first.id, "language": "zh_Hans_CN"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    saved = db.session.get(User, user_id)
    assert (saved.organisation_id, saved.language) == (not_first.id, "zh_Hans_CN")


def test_registration_asks_for_a_member_unit_instead_of_choosing_one(client):
    page = client.get("/auth/register").get_data(as_text=True)
    assert _selected(page, "organisation") == []  # nothing chosen: the browser shows "please choose"
    assert re.search(r'<option[^>]*value="0"[^>]*>Please choose</option>', page)

    response = register(client, organisation="0")
    assert response.status_code == 200
    assert "Choose your member unit from the list." in response.get_data(as_text=True)
    assert db.session.scalar(select(User).where(User.email == "new.member@example.com")) is None
