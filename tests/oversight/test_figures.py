"""The oversight figures follow every change at once: the running totals (migration 0009) are the only layer
kept ahead of time, so every figure shown is what a fresh computation from the cases gives.

The database's own triggers keep the totals, so every way of changing a case or the workforce directory is tried
here: the portal's own paths, the importers, bulk Core statements and raw SQL.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, text, update

from portal.domain import casework
from portal.domain.importers import import_workforce
from portal.oversight import rollups, stats
from portal.oversight.queries import InsightFilters
from portal.oversight.tables import gather
from portal.storage.models import FIGURES_COLUMNS, FiguresCaseCount, FiguresDayCount, Report, db, utcnow
from portal.web.app import server_secrets
from tests.factories import add_case, add_member, new_report, person, supervisor, table_rows


def kept_and_live() -> tuple[dict, dict]:
    """The figures from the running totals (kept, not rebuilt) and the same figures read from the cases."""
    assert rollups.is_valid(db.session)
    kept = stats.compute(db.session)
    assert rollups.is_valid(db.session), "the totals must have been kept, not rebuilt"
    return kept, stats.compute(db.session, use_rollups=False)


def ledger_rows() -> int:
    return sum(db.session.scalar(select(func.count()).select_from(m)) for m in (FiguresCaseCount, FiguresDayCount))


def _insert(app):
    new_report()


def _portal_state_change(app):
    report = db.session.scalar(select(Report))
    casework.change_state(db.session, report, "acknowledged")
    db.session.commit()


def _orm_outcome(app):
    report = db.session.scalar(select(Report))
    report.severity, report.finding, report.sanction = "misconduct", "case-to-answer", "written-warning"
    db.session.commit()


def _orm_delete(app):
    db.session.delete(db.session.scalar(select(Report)))
    db.session.commit()


def _bulk_update(app):
    db.session.execute(update(Report).values(subject_command="NA"))
    db.session.commit()


def _raw_sql_update(app):
    db.session.execute(text("UPDATE reports SET category = 'corruption'"))
    db.session.commit()


def _raw_sql_delete(app):
    db.session.execute(delete(Report))
    db.session.commit()


def _directory_import(app):
    rows = (
        "staff_number,name,command,rank,ethnicity,probationer,joined_on\n"
        "AB999,Pat Example,CE,constable,Black,false,2020-01-01\n"
    )
    import_workforce(db.session, io.StringIO(rows), server_secrets().blind_index_key)
    db.session.commit()


def _directory_raw_update(app):
    db.session.execute(text("UPDATE workforce SET ethnicity = 'Asian'"))
    db.session.commit()


CHANGES = [
    _insert,
    _portal_state_change,
    _orm_outcome,
    _orm_delete,
    _bulk_update,
    _raw_sql_update,
    _raw_sql_delete,
    _directory_import,
    _directory_raw_update,
]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.strip("_") for c in CHANGES])
def test_any_change_to_a_case_or_the_directory_is_in_the_next_figures(app, change):
    with app.app_context():
        new_report()
        add_member(person("someone"), "White")
        db.session.commit()
        before, _live = kept_and_live()
        # When a case or the directory changes, by whatever path
        change(app)
        # Then the next figures are a fresh computation's, from totals the database kept
        kept, live = kept_and_live()
        assert kept == live
        if change not in (_directory_import, _directory_raw_update, _orm_outcome):  # these move no all-time figure
            assert kept != before


def test_changes_the_figures_do_not_read_leave_the_totals_alone(app):
    with app.app_context():
        new_report()
        rows = ledger_rows()
        # When only a clock and the assignment change (the workload tables read them live)
        db.session.execute(
            update(Report).values(next_update_due_at=utcnow() + timedelta(days=3), assigned_officer_id=None)
        )
        db.session.commit()
        # Then no trigger counted anything
        assert ledger_rows() == rows
        kept, live = kept_and_live()
        assert kept == live


def test_the_dashboard_shows_a_new_case_at_once(app, client):
    # Given a supervisor who has seen the dashboard
    with app.app_context():
        add_case(received=utcnow() - timedelta(days=40), category="bullying")
        db.session.commit()
    supervisor(app, client)
    page = client.get("/insights/").get_data(as_text=True)
    assert "<strong>1</strong> case." in page
    assert "Cases still open|1" in table_rows(page, "timeliness")
    # When a reporter submits a concern through the portal
    with app.app_context():
        new_report(category="discrimination")
    # Then the next view counts it
    page = client.get("/insights/").get_data(as_text=True)
    assert "<strong>2</strong> cases." in page
    assert "Cases still open|2" in table_rows(page, "timeliness")


def test_the_workload_follows_the_clock_with_nothing_changed(app):
    # Given the figures early in the day
    with app.app_context():
        morning = datetime.combine(utcnow().date(), datetime.min.time()) + timedelta(hours=1)
        add_case(received=morning - timedelta(days=10), update_due=morning + timedelta(hours=2))
        db.session.commit()
        first = gather(db.session, InsightFilters(), morning)
        db.session.commit()
        assert next(q for q in first.queues if q.code == "DPS").overdue == 0
        # When the case's update date passes later that day, with nothing changed in the data
        later = gather(db.session, InsightFilters(), morning + timedelta(hours=5))
        # Then the case figures are the same and the queue shows the case overdue
        assert later.stats == first.stats
        dps = next(q for q in later.queues if q.code == "DPS")
        assert dps.open == 1 and dps.overdue == 1


def test_each_filter_has_its_own_figures(app):
    with app.app_context():
        add_case(received=utcnow() - timedelta(days=3), command="CE")
        add_case(received=utcnow() - timedelta(days=3), command="NA")
        add_case(received=utcnow() - timedelta(days=400), command="NA")
        db.session.commit()
        now = utcnow()
        seen = {}
        for filters in (
            InsightFilters(),
            InsightFilters(command="CE"),
            InsightFilters(command="NA"),
            InsightFilters(date_from=(now - timedelta(days=30)).date()),
        ):
            for _ in range(2):  # the same twice over
                figures_now = gather(db.session, filters, now)
                db.session.commit()
                assert figures_now.stats["cases"] == seen.setdefault(filters, figures_now.stats["cases"])
        assert [seen[f] for f in seen] == [3, 1, 2, 2]


@pytest.mark.parametrize("column", FIGURES_COLUMNS)
def test_a_change_to_any_column_the_figures_read_is_counted(app, column):
    """The triggers' column list is the one the figures read (portal.storage.models.FIGURES_COLUMNS)."""
    values = {
        "category": "'corruption'",
        "state": "'closed'",
        "subject_command": "'NA'",
        "source": "'import'",
        "finding": "'no-case-to-answer'",
        "severity": "'nfa'",
        "sanction": "'none'",
        "reg13": "NOT reg13",
        "finalised_at": "received_at",
        "received_at": "finalised_at",
        "held": "NOT held",
        "subject_staff_index": "subject_name_index",
        "subject_name_index": "subject_staff_index",
    }
    with app.app_context():
        add_case(received=utcnow() - timedelta(days=3), finalised=utcnow(), subject=person("a"))
        db.session.commit()
        rows = ledger_rows()
        db.session.execute(text(f"UPDATE reports SET {column} = {values[column]}"))  # noqa: S608 -- names from the test
        db.session.commit()
        kept, live = kept_and_live()
        assert kept == live
        subject_columns = ("subject_staff_index", "subject_name_index")
        assert column in subject_columns or ledger_rows() > rows


