"""Cross-cutting web concerns: security headers, error pages, the login loader, /healthz."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import func, select, text
from werkzeug.exceptions import HTTPException

from booking.auth.models import User
from booking.db import utcnow
from booking.extensions import db, login_manager

log = logging.getLogger(__name__)

CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"

    register_template_helpers(app)

    @login_manager.user_loader
    def load_user(session_token: str) -> User | None:
        return db.session.scalar(select(User).where(User.session_token == session_token, User.active.is_(True)))

    @app.before_request
    def refuse_nul_bytes() -> None:
        # no URL of ours holds a NUL character, and PostgreSQL cannot even compare one: a clear
        # 400 before a view or a query sees it (forms say it on the field instead)
        if any("\x00" in value for value in (request.path, *request.args.values())):
            abort(400)

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        try:
            db.session.execute(text("SELECT 1"))
        except Exception:  # any database failure means "not healthy"; the log has the detail
            log.exception("health check failed")
            return jsonify(status="error", database="unreachable"), 503
        return jsonify(status="ok", database="ok"), 200

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        return render_template(
            "errors/error.html",
            code=400,
            title=_("This form has expired"),
            message=_("For your security the form was not sent. Go back, reload the page and try again."),
        ), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response | tuple[str, int]:
        if request.path.startswith(("/api/", "/feeds/")) or request.path.endswith(".ics"):
            return jsonify(error=error.name, reason=error.description), error.code or 500
        titles = {
            400: _("This request could not be read"),
            403: _("You do not have access to this page"),
            404: _("Page not found"),
            405: _("This action is not allowed here"),
            413: _("What you sent is too large"),
            429: _("Too many attempts"),
        }
        messages = {
            400: _("It contained characters that no page accepts. Please go back and try again."),
            403: _("If you think you should, ask the station's staff."),
            404: _("The link may be old, or the booking may not be yours."),
            429: _("Please wait a minute and try again."),
        }
        code = error.code or 500
        return render_template(
            "errors/error.html",
            code=code,
            title=titles.get(code, _("Something went wrong")),
            message=messages.get(code, _("Please go back and try again.")),
        ), code

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        return render_template(
            "errors/error.html",
            code=500,
            title=_("Something went wrong on our side"),
            message=_("Nothing you entered was lost from a confirmed booking. Please try again in a moment."),
        ), 500


def register_template_helpers(app: Flask) -> None:
    from flask_babel import get_locale
    from flask_login import current_user

    from booking import i18n
    from booking.bookings.models import Booking, Status
    from booking.spaces.models import Location

    app.jinja_env.filters.update(
        day=i18n.format_day,
        short_day=i18n.format_short_day,
        clock=i18n.format_clock,
    )
    app.jinja_env.globals.update(format_span=i18n.format_span)

    @app.context_processor
    def layout_context() -> dict[str, object]:
        locale = str(get_locale() or app.config["BABEL_DEFAULT_LOCALE"])
        pending = 0
        if current_user.is_authenticated and current_user.is_staff:
            pending = db.session.scalar(
                select(func.count(Booking.id)).where(
                    Booking.status == Status.PENDING.value, Booking.start_at > utcnow()
                )
            )
        station = g.get("station_name")
        if station is None:
            location = db.session.scalar(select(Location).order_by(Location.id))
            station = location.name(locale) if location else ""
            g.station_name = station
        return {
            "current_locale": locale,
            "html_lang": "zh-Hans" if locale.startswith("zh") else "en",
            "station_name": station,
            "pending_count": pending,
            "view_functions": app.view_functions,
        }

    @app.post("/language")
    def set_language() -> Response:
        language = request.form.get("language", "")
        if language in app.config["LANGUAGES"]:
            session["language"] = language
            if current_user.is_authenticated:
                current_user.language = language
                db.session.commit()
        return redirect(safe_next(request.form.get("next")))


def safe_next(target: str | None) -> str:
    """Only a local path: `//evil.example`, `https://evil.example` and `/\\evil` go home instead."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and not target.startswith(("//", "/\\"))
            and "\\" not in target
        ):
            return target
    return url_for("spaces.home")
