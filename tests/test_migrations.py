"""Migrations: the schema they build equals the models, and they upgrade a database holding data."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select

from portal.models import Report, db
from tests.helpers import receipt_of, submit


def test_migrated_schema_equals_the_models(app):
    with app.app_context():
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_downgrade_and_upgrade_with_data(app, client):
    # Given a database at head holding reports
    receipt_of(submit(client))
    with app.app_context():
        directory = app.extensions["migrate"].directory
        assert db.session.scalar(select(func.count()).select_from(Report)) == 1
        db.session.remove()
        # When it goes down to nothing and back up
        downgrade(directory=directory, revision="base")
        upgrade(directory=directory)
        # Then the schema is whole again and takes reports (init's reference data comes back with init)
    result = app.test_cli_runner().invoke(args=["portal", "init"])
    assert result.exit_code == 0, result.output
    receipt_of(submit(client))