def test_open_over_a_year_counts_back_from_the_day_asked(app):
    # "Open over a year" counts back from today: a new day is new figures, even with no change
    with app.app_context():
        add_case(received=datetime.combine(utcnow().date(), datetime.min.time()) - timedelta(days=365))
        db.session.commit()
        now = utcnow()
        today = gather(db.session, InsightFilters(), now)
        tomorrow = gather(db.session, InsightFilters(), now + timedelta(days=1))
        assert today.stats["timeliness"]["open_over_1_year"] == 0
        assert tomorrow.stats["timeliness"]["open_over_1_year"] == 1


def test_refresh_figures_rebuilds_totals_not_trusted_and_else_does_nothing(app):
    with app.app_context():
        new_report()
    runner = app.test_cli_runner()
    # On a healthy instance (cron runs it every few minutes): nothing to do
    healthy = runner.invoke(args=["portal", "refresh-figures"])
    assert healthy.exit_code == 0 and "nothing to do" in healthy.output
    # After a repair by hand that marked the totals untrusted: rebuilt, and committed
    with app.app_context():
        rollups.invalidate(db.session)
        db.session.commit()
    repaired = runner.invoke(args=["portal", "refresh-figures"])
    assert repaired.exit_code == 0 and "rebuilt from the cases" in repaired.output
    # --rebuild works them out afresh whatever their state
    forced = runner.invoke(args=["portal", "refresh-figures", "--rebuild"])
    assert forced.exit_code == 0 and "rebuilt from the cases" in forced.output
    with app.app_context():
        kept, live = kept_and_live()
        assert kept == live and kept["cases"] == 1


def test_no_snapshot_layer_is_left_in_the_database(app):
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        tables = set(db.session.scalars(text(query)))
        assert {"figures_case_counts", "figures_day_counts", "figures_subjects"} <= tables
        assert not tables & {"figures_version", "figures_snapshots"}
