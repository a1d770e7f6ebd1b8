"""Browse the station's spaces, see a week (or month) of a space, and book from the grid."""

from __future__ import annotations

import functools
import itertools
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import bindparam, select
from werkzeug.wrappers import Response

from booking.bookings import series as series_service
from booking.bookings import services
from booking.bookings.forms import (
    BookingForm,
    RepeatForm,
    approval_notice,
    count_units,
    describe_recurrence,
    form_class,
    format_duration,
    link_params,
    prefill,
    refusal_message,
    repeat_defaults,
)
from booking.bookings.models import Booking
from booking.db import utcnow
from booking.domain.intervals import Interval, local_midnight
from booking.domain.recurrence import MAX_OCCURRENCES, Cut, CutReason, Recurrence, RecurrenceError, Skipped, SkipReason
from booking.domain.refusals import Conflict
from booking.domain.rules import SpaceRules
from booking.extensions import db
from booking.feeds.cache import LocalCache, cache_key
from booking.i18n import format_short_day
from booking.spaces.forms import parse_week_date
from booking.spaces.models import Location, Space
from booking.spaces.services import WeekView, home_summaries, present, space_week

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


# The time fields a link sets itself (start/end); everything else the member typed goes along.
_TIME_FIELDS = {"day", "start_time", "end_time", "slot", "slot_count", "first_day", "last_day", "csrf_token"}


def _kept_values(form: Any) -> dict[str, list[str]]:
    """What the member typed into the refused form, as query values for the nearest-free link."""
    kept: dict[str, list[str]] = {}
    for field in form:
        if field.name in _TIME_FIELDS or field.name not in request.form:
            continue
        kept[field.name] = request.form.getlist(field.name)
    return kept


def _typed_values(form: Any, args: Any) -> dict[str, Any]:
    """Values a nearest-free link carried back (title, units, repeat choice...), for the form's fields."""
    values: dict[str, Any] = {}
    for field in form:
        if field.name in _TIME_FIELDS or field.name not in args:
            continue
        raw = args.getlist(field.name)
        coerce = getattr(field, "coerce", str)  # select fields compare coerced values when they render
        try:
            typed = [coerce(value) for value in raw]
        except (ValueError, TypeError):
            continue  # an edited link: the field keeps its default
        values[field.name] = typed if field.type == "SelectMultipleField" else typed[0]
    return values


def _own_in_the_way(refusal: object) -> list[tuple[str, Interval]]:
    """The signed-in member's own bookings among those a capacity refusal names (title, time)."""
    if not isinstance(refusal, Conflict) or not refusal.blocking:
        return []
    mine = db.session.scalars(
        select(Booking)
        .where(Booking.id.in_(refusal.blocking), Booking.requester_id == current_user.id)
        .order_by(Booking.start_at)
    )
    return [(b.title, Interval(b.start_at, b.end_at)) for b in mine]


def opening_rows(space: Space, today: date) -> list[tuple[str, str | None]]:
    """The space's opening hours, Monday to Sunday: ('周一', '07:00–21:00'), or None when closed."""
    monday = today - timedelta(days=today.weekday())
    rows = []
    for weekday in range(7):
        spans = (space.opening_hours or {}).get(str(weekday)) or []
        text = ", ".join(f"{start}–{end}" for start, end in spans) or None
        rows.append((weekday_name(monday + timedelta(days=weekday)), text))
    return rows


def heading_for(view: WeekView) -> str:
    locale = str(get_locale())
    if view.month:
        return babel_dates.format_skeleton("yMMMM", view.anchor, locale=locale)
    return babel_dates.format_interval(view.dates[0], view.dates[-1], "yMMMd", locale=locale)


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


@functools.cache
def _week_head_stmt() -> Any:
    """Built once: what the week page needs before it knows whether a cached page will do."""
    space, location = Space.__table__.c, Location.__table__.c
    return (
        select(space.id, space.version, location.timezone)
        .join_from(Space.__table__, Location.__table__, space.location_id == location.id)
        .where(space.slug == bindparam("slug"))
    )


