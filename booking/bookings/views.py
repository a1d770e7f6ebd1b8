"""My bookings: the list, one booking, cancelling it, and its .ics file."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from booking.bookings import services
from booking.bookings.forms import CancelForm, count_units
from booking.bookings.models import HOLDING, Booking
from booking.db import utcnow
from booking.extensions import db
from booking.feeds.events import booking_event
from booking.feeds.ical import CalendarMeta, render_calendar
from booking.spaces.models import Space

bp = Blueprint("bookings", __name__, url_prefix="/bookings")

# "My bookings" shows every upcoming booking and this many of the most recent past ones.
PAST_SHOWN = 50


def get_own_booking_or_404(booking_id: int) -> Booking:
    """Someone else's booking is 'not found' for members, so ids reveal nothing; staff see any."""
    # an id no database column can hold is simply not found (SQLite would overflow)
    booking = db.session.get(Booking, booking_id) if 0 < booking_id < 2**63 else None
    if booking is None or (booking.requester_id != current_user.id and not current_user.is_staff):
        abort(404)
    return booking


@bp.get("")
@login_required
def mine() -> str:
    now = utcnow()
    mine_q = (
        select(Booking)
        .where(Booking.requester_id == current_user.id)
        .options(selectinload(Booking.space).selectinload(Space.location), selectinload(Booking.decided_by))
    )
    upcoming = db.session.scalars(mine_q.where(Booking.end_at > now).order_by(Booking.start_at)).all()
    past = db.session.scalars(
        mine_q.where(Booking.end_at <= now).order_by(Booking.start_at.desc()).limit(PAST_SHOWN)
    ).all()
    return render_template("bookings/mine.html", upcoming=upcoming, past=past, now=now)


@bp.get("/<int:booking_id>")
@login_required
def detail(booking_id: int) -> str:
    booking = get_own_booking_or_404(booking_id)
    return render_template(
        "bookings/detail.html",
        booking=booking,
        form=CancelForm(),
        can_cancel=_can_cancel(booking),
        needs_reason=booking.requester_id != current_user.id,
    )


def _can_cancel(booking: Booking) -> bool:
    if booking.status not in HOLDING:
        return False
    return current_user.is_staff or booking.start_at > utcnow()


@bp.route("/<int:booking_id>/cancel", methods=["GET", "POST"])
@login_required
def cancel(booking_id: int) -> Response | str:
    """GET asks "are you sure?" without JavaScript; POST cancels."""
    booking = get_own_booking_or_404(booking_id)
    form = CancelForm()
    needs_reason = booking.requester_id != current_user.id
    if request.method == "GET":
        return render_template("bookings/cancel.html", booking=booking, form=form, needs_reason=needs_reason)
    if not form.validate_on_submit():
        abort(400)
    try:
        services.cancel(
            db.session,
            services.context(current_user._get_current_object(), ip=request.remote_addr),
            booking.id,
            reason=form.reason.data or None,
        )
    except services.AlreadyDecided as stale:
        flash(_("Nothing changed: this booking is already %(status)s.", status=_status_word(stale.status)), "warning")
    except services.ReasonRequired:
        flash(_("Give a reason: the requester will read it."), "error")
    except services.NotPermitted:
        flash(_("This booking has already started, so it can no longer be cancelled here."), "error")
    else:
        flash(_("The booking is cancelled; the time is free for others again."), "success")
    return redirect(url_for("bookings.detail", booking_id=booking.id))


def _status_word(status: str) -> str:
    return {
        "pending": _("waiting for approval"),
        "confirmed": _("confirmed"),
        "rejected": _("rejected"),
        "cancelled": _("cancelled"),
        "expired": _("expired"),
    }.get(status, status)


@bp.get("/<int:booking_id>.ics")
@login_required
def ics(booking_id: int) -> Response:
    booking = get_own_booking_or_404(booking_id)
    locale = str(get_locale())
    location = booking.space.location
    event = booking_event(
        booking,
        host=current_app.config["BOOKING_HOST"],
        public_url=current_app.config["PUBLIC_URL"],
        locale=locale,
    )
    meta = CalendarMeta(name=f"{booking.space.name(locale)} · {location.name(locale)}", tzid=location.timezone)
    body = render_calendar(meta, [event], method="PUBLISH")
    response = current_app.response_class(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'attachment; filename="booking-{booking.id}.ics"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.context_processor
def page_helpers() -> dict[str, object]:
    return {"count_units": count_units}
