"""Register, log in and out, reset a password, and the account page."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from booking.auth import services
from booking.auth.forms import AccountForm, LoginForm, RegisterForm, ResetForm, ResetRequestForm
from booking.auth.models import Organisation
from booking.bookings.models import OutgoingMail
from booking.extensions import db, limiter
from booking.web import safe_next

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


def organisation_choices() -> list[SelectChoice]:
    locale = str(get_locale())
    orgs = db.session.scalars(select(Organisation).where(Organisation.active.is_(True)).order_by(Organisation.id))
    return [SelectChoice(org.id, org.name(locale)) for org in orgs]


def _start_session(user: object, remember: bool = False) -> None:
    # a fresh session at login: nothing from before (a planted session id, say) carries over
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    login_user(user, remember=remember)


@bp.route("/auth/register", methods=["GET", "POST"])
def register() -> str | Response:
    if current_user.is_authenticated:
        return redirect(url_for("spaces.home"))
    form = RegisterForm()
    form.organisation.choices = [SelectChoice(0, _("Please choose")), *organisation_choices()]
    if form.validate_on_submit():
        try:
            user = services.register(
                db.session,
                email=form.email.data,
                display_name=form.display_name.data,
                organisation_id=form.organisation.data,
                password=form.password.data,
            )
        except services.EmailTaken:
            form.email.errors.append(_("An account with this email exists already. Log in, or reset the password."))
        except LookupError:
            form.organisation.errors.append(_("Choose a member unit from the list."))
        else:
            if session.get("language") in current_app.config["LANGUAGES"]:
                user.language = session["language"]
                db.session.commit()
            _start_session(user)
            flash(_("Welcome! Your account is ready."), "success")
            return redirect(url_for("spaces.home"))
    return render_template("auth/register.html", form=form)


@bp.route("/auth/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login() -> str | Response:
    form = LoginForm()
    failed = False
    if form.validate_on_submit():
        user = services.authenticate(db.session, form.email.data, form.password.data)
        if user is not None:
            _start_session(user, remember=bool(form.remember.data))
            return redirect(safe_next(request.args.get("next")))
        failed = True
    return render_template("auth/login.html", form=form, failed=failed), (401 if failed else 200)


@bp.post("/auth/logout")
def logout() -> Response:
    logout_user()
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    flash(_("You are logged out."), "info")
    return redirect(url_for("spaces.home"))


@bp.route("/auth/reset", methods=["GET", "POST"])
@limiter.limit("5 per minute", methods=["POST"])
def reset_request() -> str | Response:
    form = ResetRequestForm()
    if form.validate_on_submit():
        user = services.find_by_email(db.session, form.email.data)
        if user is not None and user.active:
            _queue_reset_mail(user)
        # the same answer whether or not the address has an account
        flash(_("If an account uses this address, a link to choose a new password is on its way."), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_request.html", form=form)


def _queue_reset_mail(user: object) -> None:
    token = services.reset_token(user)
    link = current_app.config["PUBLIC_URL"].rstrip("/") + url_for("auth.reset", token=token)
    with force_locale(user.language):
        subject = _("Choose a new password")
        body = render_template("auth/reset_mail.txt", user=user, link=link)
    db.session.add(OutgoingMail(kind="password-reset", recipient=user.email, subject=subject, body_text=body))
    db.session.commit()


@bp.route("/auth/reset/<token>", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def reset(token: str) -> str | Response:
    user = services.user_for_reset(db.session, token)
    if user is None:
        flash(_("This link has expired or has been used. Ask for a new one."), "error")
        return redirect(url_for("auth.reset_request"))
    form = ResetForm()
    if form.validate_on_submit():
        services.set_password(db.session, user, form.password.data)
        _start_session(user)
        flash(_("Your new password is set."), "success")
        return redirect(url_for("spaces.home"))
    return render_template("auth/reset.html", form=form)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> str | Response:
    # not obj=current_user: its `organisation` is the related object, which would win over the
    # id and leave the select with nothing chosen (the browser then shows, and posts, the first unit)
    form = AccountForm(
        display_name=current_user.display_name,
        organisation=current_user.organisation_id,
        language=current_user.language,
    )
    form.organisation.choices = organisation_choices()
    if form.validate_on_submit():
        try:
            services.update_account(
                db.session,
                current_user,
                display_name=form.display_name.data,
                organisation_id=form.organisation.data,
                language=form.language.data,
            )
        except LookupError:
            form.organisation.errors.append(_("Choose a member unit from the list."))
        else:
            session["language"] = current_user.language
            flash(_("Saved."), "success")
            return redirect(url_for("auth.account"))
    response = make_response(render_template("auth/account.html", form=form))
    # the page shows the personal calendar URL, a secret: never cached, never in a Referer
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