@bp.get("/spaces/<slug>")
def week(slug: str) -> str | Response:
    with db.engine.connect() as conn:  # not the ORM session: a cached page needs nothing else
        head = conn.execute(_week_head_stmt(), {"slug": slug}).one_or_none()
    if head is None:
        abort(404)
    now = utcnow()
    today = now.astimezone(ZoneInfo(head.timezone)).date()
    anchor = parse_week_date(request.args.get("date"), today)
    page_key = None
    if anchor is not None and not current_user.is_authenticated and "_flashes" not in session:
        # what a visitor who is not logged in sees depends on nothing but the space's data,
        # the date, the language and the address: the same page for every one of them
        changed = str(head.version)
        page_key = cache_key("week-page", head.id, changed, today, str(get_locale()), request.full_path)
        cached = _fresh_page(page_key, now)
        if cached is not None:  # bytes in, bytes out: 100 KB are not decoded, searched or encoded again
            return Response(cached.with_token(generate_csrf()), mimetype="text/html")
    space = db.session.get_one(Space, head.id)
    if anchor is None:
        flash(_("That date could not be read, so here is this week. Dates look like 2026-12-01."), "warning")
        anchor = today
    viewer = current_user.id if current_user.is_authenticated else None
    view = space_week(db.session, space, anchor, now=now, viewer_id=viewer)
    heading = heading_for(view)
    html = render_template(
        "spaces/week.html",
        space=space,
        view=view,
        heading=heading,
        grid=_week_grid(view, heading) if space.bookable else "",
        approval=approval_notice(space) if space.bookable else None,
        hours=None if space.bookable else opening_rows(space, today),
    )
    if page_key is not None:
        until = view.grid_valid_until() if space.bookable else local_midnight(today + timedelta(days=1), view.rules.tz)
        # the form token is the visitor's own: the cached copy remembers where it goes
        _remember_page(page_key, now, until, html, generate_csrf())
    return html


# Rendered markup, per worker and app (a test's app, with its own database, starts empty):
# week grids (for everyone, the viewer's own bookings marked) and whole pages (for visitors who
# are not logged in). An entry is only found again under the same database state (its key
# holds the space's watermark, see WeekView.grid_key) and only served before the first instant
# a cell could change with the clock, so it is never stale, whatever other workers or hosts
# have written; the bounds keep memory small.
def _cache(name: str) -> LocalCache:
    caches = current_app.extensions.setdefault("week_caches", {})
    if name not in caches:
        size = {"grid": (512, 64), "page": (256, 48)}[name]
        caches[name] = LocalCache(max_entries=size[0], max_bytes=size[1] * 1024 * 1024)
    return caches[name]


def _fresh(cache: LocalCache, key: str, now: datetime) -> tuple[bytes, list[str]] | None:
    """The entry's markup (UTF-8) and the rest of its etag slot, if it still reads the same at `now`."""
    found = cache.get(key)
    if found is None:
        return None
    made, until, *rest = found[0].split("/")
    if not datetime.fromisoformat(made) <= now < datetime.fromisoformat(until):
        return None
    return found[1], rest


class CachedPage(NamedTuple):
    """A visitor's page without its form tokens, and the byte offsets where they go."""

    body: bytes
    holes: tuple[int, ...]

    def with_token(self, token: str) -> bytes:
        # joining slices copies the page once; searching 100 KB for a marker cost ten times more
        view = memoryview(self.body)
        bounds = (0, *self.holes, len(self.body))
        return token.encode().join(view[a:b] for a, b in itertools.pairwise(bounds))


