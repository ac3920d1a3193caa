"""The database takes only the portal's codes (migration 0013_code_constraints): whatever writes a row, raw SQL
included, a state, mode, role, severity, finding, sanction or source outside its list in portal.core.codes fails."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from portal.core import codes
from portal.oversight import rollups, stats
from portal.storage.migrations import migrations
from portal.storage.models import Report, db
from tests.factories import make_officer, receipt_of, submit

CODE_COLUMNS = {"state", "mode", "role", "severity", "finding", "sanction", "source"}
BAD = "not-a-code"


def load_migration() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0013_code_constraints.py"
    spec = importlib.util.spec_from_file_location("migration_0013", path)
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


MIGRATION = load_migration()
CONSTRAINED = [
    (table, column, values) for table, columns in MIGRATION.CONSTRAINED.items() for column, values in columns
]


def test_the_migration_holds_the_lists_of_codes_as_they_are():
    """A change to a list in portal.core.codes needs a migration that changes its constraints: until then this fails."""
    assert MIGRATION.STATES == codes.STATES
    assert MIGRATION.MODES == tuple(codes.MODES)
    assert MIGRATION.SOURCES == tuple(codes.SOURCES)
    assert MIGRATION.SEVERITIES == tuple(codes.SEVERITIES)
    assert MIGRATION.FINDINGS == tuple(codes.FINDINGS)
    assert MIGRATION.SANCTIONS == tuple(codes.SANCTIONS)
    assert MIGRATION.ROLES == tuple(codes.ROLES)


def test_every_column_that_holds_a_code_is_constrained():
    holding = {
        (table.name, column.name)
        for table in db.metadata.tables.values()
        for column in table.columns
        if column.name in CODE_COLUMNS
    }
    assert holding == {(table, column) for table, column, _values in CONSTRAINED}


def test_the_database_holds_each_constraint_under_its_name(app):
    """Read back from the schema (PostgreSQL's catalogue, SQLite's table definitions): what a later migration sees."""
    from sqlalchemy import inspect

    with app.app_context():
        inspector = inspect(db.engine)
        found = {
            (table, check["name"])
            for table in MIGRATION.CONSTRAINED
            for check in inspector.get_check_constraints(table)
        }
    assert {(table, f"ck_{table}_{column}") for table, column, _values in CONSTRAINED} <= found


def _write(app: Flask, statement: str, **values: object) -> str | None:
    """Run one statement in its own transaction, rolled back; the constraint's complaint if the database refused."""
    with app.app_context(), db.engine.connect() as connection:
        try:
            connection.execute(text(statement), values)
        except IntegrityError as error:
            return str(error.orig)
        finally:
            connection.rollback()
    return None


def _names(complaint: str | None, constraint: str) -> bool:
    """The database's complaint names this constraint (the whole name, not a longer one that contains it)."""
    return complaint is not None and re.search(rf"(?<![\w]){constraint}(?![\w])", complaint) is not None


def _with_a_row_in_every_table(app: Flask, client) -> None:
    receipt_of(submit(client))
    make_officer(app, "ana@example.police.uk", "supervisor")
    with app.app_context():
        if not db.session.scalar(text("SELECT count(*) FROM figures_case_counts")):
            db.session.execute(
                text(
                    "INSERT INTO figures_case_counts (category, state, source, dated, gross, dismissal, reg13, n) "
                    "VALUES ('bullying', 'received', 'portal', false, false, false, false, 1)"
                )
            )
            db.session.commit()


def test_a_bad_code_cannot_be_stored_by_an_update(app, client):
    # Given a row in every table that holds a code
    _with_a_row_in_every_table(app, client)
    refused, taken = [], []
    for table, column, values in CONSTRAINED:
        # When raw SQL sets the column to each of its codes, and to something else
        for value in values:
            if _write(app, f"UPDATE {table} SET {column} = :value", value=value) is not None:
                taken.append((table, column, value))
        complaint = _write(app, f"UPDATE {table} SET {column} = :value", value=BAD)
        # Then every code is taken and the stranger refused, by the constraint that names the column
        if complaint is None or not _names(complaint, f"ck_{table}_{column}"):
            refused.append((table, column, complaint))
    assert taken == [] and refused == []


def test_a_bad_code_cannot_be_stored_by_an_insert(app, client):
    receipt_of(submit(client))
    with app.app_context():
        report_id = db.session.scalar(select(Report.id))
    event = "INSERT INTO case_events (report_id, at, kind, state) VALUES (:report, CURRENT_TIMESTAMP, 'x', :state)"
    count = (
        "INSERT INTO figures_case_counts (category, state, source, finding, dated, gross, dismissal, reg13, n) "
        "VALUES ('bullying', :state, :source, :finding, false, false, false, false, 1)"
    )
    assert _write(app, event, report=report_id, state="closed") is None
    assert _names(_write(app, event, report=report_id, state=BAD), "ck_case_events_state")
    good = {"state": "closed", "source": "import", "finding": "case-to-answer"}
    assert _write(app, count, **good) is None
    for column in good:
        assert _names(_write(app, count, **{**good, column: BAD}), f"ck_figures_case_counts_{column}")


def test_upgrading_a_database_that_holds_a_bad_code_stops_before_any_change(app, client, capsys):
    receipt_of(submit(client))
    with app.app_context():
        directory = migrations(app).directory
        db.session.remove()
        # Given the database before the constraints, where a case was given a source the portal does not know
        downgrade(directory=directory, revision=MIGRATION.down_revision)
        assert _write(app, "UPDATE case_events SET state = :value", value=BAD) is None
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE reports SET source = 'legacy'"))
        # When it is upgraded, then the upgrade stops (Flask-Migrate exits) and says which column holds what
        with pytest.raises(SystemExit):
            upgrade(directory=directory)
        said = capsys.readouterr().err
        assert "reports.source holds codes that are not in its list" in said and "['legacy']" in said
        db.session.remove()
        with db.engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        assert version == MIGRATION.down_revision
        # And once the case is put right it upgrades (the running totals, which still count the stranger, are
        # emptied and worked out again from the cases), and the constraints hold
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE reports SET source = 'import'"))
        upgrade(directory=directory)
        db.session.remove()
        assert not rollups.is_valid(db.session)
        assert stats.compute(db.session)["cases_by_source"] == {"import": 1}
        db.session.commit()
        assert rollups.is_valid(db.session)
    assert _names(_write(app, "UPDATE reports SET source = 'legacy'"), "ck_reports_source")
