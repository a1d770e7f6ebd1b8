"""Station Booking: create_app() reads as the list of what the application is made of."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    root = Path(__file__).resolve().parent.parent
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH", str(root / "instance")),
        template_folder=str(root / "templates"),
        static_folder=str(root / "static"),
    )
    from booking.config import load_config

    app.config.from_mapping(load_config(Path(app.instance_path)))
    if test_config:
        app.config.from_mapping(test_config)
    if app.config["PROXY_FIX"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # behind one reverse proxy: its X-Forwarded-For/-Proto give the client's address
        # (rate limits, audit IPs) and whether the request came over HTTPS
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    _register_extensions(app)
    _register_blueprints(app)

    from booking import notifications, web

    web.init_app(app)
    notifications.init_app(app)  # booking mail: queued with each change, sent after the commit

    from booking import cli

    cli.init_app(app)
    return app


def _register_extensions(app: Flask) -> None:
    from booking import db as db_module
    from booking.extensions import babel, csrf, db, limiter, login_manager, migrate
    from booking.i18n import select_locale, select_timezone

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"), render_as_batch=True)
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            db_module.configure_sqlite(engine)
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        timezone_selector=select_timezone,
        default_translation_directories=str(Path(app.root_path) / "translations"),
    )
    limiter.init_app(app)
    login_manager.init_app(app)

    import booking.models  # noqa: F401 - every table registered before migrations or queries run


def _register_blueprints(app: Flask) -> None:
    from booking.auth.views import bp as auth_bp
    from booking.bookings.views import bp as bookings_bp
    from booking.feeds.views import bp as feeds_bp
    from booking.spaces.views import bp as spaces_bp
    from booking.staff.views import bp as staff_bp

    app.register_blueprint(spaces_bp)
    app.register_blueprint(bookings_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(feeds_bp)
