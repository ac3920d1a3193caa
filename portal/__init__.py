"""The concern portal: confidential reporting for a police force's professional-standards function."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config

from . import dates, logs, secrets, security
from .extensions import csrf, limiter, migrate
from .models import db
from .richtext import sanitize

ROOT = Path(__file__).resolve().parent.parent


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
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_object(base)
    if "PORTAL_INSTANCE" in overrides and "SQLALCHEMY_DATABASE_URI" not in overrides:
        overrides["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(instance / "portal.db")
    app.config.update(overrides)
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)

    server_secrets = secrets.load(instance)
    app.extensions["portal_secrets"] = server_secrets
    app.config["PORTAL_SECRETS"] = server_secrets  # for domain modules handed the config (portal.notify)
    app.config["SECRET_KEY"] = server_secrets.secret_key if server_secrets else None

    proxies = int(app.config.get("PORTAL_PROXY_COUNT", 0) or 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    security.install(app)
    logs.install(app)

    from . import errors
    from .admin import bp as admin_bp
    from .insights import bp as insights_bp
    from .report import bp as report_bp
    from .staff import bp as staff_bp
    from .staff.auth import login_manager
    from .triage import bp as triage_bp

    login_manager.init_app(app)
    errors.install(app)
    dates.install(app)
    app.jinja_env.filters["safe_staff_html"] = sanitize
    app.register_blueprint(report_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(triage_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(insights_bp)

    from .cli import portal_cli

    app.cli.add_command(portal_cli)

    @app.get("/healthz")
    def healthz() -> Any:
        try:
            db.session.execute(text("SELECT 1"))
        except Exception:
            current_app.logger.exception("health check: database did not answer")
            return jsonify({"status": "unavailable"}), 503
        return jsonify({"status": "ok"})

    @app.before_request
    def _require_initialised() -> Any:
        if app.extensions["portal_secrets"] is None and request.endpoint not in ("healthz", "static"):
            return render_template("errors/not_initialised.html"), 503
        return None

    return app


def server_secrets() -> secrets.ServerSecrets:
    value = current_app.extensions["portal_secrets"]
    assert value is not None, "portal not initialised"
    return value
