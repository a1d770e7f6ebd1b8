"""My bookings: the list (a series as one entry), one booking, cancelling it (or its series), its .ics file."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from booking.bookings import series as series_service
from booking.bookings import services
from booking.bookings.forms import CancelForm, count_units, describe_recurrence
from booking.bookings.models import HOLDING, Booking
from booking.db import utcnow
from booking.domain.recurrence import Recurrence
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
    return render_template("bookings/mine.html", upcoming=_group_series(upcoming, now), past=past, now=now)


def _group_series(upcoming: Sequence[Booking], now: datetime) -> list[dict[str, Any]]:
    """Upcoming bookings with each series folded into one entry, in the order of their next start."""
    summaries = {s.series_id: s for s in series_service.series_summary(db.session, current_user.id, now)}
    dates: dict[int, list[Booking]] = defaultdict(list)
    entries: list[dict[str, Any]] = []
    for booking in upcoming:
        if booking.series_id in summaries:
            dates[booking.series_id].append(booking)
        else:
            entries.append({"booking": booking, "start": booking.start_at})
    locale = str(get_locale())
    for series_id, summary in summaries.items():
        occurrences = dates.get(series_id)
        if not occurrences:  # finished between the two queries
            continue
        upcoming_next = next((b for b in occurrences if b.start_at == summary.next_start), occurrences[0])
        entries.append(
            {
                "series": summary,
                "start": summary.next_start or occurrences[0].start_at,
                "occurrences": occurrences,
                "next": upcoming_next,
                "rule_text": describe_recurrence(summary.rule, summary.first_start, summary.first_end, locale),
            }
        )
    entries.sort(key=lambda entry: entry["start"])
    return entries


@bp.get("/<int:booking_id>")
@login_required
def detail(booking_id: int) -> str:
    booking = get_own_booking_or_404(booking_id)
    can_cancel = _can_cancel(booking)
    return render_template(
        "bookings/detail.html",
        booking=booking,
        form=CancelForm(),
        can_cancel=can_cancel,
        needs_reason=booking.requester_id != current_user.id,
        series=_series_facts(booking) if booking.series_id is not None else None,
    )


def _series_facts(booking: Booking) -> dict[str, Any]:
    """The rule in words, and how many dates each cancel scope would cancel (those not started yet)."""
    now = utcnow()
    occurrences = series_service.occurrences_of(db.session, booking.series_id)  # type: ignore[arg-type]
    future = [b for b in occurrences if b.status in HOLDING and b.start_at > now]
    stored = booking.series.rule if booking.series is not None else {}
    rule_text = None
    if stored.get("recurrence"):
        first_start, first_end = stored.get("first_start"), stored.get("first_end")
        rule_text = describe_recurrence(
            Recurrence.from_dict(stored["recurrence"]),
            datetime.fromisoformat(first_start) if first_start else None,
            datetime.fromisoformat(first_end) if first_end else None,
            str(get_locale()),
        )
    return {
        "rule_text": rule_text,
        "following": sum(1 for b in future if b.start_at >= booking.start_at),
        "all": len(future),
        "total": len(occurrences),
    }


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
    scope = request.values.get("scope", "this")
    if scope not in series_service.SCOPES or (scope != "this" and booking.series_id is None):
        abort(400)
    if request.method == "GET":
        return render_template(
            "bookings/cancel.html",
            booking=booking,
            form=form,
            needs_reason=needs_reason,
            scope=scope,
            series=_series_facts(booking) if booking.series_id is not None else None,
        )
    if not form.validate_on_submit():
        abort(400)
    if scope != "this":
        return _cancel_series(booking, scope, form.reason.data or None)
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


def _cancel_series(booking: Booking, scope: series_service.Scope, reason: str | None) -> Response:
    """Cancel this and the following dates, or the whole series; what has started stays as it was."""
    try:
        cancelled = series_service.cancel_occurrences(
            db.session,
            services.context(current_user._get_current_object(), ip=request.remote_addr),
            booking.id,
            scope,
            reason=reason,
        )
    except services.ReasonRequired:
        flash(_("Give a reason: the requester will read it."), "error")
        return redirect(url_for("bookings.detail", booking_id=booking.id))
    except services.NotPermitted:
        abort(404)
    if cancelled:
        flash(
            ngettext(
                "%(num)d booking of the series is cancelled; the time is free for others again.",
                "%(num)d bookings of the series are cancelled; the time is free for others again.",
                len(cancelled),
            ),
            "success",
        )
    else:
        flash(_("Nothing changed: no dates of this series are still to come."), "warning")
    return redirect(url_for("bookings.mine"))


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
