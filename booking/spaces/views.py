"""Browse the station's spaces, see a week (or month) of a space, and book from the grid."""

from __future__ import annotations

from datetime import date

from babel import dates as babel_dates
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from booking.bookings import services
from booking.bookings.forms import (
    BookingForm,
    approval_notice,
    count_units,
    form_class,
    format_duration,
    link_params,
    prefill,
    refusal_message,
)
from booking.db import utcnow
from booking.domain.refusals import Conflict
from booking.extensions import db
from booking.spaces.forms import parse_week_date
from booking.spaces.models import Location, Space
from booking.spaces.services import WeekView, home_summaries, space_week

bp = Blueprint("spaces", __name__)


@bp.context_processor
def page_helpers() -> dict[str, object]:
    return {
        "count_units": count_units,
        "duration": format_duration,
        "link_params": link_params,
        "weekday_name": weekday_name,
    }


def weekday_name(day: date) -> str:
    """'周二' / 'Tue'."""
    return babel_dates.format_date(day, "EEE", locale=str(get_locale()))


def heading_for(view: WeekView) -> str:
    locale = str(get_locale())
    if view.month:
        return babel_dates.format_skeleton("yMMMM", view.anchor, locale=locale)
    return babel_dates.format_interval(view.days[0].day, view.days[-1].day, "yMMMd", locale=locale)


def get_space_or_404(slug: str) -> Space:
    return db.first_or_404(select(Space).where(Space.slug == slug))


@bp.get("/")
def home() -> str:
    location = db.session.scalar(select(Location).order_by(Location.id))
    if location is None:  # a fresh database before `booking seed`
        return render_template("spaces/home.html", location=None, summaries=[])
    spaces = db.session.scalars(
        select(Space).where(Space.location_id == location.id).order_by(Space.sort_order, Space.id)
    ).all()
    summaries = home_summaries(db.session, location, spaces, now=utcnow())
    return render_template("spaces/home.html", location=location, summaries=summaries)


@bp.get("/spaces/<slug>")
def week(slug: str) -> str:
    space = get_space_or_404(slug)
    now = utcnow()
    today = now.astimezone(space.location.tz).date()
    anchor = parse_week_date(request.args.get("date"), today)
    if anchor is None:
        flash(_("That date could not be read, so here is this week. Dates look like 2026-12-01."), "warning")
        anchor = today
    viewer = current_user.id if current_user.is_authenticated else None
    view = space_week(db.session, space, anchor, now=now, viewer_id=viewer)
    return render_template(
        "spaces/week.html",
        space=space,
        view=view,
        heading=heading_for(view),
        approval=approval_notice(space) if space.bookable else None,
    )


@bp.route("/spaces/<slug>/book", methods=["GET", "POST"])
@login_required
def book(slug: str) -> Response | tuple[str, int]:
    space = get_space_or_404(slug)
    if not space.bookable:
        flash(_("This space is walk-in only: no booking is needed."), "info")
        return redirect(url_for("spaces.week", slug=space.slug))
    form_type = form_class(space)
    if request.method == "GET":
        form = form_type(space, data=prefill(space, request.args.get("start"), request.args.get("end")))
    else:
        form = form_type(space)
    status, nearest = 200, None
    if form.validate_on_submit():
        try:
            interval = form.interval()
        except (ValueError, OverflowError):
            form.form_errors.append(_("The end must come after the start."))
            status = 422
        else:
            try:
                booking = services.request_booking(
                    db.session,
                    services.context(current_user._get_current_object(), ip=request.remote_addr),
                    space_id=space.id,
                    requester=current_user._get_current_object(),
                    start=interval.start,
                    end=interval.end,
                    title=form.title.data.strip(),
                    units=form.units_value,
                    attendees=form.attendees_value,
                    title_public=bool("title_public" in form and form.title_public.data),
                )
            except services.BookingRefused as refused:
                form.form_errors.append(refusal_message(refused.refusal, space))
                if isinstance(refused.refusal, Conflict):
                    nearest = refused.refusal.nearest_free
                status = 409
            else:
                if booking.status == "pending":
                    flash(_("Request sent. It is waiting for approval by the station's staff."), "info")
                else:
                    flash(_("Booked and confirmed. See you there!"), "success")
                return redirect(url_for("bookings.detail", booking_id=booking.id))
    elif form.is_submitted():
        status = 422
    locale = str(get_locale())
    return render_template(
        "spaces/book.html",
        space=space,
        form=form,
        rules=space.rules(),
        approval=approval_notice(space),
        nearest=nearest,
        nearest_params=link_params(space, nearest) if nearest else None,
        unit=space.unit_label(locale),
        back_date=_chosen_day(form),
    ), status


def _chosen_day(form: BookingForm) -> str | None:
    field = getattr(form, "day", None) or getattr(form, "first_day", None)
    return field.data.isoformat() if field is not None and isinstance(field.data, date) else None
