"""The schema's history (Alembic, by Flask-Migrate), bound to the app on first use.

Alembic is the most expensive import the portal has (0.15-0.25 s: a tenth of `flask portal stats --json` at a
million cases), and only `flask portal init`, `flask db ...` and the migration tests need it. So create_app names
the folder (`PORTAL_MIGRATIONS`) and registers a stand-in for the `db` commands (portal.web.extensions), and
Flask-Migrate is imported and bound here when one of them first asks.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from portal.storage.models import db


def migrations(app: Flask) -> Any:
    """Flask-Migrate's configuration of the app: `.directory`, `.db`, and what migrations/env.py reads."""
    config = app.extensions.get("migrate")
    if config is None:
        from flask_migrate import Migrate

        Migrate(app, db, directory=app.config["PORTAL_MIGRATIONS"], render_as_batch=True)
        config = app.extensions["migrate"]
    return config


def upgrade_to_head(app: Flask) -> None:
    """Migrate the app's database to the newest revision (in its app context)."""
    from flask_migrate import upgrade

    upgrade(directory=migrations(app).directory)
