"""Which language and zone a page speaks: the account's, else the session's switch, else the browser's."""

from __future__ import annotations

from flask import current_app, request, session
from flask_login import current_user


def select_locale() -> str:
    languages: list[str] = current_app.config["LANGUAGES"]
    if current_user and current_user.is_authenticated and current_user.language in languages:
        return str(current_user.language)
    chosen = session.get("language")
    if chosen in languages:
        return str(chosen)
    best = request.accept_languages.best_match(["zh", "zh-CN", "zh-Hans", "en"], default=None)
    if best and best.startswith("en"):
        return "en"
    return str(current_app.config["BABEL_DEFAULT_LOCALE"])


def select_timezone() -> str:
    return str(current_app.config["STATION_TIMEZONE"])
