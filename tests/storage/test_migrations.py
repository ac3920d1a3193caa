"""Migrations: the schema they build equals the models, and they upgrade a database holding data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text

from portal.storage.migrations import migrations
from portal.storage.models import Report, db
from tests.factories import receipt_of, submit

ROOT = Path(__file__).resolve().parents[2]


def test_migrated_schema_equals_the_models(app):
    # SQLite cannot reflect migration 0008's index on an expression (pyproject.toml ignores that warning), so
    # the comparison does not see it; the models do not declare it either.
    with app.app_context():
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_downgrade_and_upgrade_with_data(app, client):
    # Given a database at head holding reports
    receipt_of(submit(client))
    with app.app_context():
        directory = migrations(app).directory
        assert db.session.scalar(select(func.count()).select_from(Report)) == 1
        db.session.remove()
        # When it goes down to nothing and back up
        downgrade(directory=directory, revision="base")
        upgrade(directory=directory)
        # Then the schema is whole again and takes reports (init's reference data comes back with init)
    result = app.test_cli_runner().invoke(args=["portal", "init"])
    assert result.exit_code == 0, result.output
    receipt_of(submit(client))


def test_each_migration_upgrades_a_database_holding_data(app, client):
    """A database at the first migration, holding a real report, upgrades to head with its data intact."""
    from sqlalchemy import MetaData, Table

    receipt_of(submit(client, summary="kept across upgrades"))
    with app.app_context():
        directory = migrations(app).directory
        with db.engine.connect() as connection:
            before = connection.execute(select(Report.__table__.c.id, Report.__table__.c.summary_sealed)).one()
        db.session.remove()
        # Given the database taken back to the first migration (dropping later columns), still holding the report
        downgrade(directory=directory, revision="0001_intake")
        with db.engine.connect() as connection:
            old = Table("reports", MetaData(), autoload_with=connection)
            assert "iopc_flagged" not in old.c and "held" not in old.c
            assert connection.execute(select(func.count()).select_from(old)).scalar() == 1
        # When it is upgraded through every later migration
        upgrade(directory=directory)
        # Then the report is there, unchanged, with the new columns' defaults
        with db.engine.connect() as connection:
            row = connection.execute(
                select(
                    Report.__table__.c.id,
                    Report.__table__.c.summary_sealed,
                    Report.__table__.c.held,
                    Report.__table__.c.pattern_flags,
                    Report.__table__.c.reporter_wants_email,
                )
            ).one()
        assert (row.id, bytes(row.summary_sealed)) == (before.id, bytes(before.summary_sealed))
        assert row.held is False and row.pattern_flags == [] and row.reporter_wants_email is False
        # And the running totals of the figures (0009), added to a database that had a case, are not trusted
        # until worked out from the cases: the next `flask portal init` (or the first reader) does it
        from portal.oversight import rollups, stats

        assert not rollups.is_valid(db.session)
        db.session.remove()
    result = app.test_cli_runner().invoke(args=["portal", "init"])
    assert result.exit_code == 0, result.output
    assert "Running totals of the oversight figures worked out" in result.output
    with app.app_context():
        assert rollups.is_valid(db.session)
        assert stats.compute(db.session)["cases"] == 1 == stats.compute(db.session, use_rollups=False)["cases"]


def test_flask_db_runs_flask_migrates_commands_bound_on_first_use(app):
    """`flask db ...` is a stand-in until used (portal.storage.migrations): its commands and options still work."""
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["db", "--help"])
    assert listed.exit_code == 0, listed.output
    assert "upgrade" in listed.output and "downgrade" in listed.output and "--directory" in listed.output

    def revision() -> str:
        with app.app_context():
            found = db.session.scalar(text("SELECT version_num FROM alembic_version"))
            db.session.remove()
            return str(found)

    head = revision()
    down = runner.invoke(args=["db", "downgrade", "--", "-1"])
    assert down.exit_code == 0, down.output
    assert revision() not in (head, "None")
    up = runner.invoke(args=["db", "--directory", migrations(app).directory, "upgrade"])
    assert up.exit_code == 0, up.output
    assert revision() == head


def test_the_app_starts_without_importing_alembic_or_redis(tmp_path):
    """What every `flask portal ...` command and worker pays to start: Alembic (0.15-0.25 s) only when migrating,
    redis-py only when the rate-limit store is Redis."""
    code = (
        "import sys, wsgi\n"
        "loaded = sorted(m for m in ('alembic', 'flask_migrate', 'redis') if m in sys.modules)\n"
        "assert loaded == [], loaded\n"
    )
    env = {**os.environ, "PORTAL_INSTANCE": str(tmp_path / "instance"), "RATELIMIT_STORAGE_URI": "memory://"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