def _remember_page(key: str, now: datetime, until: datetime, html: str, token: str) -> None:
    parts = [part.encode() for part in html.split(token)]
    holes = tuple(itertools.accumulate(len(part) for part in parts[:-1]))
    # the entry's "etag" slot: when it was made, until when it reads the same, where the tokens go
    _cache("page").set(key, f"{now.isoformat()}/{until.isoformat()}/{','.join(map(str, holes))}", b"".join(parts))


def _fresh_page(key: str, now: datetime) -> CachedPage | None:
    found = _fresh(_cache("page"), key, now)
    if found is None:
        return None
    body, (holes,) = found
    return CachedPage(body, tuple(int(n) for n in holes.split(",") if n))


def _week_grid(view: WeekView, heading: str) -> Markup:
    key = view.grid_key(str(get_locale()))
    cached = _fresh(_cache("grid"), key, view.now)
    if cached is not None:
        return Markup(cached[0].decode())  # noqa: S704 - the template's own autoescaped output
    shown_days, shown_rows = present(view)
    html = render_template(
        "spaces/_cells.html", view=view, heading=heading, shown_days=shown_days, shown_rows=shown_rows
    )
    # the entry holds when it was made and until when it reads the same (the "etag" slot)
    _cache("grid").set(key, f"{view.now.isoformat()}/{view.grid_valid_until().isoformat()}", html.encode())
    return Markup(html)  # noqa: S704 - the template's own autoescaped output


@bp.route("/spaces/<slug>/book", methods=["GET", "POST"])
@login_required
def book(slug: str) -> Response | tuple[str, int]:
    space = get_space_or_404(slug)
    if not space.bookable:
        flash(_("This space is walk-in only: no booking is needed."), "info")
        return redirect(url_for("spaces.week", slug=space.slug))
    form_type = form_class(space)
    if request.method == "GET":
        data = prefill(space, request.args.get("start"), request.args.get("end"))
        if issubclass(form_type, RepeatForm):
            data.update(repeat_defaults(data.get("day")))
        data.update(_typed_values(form_type(space, formdata=None), request.args))
        form = form_type(space, data=data)
    else:
        form = form_type(space)
    status, nearest = 200, None
    if request.method == "POST" and request.form.get("back"):
        pass  # "Go back" from the series preview: the form again, as it was filled in
    elif form.validate_on_submit():
        try:
            interval = form.interval()
        except (ValueError, OverflowError):
            form.form_errors.append(_("The end must come after the start."))
            status = 422
        else:
            rule = form.recurrence() if isinstance(form, RepeatForm) else None
            if rule is not None:
                answer = _book_series(space, form, interval.start, interval.end, rule)
                if not isinstance(answer, int):
                    return answer
                status = answer  # refused: the form again, with the reason on top
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
                    form.form_errors.append(
                        refusal_message(refused.refusal, space, own=_own_in_the_way(refused.refusal))
                    )
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
        nearest_params={**_kept_values(form), **link_params(space, nearest)} if nearest else None,
        unit=space.unit_label(locale),
        back_date=_chosen_day(form),
    ), status


# -- repeating bookings: preview, then book the free ones ----------------------------------

# what the preview page must not copy back into its own hidden fields
_PREVIEW_CONTROLS = {"csrf_token", "confirm", "fingerprint", "back"}


