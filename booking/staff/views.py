"""Staff run the station: the approval queue, bookings for callers, closures, space rules,
accounts, the audit trail and usage reports.

Every view: parse → load → authorise (`staff_required` / `admin_required`) → call one
service → redirect or render.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from booking import i18n
from booking.auth.decorators import admin_required, staff_required
from booking.auth.models import Organisation, User
from booking.bookings import series as series_service
from booking.bookings import services
from booking.bookings.models import Booking, Series
from booking.db import utcnow
from booking.domain.intervals import Interval, local_at, local_midnight
from booking.domain.rules import parse_hhmm
from booking.extensions import db
from booking.spaces.models import RULE_COLUMNS, Closure, Location, Space
from booking.staff import charts, labels, reports
from booking.staff import services as staff_services
from booking.staff.forms import (
    BookForMemberForm,
    ClosureForm,
    EmptyForm,
    ReasonForm,
    SpaceRulesForm,
    UserForm,
    choices,
    format_ranges,
    parse_ranges,
)
from booking.staff.messages import already_decided_message, refusal_message
from booking.web import safe_next

bp = Blueprint("staff", __name__, url_prefix="/staff")

QUEUE_PAGE = 50
AUDIT_PAGE = 50


# -- helpers ------------------------------------------------------------------------------


def _ctx() -> services.Context:
    return services.context(current_user._get_current_object(), ip=request.remote_addr)


def _locale() -> str:
    return str(get_locale())


def _location() -> Location:
    location = db.session.scalar(select(Location).order_by(Location.id))
    if location is None:
        abort(404)
    return location


def _page() -> int:
    return max(request.args.get("page", 1, type=int) or 1, 1)


def _back(default: str) -> str:
    return safe_next(request.form.get("next") or request.args.get("next") or default)


def _local_at(day: date, hhmm: str) -> datetime:
    """A wall-clock time on a local day; '24:00' is the midnight that ends it."""
    tz = i18n.station_tz()
    if hhmm == "24:00":
        return local_midnight(day + timedelta(days=1), tz)
    return local_at(day, parse_hhmm(hhmm), tz)


def _space_pairs(*, bookable_only: bool = True) -> list[tuple[int, str]]:
    stmt = select(Space).order_by(Space.sort_order)
    if bookable_only:
        stmt = stmt.where(Space.bookable.is_(True))
    return [(s.id, s.name(_locale())) for s in db.session.scalars(stmt)]


@bp.get("/")
@staff_required
def index() -> Response:
    return redirect(url_for("staff.queue"))


# -- the approval queue -------------------------------------------------------------------


@bp.get("/queue")
@staff_required
def queue() -> str:
    staff_services.expire_if_stale(db.session, _ctx())
    page = _page()
    found = staff_services.pending_page(db.session, page=page, per_page=QUEUE_PAGE)
    total = found.total
    return render_template(
        "staff/queue.html",
        rows=found.entries,
        total=total,
        dates=found.dates,
        page=page,
        pages=max((total + QUEUE_PAGE - 1) // QUEUE_PAGE, 1),
        form=EmptyForm(),
        reason_form=ReasonForm(),
        locale=_locale(),
    )


@bp.post("/bookings/<int:booking_id>/approve")
@staff_required
def approve(booking_id: int) -> Response:
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    booking = db.get_or_404(Booking, booking_id)
    try:
        services.approve(db.session, _ctx(), booking_id)
    except services.AlreadyDecided as exc:
        flash(already_decided_message(exc), "warning")
    except services.BookingRefused as exc:
        flash(_("Not approved: %(why)s", why=refusal_message(exc.refusal, booking.space)), "error")
    else:
        flash(_("Approved booking #%(id)s. The requester is told.", id=booking_id), "success")
    return redirect(_back(url_for("staff.queue")))


@bp.post("/bookings/<int:booking_id>/reject")
@staff_required
def reject(booking_id: int) -> Response:
    db.get_or_404(Booking, booking_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        flash(_("Not rejected: give a reason, the requester reads it."), "error")
        return redirect(_back(url_for("staff.queue")))
    try:
        services.reject(db.session, _ctx(), booking_id, form.reason.data)
    except services.AlreadyDecided as exc:
        flash(already_decided_message(exc), "warning")
    except services.ReasonRequired:
        flash(_("Not rejected: give a reason, the requester reads it."), "error")
    else:
        flash(_("Rejected booking #%(id)s. The requester is told why.", id=booking_id), "success")
    return redirect(_back(url_for("staff.queue")))


@bp.post("/series/<int:series_id>/approve")
@staff_required
def approve_series(series_id: int) -> Response:
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    found = db.get_or_404(Series, series_id)
    space = db.get_or_404(Space, found.space_id)
    whole_days = space.whole_days
    decision = series_service.approve_series(db.session, _ctx(), series_id)
    if decision.decided:
        flash(
            ngettext(
                "Approved %(num)s request of the series. The requester is told.",
                "Approved %(num)s requests of the series. The requester is told.",
                len(decision.decided),
            ),
            "success",
        )
    if decision.left_pending:
        lines = "; ".join(
            f"#{b.id} {i18n.format_span(b.start_at, b.end_at, whole_days=whole_days)}: " + refusal_message(why, space)
            for b, why in decision.left_pending
        )
        flash(
            ngettext(
                "%(num)s request no longer fits and stays pending: %(list)s",
                "%(num)s requests no longer fit and stay pending: %(list)s",
                len(decision.left_pending),
                list=lines,
            ),
            "warning",
        )
    if not decision.decided and not decision.left_pending:
        flash(_("Nothing in this series is waiting any more."), "info")
    return redirect(_back(url_for("staff.queue")))


@bp.post("/series/<int:series_id>/reject")
@staff_required
def reject_series(series_id: int) -> Response:
    db.get_or_404(Series, series_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        flash(_("Not rejected: give a reason, the requester reads it."), "error")
        return redirect(_back(url_for("staff.queue")))
    try:
        rejected = series_service.reject_series(db.session, _ctx(), series_id, form.reason.data)
    except services.ReasonRequired:
        flash(_("Not rejected: give a reason, the requester reads it."), "error")
    else:
        if rejected:
            flash(
                ngettext(
                    "Rejected %(num)s request of the series. The requester is told why.",
                    "Rejected %(num)s requests of the series. The requester is told why.",
                    len(rejected),
                ),
                "success",
            )
        else:
            flash(_("Nothing in this series is waiting any more."), "info")
    return redirect(_back(url_for("staff.queue")))


@bp.get("/bookings/<int:booking_id>")
@staff_required
def booking(booking_id: int) -> str:
    found = db.session.scalar(
        select(Booking)
        .where(Booking.id == booking_id)
        .options(joinedload(Booking.requester), joinedload(Booking.space), joinedload(Booking.organisation))
    )
    if found is None:
        abort(404)
    return render_template(
        "staff/booking.html", booking=found, reason_form=ReasonForm(), form=EmptyForm(), locale=_locale()
    )


@bp.post("/bookings/<int:booking_id>/cancel")
@staff_required
def cancel(booking_id: int) -> Response:
    db.get_or_404(Booking, booking_id)
    form = ReasonForm()
    back = _back(url_for("staff.booking", booking_id=booking_id))
    if not form.validate_on_submit():
        flash(_("Not cancelled: give a reason, the requester reads it."), "error")
        return redirect(back)
    try:
        services.cancel(db.session, _ctx(), booking_id, form.reason.data)
    except services.AlreadyDecided as exc:
        flash(already_decided_message(exc), "warning")
    except services.ReasonRequired:
        flash(_("Not cancelled: give a reason, the requester reads it."), "error")
    else:
        flash(_("Cancelled booking #%(id)s. The requester is told why.", id=booking_id), "success")
    return redirect(back)


# -- booking for a member -----------------------------------------------------------------


@bp.route("/book", methods=["GET", "POST"])
@staff_required
def book() -> str | Response:
    form = BookForMemberForm()
    form.space.choices = choices(_space_pairs())
    if request.method == "GET":
        if request.args.get("member"):
            form.member.data = request.args["member"]
        if request.args.get("space", type=int):
            form.space.data = request.args.get("space", type=int)
    query = (request.args.get("q") or "").strip()
    matches: list[User] = []
    if query:
        like = f"%{query.lower()}%"
        matches = list(
            db.session.scalars(
                select(User)
                .where(User.active.is_(True), or_(func.lower(User.email).like(like), User.display_name.like(like)))
                .options(joinedload(User.organisation))
                .order_by(User.email)
                .limit(20)
            )
        )
    if form.validate_on_submit():
        member = db.session.scalar(select(User).where(func.lower(User.email) == form.member.data.strip().lower()))
        space = db.session.get(Space, form.space.data)
        if member is None or not member.active:
            form.member.errors.append(_("No active account has this email."))
        elif space is None:
            form.space.errors.append(_("Choose a space from the list."))
        else:
            tz = i18n.station_tz()
            if space.whole_days:
                last = form.last_day.data or form.day.data
                start, end = local_midnight(form.day.data, tz), local_midnight(last + timedelta(days=1), tz)
            else:
                start, end = _local_at(form.day.data, form.start.data), _local_at(form.day.data, form.end.data)
            if end <= start:
                form.end.errors.append(_("The end must come after the start."))
            else:
                try:
                    made = services.request_booking(
                        db.session,
                        _ctx(),
                        space_id=space.id,
                        requester=member,
                        start=start,
                        end=end,
                        title=form.title.data.strip(),
                        units=form.units.data,
                        attendees=form.attendees.data,
                        override_reason=form.override_reason.data or None,
                    )
                except services.BookingRefused as exc:
                    form.form_errors.append(refusal_message(exc.refusal, space))
                else:
                    flash(
                        _(
                            "Booked %(space)s for %(name)s: %(span)s.",
                            space=space.name(_locale()),
                            name=member.display_name,
                            span=i18n.format_span(made.start_at, made.end_at, whole_days=space.whole_days),
                        ),
                        "success",
                    )
                    return redirect(url_for("staff.booking", booking_id=made.id))
    return render_template("staff/book.html", form=form, query=query, matches=matches, locale=_locale())


# -- closures -----------------------------------------------------------------------------


@bp.route("/closures", methods=["GET", "POST"])
@staff_required
def closures() -> str | Response:
    location = _location()
    form = ClosureForm()
    form.space.choices = choices([(0, _("The whole station")), *_space_pairs(bookable_only=False)])
    preview: list[Booking] | None = None
    if form.validate_on_submit():
        start = _local_at(form.first_day.data, form.start.data)
        end = _local_at(form.last_day.data, form.end.data)
        space_id = form.space.data or None
        if end <= start:
            form.end.errors.append(_("The end must come after the start."))
        else:
            in_the_way = services.holding_in_range(db.session, location.id, space_id, Interval(start, end))
            confirmed = request.form.get("confirm") == "1"
            expected = {int(i) for i in request.form.getlist("expected") if i.isdigit()}
            if in_the_way and not confirmed:
                preview = in_the_way
            else:
                try:
                    _closure, cancelled = services.close(
                        db.session,
                        _ctx(),
                        location_id=location.id,
                        space_id=space_id,
                        start=start,
                        end=end,
                        reason=form.reason.data,
                        expected_booking_ids=expected,
                    )
                except services.ClosureChanged as exc:
                    flash(_("New bookings appeared in this range: check the list again."), "warning")
                    preview = exc.bookings
                else:
                    if cancelled:
                        flash(
                            _(
                                "Closed. %(n)s bookings were cancelled and their requesters are told.",
                                n=len(cancelled),
                            ),
                            "success",
                        )
                    else:
                        flash(_("Closed. No bookings were affected."), "success")
                    return redirect(url_for("staff.closures"))
    if preview is not None:
        ids = [b.id for b in preview]
        preview = list(
            db.session.scalars(
                select(Booking)
                .where(Booking.id.in_(ids))
                .options(joinedload(Booking.requester), joinedload(Booking.space), joinedload(Booking.organisation))
                .order_by(Booking.start_at, Booking.id)
            )
        )
    upcoming = list(
        db.session.scalars(
            select(Closure)
            .where(Closure.location_id == location.id, Closure.end_at > utcnow())
            .options(joinedload(Closure.space))
            .order_by(Closure.start_at)
        )
    )
    return render_template("staff/closures.html", form=form, preview=preview, upcoming=upcoming, locale=_locale())


# -- space rules --------------------------------------------------------------------------


@bp.get("/spaces")
@staff_required
def spaces() -> str:
    found = list(db.session.scalars(select(Space).order_by(Space.sort_order)))
    return render_template("staff/spaces.html", spaces=found, locale=_locale())


# every rule but the two edited as text (opening hours per weekday, fixed slots)
RULE_FIELDS = tuple(column for column in RULE_COLUMNS if column not in ("fixed_slots", "opening_hours"))


@bp.route("/spaces/<slug>", methods=["GET", "POST"])
@staff_required
def space_rules(slug: str) -> str | Response:
    space = db.one_or_404(select(Space).where(Space.slug == slug))
    form = SpaceRulesForm(obj=space)
    if request.method == "GET":
        form.fixed_slots.data = format_ranges(space.fixed_slots)
        for day in range(7):
            getattr(form, f"hours_{day}").data = format_ranges((space.opening_hours or {}).get(str(day)))
    conflicts: list[Booking] = []
    conflict_message = ""
    if form.validate_on_submit():
        changes: dict[str, Any] = {name: getattr(form, name).data for name in RULE_FIELDS}
        changes["fixed_slots"] = parse_ranges(form.fixed_slots.data)
        changes["opening_hours"] = {
            str(day): spans for day in range(7) if (spans := parse_ranges(getattr(form, f"hours_{day}").data))
        }
        if changes["approval"] != "over_duration":
            changes["approval_over_minutes"] = None
        labels = {"unit_label_zh": form.unit_label_zh.data.strip(), "unit_label_en": form.unit_label_en.data.strip()}
        try:
            diff = staff_services.update_space_rules(db.session, _ctx(), space.id, changes, labels=labels)
        except staff_services.RulesRefused as exc:
            if exc.field == "capacity":
                conflicts = exc.bookings
                conflict_message = _(
                    "Future bookings hold more than %(n)s units at once. Move or cancel these first:",
                    n=form.capacity.data,
                )
                form.capacity.errors.append(conflict_message)
            elif exc.field == "opening_hours":
                conflicts = exc.bookings
                conflict_message = _(
                    "These future bookings would fall outside the new opening hours. Move or cancel them first:"
                )
            else:
                form.form_errors.append(_("These rules contradict each other: %(why)s", why=str(exc)))
        else:
            if diff:
                flash(
                    _("Saved %(n)s changes to the rules; the audit trail has before and after.", n=len(diff)), "success"
                )
            else:
                flash(_("Nothing changed."), "info")
            return redirect(url_for("staff.space_rules", slug=slug))
    return render_template(
        "staff/space.html",
        space=space,
        form=form,
        conflicts=conflicts,
        conflict_message=conflict_message,
        locale=_locale(),
    )


# -- the audit trail ----------------------------------------------------------------------


# Filters and reports read dates people could mean; year 1 or 9999 would overflow date arithmetic.
_EARLIEST_DAY, _LATEST_DAY = date(2000, 1, 1), date(2199, 12, 31)


def _parse_day(name: str) -> date | None:
    """A YYYY-MM-DD query argument, or None when it is absent, malformed or out of any sane range."""
    try:
        day = date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None
    return day if _EARLIEST_DAY <= day <= _LATEST_DAY else None


@bp.get("/audit")
@staff_required
def audit() -> str:
    tz = i18n.station_tz()
    user_q = (request.args.get("user") or "").strip()
    user_id: int | None = None
    if user_q:
        found = db.session.scalar(
            select(User.id).where(or_(func.lower(User.email) == user_q.lower(), User.display_name == user_q))
        )
        user_id = found if found is not None else -1  # an unknown user matches nothing, not everything
    first, last = _parse_day("from"), _parse_day("to")
    space_id = request.args.get("space", type=int) or None
    query = staff_services.AuditFilter(
        booking_id=request.args.get("booking", type=int),
        user_id=user_id,
        space_id=space_id,
        start=local_midnight(first, tz) if first else None,
        end=local_midnight(last + timedelta(days=1), tz) if last else None,
    )
    page = _page()
    events, total = staff_services.audit_page(db.session, query, page=page, per_page=AUDIT_PAGE)
    spaces = {s.id: s for s in db.session.scalars(select(Space))}
    subjects = staff_services.names_of(db.session, {e.subject_user_id for e in events if e.subject_user_id})
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "staff/audit.html",
        events=events,
        total=total,
        page=page,
        pages=max((total + AUDIT_PAGE - 1) // AUDIT_PAGE, 1),
        spaces=spaces,
        subjects=subjects,
        args=args,
        space_choices=_space_pairs(bookable_only=False),
        locale=_locale(),
        labels=labels,
        units={o.id: o.name(_locale()) for o in db.session.scalars(select(Organisation))},
    )


# -- usage reports ------------------------------------------------------------------------


@bp.get("/reports")
@staff_required
def report() -> str | Response:
    tz = i18n.station_tz()
    today = utcnow().astimezone(tz).date()
    first, last = reports.default_range(today)
    error = None
    chosen_first, chosen_last = _parse_day("from"), _parse_day("to")
    if chosen_first and chosen_last:
        if chosen_last < chosen_first:
            error = _("The last day comes before the first.")
        elif (chosen_last - chosen_first).days >= reports.MAX_RANGE_DAYS:
            error = _("Choose at most %(n)s days.", n=reports.MAX_RANGE_DAYS)
        else:
            first, last = chosen_first, chosen_last
    space_id = request.args.get("space", type=int) or None
    result = reports.usage(db.session, first=first, last=last, tz=tz, space_id=space_id)
    locale = _locale()

    def space_name(space: Space) -> str:
        return space.name(locale)

    def org_name(org: Organisation | None) -> str:
        return org.name(locale) if org else _("No member unit")

    if request.args.get("format") == "csv":
        labels = {
            "group": _("Group"),
            "name": _("Name"),
            "bookings": _("Bookings"),
            "hours": _("Booked hours"),
            "people": _("People served"),
            "occupancy": _("Occupancy %"),
            "cancellations": _("Cancellations"),
            "late": _("Late cancellations"),
            "total": _("Total"),
            "week": _("Week from"),
            "space": _("Space"),
            "org": _("Member unit"),
        }
        body = reports.to_csv(result, labels=labels, space_name=space_name, org_name=org_name)
        filename = f"station-usage-{first.isoformat()}-{last.isoformat()}.csv"
        return Response(
            body.encode("utf-8"),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    occupancy_chart = charts.column_chart(
        "chart-occupancy",
        _("Occupancy per week"),
        [
            charts.Bar(
                label=i18n.format_short_day(week),
                value=f.occupancy or 0.0,
                text=f"{(f.occupancy or 0) * 100:.0f}%",
            )
            for week, f in result.by_week
        ],
        maximum=1.0,
    )
    hours_chart = charts.bar_chart(
        "chart-org-hours",
        _("Booked hours per member unit"),
        [
            charts.Bar(label=org_name(org), value=f.hours, text=f"{f.hours:.1f} h")
            for org, f in result.by_org
            if f.hours
        ],
    )
    return render_template(
        "staff/reports.html",
        report=result,
        error=error,
        space_id=space_id,
        occupancy_chart=occupancy_chart,
        hours_chart=hours_chart,
        space_name=space_name,
        org_name=org_name,
        locale=locale,
    )


# -- accounts (admins) --------------------------------------------------------------------


@bp.get("/users")
@admin_required
def users() -> str:
    query = (request.args.get("q") or "").strip()
    stmt = select(User).options(joinedload(User.organisation)).order_by(User.email)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(or_(func.lower(User.email).like(like), User.display_name.like(like)))
    page = _page()
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    found = list(db.session.scalars(stmt.limit(AUDIT_PAGE).offset((page - 1) * AUDIT_PAGE)))
    forms = {}
    orgs = [(0, _("None"))] + [
        (o.id, o.name(_locale())) for o in db.session.scalars(select(Organisation).order_by(Organisation.id))
    ]
    for user in found:
        form = UserForm(
            prefix=f"u{user.id}",
            data={
                "role": user.role,
                "organisation": user.organisation_id or 0,
                "active": user.active,
            },
        )
        form.organisation.choices = choices(orgs)
        forms[user.id] = form
    return render_template(
        "staff/users.html",
        users=found,
        forms=forms,
        query=query,
        total=total,
        page=page,
        pages=max((total + AUDIT_PAGE - 1) // AUDIT_PAGE, 1),
        locale=_locale(),
    )


@bp.post("/users/<int:user_id>")
@admin_required
def update_user(user_id: int) -> Response:
    user = db.get_or_404(User, user_id)
    form = UserForm(prefix=f"u{user.id}")
    form.organisation.choices = choices([(0, ""), *((o, "") for o in db.session.scalars(select(Organisation.id)))])
    back = _back(url_for("staff.users"))
    if not form.validate_on_submit():
        flash(_("Not saved: check the role and member unit."), "error")
        return redirect(back)
    try:
        diff = staff_services.update_user(
            db.session,
            _ctx(),
            user.id,
            role=form.role.data,
            organisation_id=form.organisation.data or None,
            active=form.active.data,
        )
    except staff_services.LastAdmin:
        flash(_("You cannot demote or deactivate your own account."), "error")
    else:
        if diff:
            flash(_("Saved %(email)s.", email=user.email), "success")
        else:
            flash(_("Nothing changed."), "info")
    return redirect(back)
