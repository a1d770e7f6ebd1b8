"""Member units and people."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from booking.db import Base, UTCDateTime, utcnow

ROLES = ("member", "staff", "admin")
LANGUAGES = ("zh_Hans_CN", "en")


class Organisation(Base):
    """A member unit (成员单位) of the council: usage is reported per unit."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="")  # bank, securities, insurance, …
    active: Mapped[bool] = mapped_column(default=True)

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class User(UserMixin, Base):
    __tablename__ = "user"
    __table_args__ = (
        CheckConstraint("role IN ('member', 'staff', 'admin')", name="known_role"),
        CheckConstraint("language IN ('zh_Hans_CN', 'en')", name="known_language"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(256))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    language: Mapped[str] = mapped_column(String(16), default="zh_Hans_CN")
    active: Mapped[bool] = mapped_column(default=True)
    # Flask-Login's user id is this rotating token, so "log out everywhere", a password
    # change or deactivation kills every session and remember cookie at once.
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: secrets.token_urlsafe(32))
    # only the SHA-256 of the personal feed token is stored, looked up by that hash
    feed_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    feed_generation: Mapped[int] = mapped_column(default=0, server_default="0")  # bumped by each new token
    # the personal feed's watermark, moved with every change of this user's bookings (deletions
    # included) and of what their feed shows: `version` only ever goes up (ETags and caches key on
    # it, so a step back of the clock hides nothing); `changed_at` never goes back (Last-Modified)
    version: Mapped[int] = mapped_column(default=0, server_default="0")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    is_demo: Mapped[bool] = mapped_column(default=False)

    organisation: Mapped[Organisation | None] = relationship()

    def get_id(self) -> str:
        return self.session_token

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.active

    @property
    def is_staff(self) -> bool:
        return self.role in ("staff", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)
        self.session_token = secrets.token_urlsafe(32)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def new_feed_token(self, secret: str | None = None) -> str:
        """A fresh personal feed token; the old URL stops working at once. Never stored.

        With the app's `secret` the token is derived from it, the user and a generation that
        only goes up, so its owner can be shown it again later (`feed_token`) while the
        database holds only its hash; without one (scripts, tests) it is random.
        """
        self.feed_generation = (self.feed_generation or 0) + 1
        token = self._derived_feed_token(secret) if secret else secrets.token_urlsafe(32)
        self.feed_token_hash = hash_token(token)
        return token

    def feed_token(self, secret: str) -> str | None:
        """The current feed token, for its owner's eyes, if it was derived from `secret`.

        None when there is none, or when it was made another way (or before the secret changed):
        then only replacing it gives a URL that can be shown.
        """
        if self.feed_token_hash is None:
            return None
        token = self._derived_feed_token(secret)
        return token if hmac.compare_digest(hash_token(token), self.feed_token_hash) else None

    def _derived_feed_token(self, secret: str) -> str:
        message = f"feed-token:{self.id}:{self.feed_generation}".encode()
        digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