def _book_series(
    space: Space, form: RepeatForm, first_start: datetime, first_end: datetime, rule: Recurrence
) -> Response | tuple[str, int] | int:
    """Preview the series, or book what the person saw; an int is the status for the form with its error."""
    user = current_user._get_current_object()
    ctx = services.context(user, ip=request.remote_addr)
    fields: dict[str, Any] = {
        "space_id": space.id,
        "requester": user,
        "first_start": first_start,
        "first_end": first_end,
        "rule": rule,
        "units": form.units_value,
        "attendees": form.attendees_value,
    }
    try:
        if not request.form.get("confirm"):
            return _preview_page(space, form, series_service.preview(db.session, ctx, **fields)), 200
        created = series_service.request_series(
            db.session,
            ctx,
            title=form.title.data.strip(),
            title_public=bool("title_public" in form and form.title_public.data),
            expected_fingerprint=request.form.get("fingerprint", ""),
            **fields,
        )
    except series_service.PreviewStale as stale:
        return _preview_page(space, form, stale.preview, stale=True), 409
    except services.BookingRefused as refused:
        form.form_errors.append(refusal_message(refused.refusal, space))
        return 409
    except RecurrenceError:
        form.form_errors.append(_("These repeat settings give no dates. Check the days and the end."))
        return 422
    statuses = db.session.scalars(select(Booking.status).where(Booking.series_id == created.id)).all()
    if "pending" in statuses:
        flash(
            ngettext(
                "%(num)d booking requested. It is waiting for approval by the station's staff.",
                "%(num)d bookings requested. They are waiting for approval by the station's staff.",
                len(statuses),
            ),
            "info",
        )
    else:
        flash(
            ngettext(
                "%(num)d booking requested and confirmed. See you there!",
                "%(num)d bookings requested and confirmed. See you there!",
                len(statuses),
            ),
            "success",
        )
    return redirect(url_for("bookings.mine"))


def _preview_page(space: Space, form: RepeatForm, seen: series_service.SeriesPreview, *, stale: bool = False) -> str:
    rules = space.rules()
    occurrences = [
        {
            "number": o.number,
            "interval": o.interval,
            "free": o.free,
            "message": None if o.refusal is None else refusal_message(o.refusal, space),
            "nearest": o.refusal.nearest_free if isinstance(o.refusal, Conflict) else None,
        }
        for o in seen.occurrences
    ]
    hidden = [
        (name, value) for name, values in request.form.lists() if name not in _PREVIEW_CONTROLS for value in values
    ]
    return render_template(
        "spaces/series_preview.html",
        space=space,
        form=form,
        preview=seen,
        stale=stale,
        title=form.title.data.strip(),
        rule_text=describe_recurrence(seen.rule, seen.first_start, seen.first_end, str(get_locale())),
        occurrences=occurrences,
        skipped=[_skipped_text(s, rules) for s in seen.skipped],
        cut=_cut_text(seen.cut, space) if seen.cut else None,
        hidden=hidden,
        free_count=len(seen.free),
    )


def _skipped_text(skipped: Skipped, rules: SpaceRules) -> str:
    """'12月5日周六：该空间当天不开放' / 'Sat, Dec 5: the space is closed that day'."""
    if skipped.reason is SkipReason.NO_SUCH_DAY:
        month = babel_dates.format_skeleton("yMMMM", skipped.day, locale=str(get_locale()))
        return _("%(month)s has no such day, so there is no date that month.", month=month)
    day = format_short_day(skipped.day)
    if not rules.is_open_day(skipped.day):
        return _("%(day)s: the space is closed that day.", day=day)
    return _("%(day)s: the space is not open for all of that time.", day=day)


def _cut_text(cut: Cut, space: Space) -> str:
    day = format_short_day(cut.first_day)
    if cut.reason is CutReason.LIMIT:
        return ngettext(
            "A series has at most %(max)d dates: %(num)d more date from %(day)s is not included.",
            "A series has at most %(max)d dates: %(num)d more dates from %(day)s are not included.",
            cut.dropped,
            max=MAX_OCCURRENCES,
            day=day,
        )
    return ngettext(
        "This space can be booked up to %(days)s ahead: %(num)d more date from %(day)s is not included yet.",
        "This space can be booked up to %(days)s ahead: %(num)d more dates from %(day)s are not included yet.",
        cut.dropped,
        days=format_duration(space.rules().max_advance),
        day=day,
    )


def _chosen_day(form: BookingForm) -> str | None:
    field = getattr(form, "day", None) or getattr(form, "first_day", None)
    return field.data.isoformat() if field is not None and isinstance(field.data, date) else None
