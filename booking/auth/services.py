"""Accounts: registration, password resets, profile changes."""

from __future__ import annotations

import hashlib
import logging

from blinker import Namespace
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from booking import clock
from booking.auth.models import Organisation, User
from booking.db import watermark_values

log = logging.getLogger(__name__)

RESET_MAX_AGE = 3600  # seconds a reset link stays valid
# Checked against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = generate_password_hash("no such user, same cost")


signals = Namespace()
# sent inside the transaction that renamed a user or moved them to another member unit, with
# the session as sender: whatever shows their name (bookings' spaces) moves its watermark
shown_changed = signals.signal("user-shown-changed")


class EmailTaken(ValueError):
    pass


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user, or None for an unknown email, a wrong password or a deactivated account alike."""
    user = find_by_email(session, email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    return user


def register(session: Session, *, email: str, display_name: str, organisation_id: int, password: str) -> User:
    email = email.strip().lower()
    if find_by_email(session, email) is not None:
        raise EmailTaken(email)
    organisation = session.get(Organisation, organisation_id)
    if organisation is None or not organisation.active:
        raise LookupError(organisation_id)
    user = User(email=email, display_name=display_name.strip(), organisation=organisation, role="member")
    user.set_password(password)
    session.add(user)
    session.commit()
    return user


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def _fingerprint(user: User) -> str:
    # changes with the password, so a link works once: using it changes what it was signed with
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def reset_token(user: User) -> str:
    return _serializer().dumps({"user": user.id, "pw": _fingerprint(user)})


def user_for_reset(session: Session, token: str) -> User | None:
    try:
        data = _serializer().loads(token, max_age=RESET_MAX_AGE)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict):
        return None
    user = session.get(User, data.get("user"))
    if user is None or not user.active or data.get("pw") != _fingerprint(user):
        return None
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """New password; every other session and remember cookie of the user ends with it."""
    user.set_password(password)
    session.commit()


def update_account(session: Session, user: User, *, display_name: str, organisation_id: int, language: str) -> None:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise LookupError(organisation_id)
    shown_elsewhere = (user.display_name, user.organisation_id) != (display_name.strip(), organisation.id)
    feed_changed = shown_elsewhere or user.language != language
    user.display_name = display_name.strip()
    user.organisation = organisation
    user.language = language
    if feed_changed:
        # the name and unit appear in staff's feeds and pages, the language in the personal feed
        now = clock.now()
        for column, value in watermark_values(User.__table__, now).items():
            setattr(user, column, value)
        if shown_elsewhere:
            session.flush()
            shown_changed.send(session, user_id=user.id, now=now)
    session.commit()
