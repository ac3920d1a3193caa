"""The concern portal: confidential reporting for a police force's professional-standards function."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config
from portal.core.richtext import sanitize
from portal.domain import settings
from portal.storage import instance_secrets
from portal.storage.models import db
from portal.web import dates, logs, resources, security
from portal.web.extensions import csrf, init_limiter, init_migrate_commands, rate_limit_health


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: enforce foreign keys; WAL so readers never wait for a writer."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def create_app(config: Mapping[str, Any] | Config | None = None) -> Flask:
    """The application factory. `config` overrides the environment (a mapping or a Config object)."""
    base = config if isinstance(config, Config) else Config()
    overrides = dict(config) if isinstance(config, Mapping) else {}
    instance = Path(overrides.get("PORTAL_INSTANCE", base.PORTAL_INSTANCE))
    app = Flask(
        __name__,
        instance_path=str(instance.resolve()),
        template_folder=str(resources.TEMPLATES),
        static_folder=str(resources.STATIC),
    )
    app.config.from_object(base)
    if "PORTAL_INSTANCE" in overrides and "SQLALCHEMY_DATABASE_URI" not in overrides:
        overrides["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(instance / "portal.db")
    app.config.update(overrides)
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)

    server_secrets = instance_secrets.load(instance)
    app.extensions["portal_secrets"] = server_secrets
    app.config["PORTAL_SECRETS"] = server_secrets  # for domain modules handed the config (portal.domain.notify)
    app.config["SECRET_KEY"] = server_secrets.secret_key if server_secrets else None

    proxies = int(app.config.get("PORTAL_PROXY_COUNT", 0) or 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]

    _size_the_pool(app)
    db.init_app(app)
    from portal.web import outage  # here: it imports the report blueprint, which imports this module

    outage.install(app)  # after db.init_app: its teardown runs before Flask-SQLAlchemy's
    app.config["PORTAL_MIGRATIONS"] = str(resources.MIGRATIONS)
    init_migrate_commands(app)  # Flask-Migrate itself on first use: portal.storage.migrations
    csrf.init_app(app)
    init_limiter(app)
    security.install(app)
    logs.install(app)

    from portal.web import errors
    from portal.web.admin import bp as admin_bp
    from portal.web.insights import bp as insights_bp
    from portal.web.report import bp as report_bp
    from portal.web.staff import bp as staff_bp
    from portal.web.staff.auth import login_manager
    from portal.web.triage import bp as triage_bp

    login_manager.init_app(app)
    errors.install(app)
    dates.install(app)
    app.jinja_env.filters["safe_staff_html"] = sanitize
    app.register_blueprint(report_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(triage_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(insights_bp)

    from portal.cli import portal_cli

    app.cli.add_command(portal_cli)

    app.add_url_rule("/healthz", "healthz", healthz)

    @app.before_request
    def _require_initialised() -> Any:
        if request.endpoint in ("healthz", "static"):
            return None
        try:
            settings.server_secrets(app.extensions)
        except settings.NotInitialised:
            return render_template("errors/not_initialised.html"), 503
        return None

    return app


def _size_the_pool(app: Flask) -> None:
    """One pooled connection per serving thread (gunicorn's settings export PORTAL_DB_POOL_SIZE = threads), and
    a PostgreSQL that does not answer is given up on in 5 s rather than the system's TCP timeout: the request
    then gets its 503 page (portal.web.outage) instead of holding a thread."""
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    uri = str(app.config.get("SQLALCHEMY_DATABASE_URI") or "")
    pool_size = os.environ.get("PORTAL_DB_POOL_SIZE")
    if pool_size and "pool_size" not in options and ":memory:" not in uri and uri != "sqlite://":
        options.update(pool_size=int(pool_size), max_overflow=2)
    if uri.startswith("postgresql"):
        options["connect_args"] = {"connect_timeout": 5, **options.get("connect_args", {})}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def healthz() -> Any:
    """Each dependency: 200 while intake works (the rate limits may count in memory), 503 without the
    database."""
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as error:  # noqa: BLE001 - whatever it is, the database did not answer
        current_app.logger.warning("health check: database did not answer (%s)", logs.one_line(error))
        database = "unavailable"
    rate_limits = rate_limit_health(current_app)
    status = "unavailable" if database != "ok" else "degraded" if rate_limits == "degraded" else "ok"
    body = {"status": status, "database": database, "rate_limits": rate_limits}
    return jsonify(body), 200 if database == "ok" else 503


def server_secrets() -> instance_secrets.ServerSecrets:
    """The server's secrets, for a request (the hook above has turned every request away until they exist)."""
    return settings.server_secrets(current_app.extensions)
