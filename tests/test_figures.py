"""portal.figures: snapshots of the oversight figures are served only while nothing behind them has changed.

The database's own triggers (migration 0006) count the changes, so every way of changing a case or the
workforce directory is tried here: the portal's own paths, the importers, bulk Core statements and raw SQL.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, select, text, update

from portal import casework, figures, intake, server_secrets, stats
from portal.importers import import_workforce
from portal.insights.queries import InsightFilters
from portal.insights.tables import gather
from portal.models import FIGURES_COLUMNS, FiguresSnapshot, Report, db, utcnow
from portal.settings import clock_settings
from tests.test_insights import add_case, add_member, person, supervisor, table_rows


def work_counter():
    """A `work` function for figures.worked_out that counts its calls and returns the real figures."""
    calls = []

    def work():
        calls.append(1)
        return stats.compute(db.session)

    return work, calls


def ask(work) -> figures.Worked:
    worked = figures.worked_out(db.session, figures.snapshot_key(view="test"), work)
    db.session.commit()
    return worked


def new_report(**overrides) -> intake.Submitted:
    values = dict(mode="anonymous", category="bullying", summary="s", details="d", subject_staff_number="AB123")
    values.update(overrides)
    submitted = intake.submit_report(
        db.session, intake.NewReport(**values), server_secrets(), clock_settings(db.session, {})
    )
    db.session.commit()
    return submitted


def test_figures_are_worked_out_once_while_nothing_changes(app):
    with app.app_context():
        add_case(received=utcnow() - timedelta(days=3))
        db.session.commit()
        work, calls = work_counter()
        first = ask(work)
        second = ask(work)
        # Then the second answer is the snapshot: the same figures, without reading the cases again
        assert first.fresh and not second.fresh
        assert len(calls) == 1
        assert second.figures == first.figures == stats.compute(db.session)
        assert second.computed_at == first.computed_at


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
def test_any_change_to_a_case_or_the_directory_makes_the_figures_be_worked_out_again(app, change):
    with app.app_context():
        new_report()
        add_member(person("someone"), "White")
        db.session.commit()
        work, calls = work_counter()
        ask(work)
        before = figures.version(db.session)
        # When a case or the directory changes, by whatever path
        change(app)
        # Then the version has moved and the next answer is worked out afresh, and equals a fresh computation
        assert figures.version(db.session) > before
        worked = ask(work)
        assert worked.fresh and len(calls) == 2
        assert worked.figures == stats.compute(db.session)


def test_changes_the_figures_do_not_read_keep_the_snapshot(app):
    with app.app_context():
        new_report()
        work, calls = work_counter()
        ask(work)
        before = figures.version(db.session)
        # When only a clock and the assignment change (the workload tables read them live, not from a snapshot)
        db.session.execute(
            update(Report).values(next_update_due_at=utcnow() + timedelta(days=3), assigned_officer_id=None)
        )
        db.session.commit()
        # Then the snapshot still stands
        assert figures.version(db.session) == before
        assert not ask(work).fresh and len(calls) == 1


def test_a_change_rolled_back_leaves_the_snapshot_standing(app):
    with app.app_context():
        new_report()
        work, calls = work_counter()
        ask(work)
        db.session.execute(text("UPDATE reports SET category = 'corruption'"))
        db.session.rollback()
        assert not ask(work).fresh and len(calls) == 1


def test_snapshots_of_older_versions_are_dropped_when_a_new_one_is_stored(app):
    with app.app_context():
        new_report()
        for view in ("a", "b"):
            figures.worked_out(db.session, figures.snapshot_key(view=view), lambda view=view: {"view": view})
        db.session.commit()
        assert db.session.scalar(select(db.func.count()).select_from(FiguresSnapshot)) == 2
        new_report()
        figures.worked_out(db.session, figures.snapshot_key(view="a"), lambda: {"view": "a"})
        db.session.commit()
        kept = db.session.scalars(select(FiguresSnapshot.version)).all()
        assert kept == [figures.version(db.session)]


def test_snapshots_of_earlier_days_are_dropped_even_when_nothing_changes(app):
    with app.app_context():
        new_report()
        figures.worked_out(db.session, figures.snapshot_key(view="old", today="2026-01-01"), lambda: {"n": 1})
        db.session.commit()
        db.session.execute(update(FiguresSnapshot).values(computed_at=utcnow() - timedelta(days=3)))
        db.session.commit()
        figures.worked_out(db.session, figures.snapshot_key(view="new"), lambda: {"n": 2})
        db.session.commit()
        assert db.session.scalars(select(FiguresSnapshot.figures)).all() == ['{"n": 2}']


def test_the_key_tells_filters_and_days_apart():
    keys = {
        figures.snapshot_key(view="insights", date_from=None, date_to=None, command=None, today="2026-12-01"),
        figures.snapshot_key(view="insights", date_from=None, date_to=None, command=None, today="2026-12-02"),
        figures.snapshot_key(view="insights", date_from="2026-01-01", date_to=None, command=None, today="2026-12-01"),
        figures.snapshot_key(view="insights", date_from=None, date_to=None, command="CE", today="2026-12-01"),
    }
    assert len(keys) == 4


def test_the_dashboard_shows_a_new_case_at_once(app, client):
    # Given a supervisor who has seen the dashboard (so its figures are kept)
    with app.app_context():
        add_case(received=utcnow() - timedelta(days=40), category="bullying")
        db.session.commit()
    supervisor(app, client)
    page = client.get("/insights/").get_data(as_text=True)
    assert 'id="worked-out"' in page
    assert "<strong>1</strong> case." in page
    assert "Cases still open|1" in table_rows(page, "timeliness")
    # When a reporter submits a concern through the portal
    with app.app_context():
        new_report(category="discrimination")
    # Then the next view counts it, and its category's row has it
    page = client.get("/insights/").get_data(as_text=True)
    assert "<strong>2</strong> cases." in page
    assert "Cases still open|2" in table_rows(page, "timeliness")


def test_the_workload_is_live_while_the_case_figures_come_from_the_snapshot(app):
    # Given a kept snapshot, worked out early in the day
    with app.app_context():
        morning = datetime.combine(utcnow().date(), datetime.min.time()) + timedelta(hours=1)
        add_case(received=morning - timedelta(days=10), update_due=morning + timedelta(hours=2))
        db.session.commit()
        first = gather(db.session, InsightFilters(), morning)
        db.session.commit()
        assert next(q for q in first.queues if q.code == "DPS").overdue == 0
        # When the case's update date passes later that day, with nothing changed in the data
        later = gather(db.session, InsightFilters(), morning + timedelta(hours=5))
        # Then the case figures are the snapshot's (same time worked out) and the queue shows the case overdue
        assert later.worked_out_at == first.worked_out_at
        assert later.stats == first.stats
        dps = next(q for q in later.queues if q.code == "DPS")
        assert dps.open == 1 and dps.overdue == 1


def test_each_filter_has_its_own_snapshot(app):
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
            for _ in range(2):  # worked out, then from the snapshot: the same either way
                figures_now = gather(db.session, filters, now)
                db.session.commit()
                assert figures_now.stats["cases"] == seen.setdefault(filters, figures_now.stats["cases"])
        assert [seen[f] for f in seen] == [3, 1, 2, 2]


@pytest.mark.parametrize("column", FIGURES_COLUMNS)
def test_a_change_to_any_column_the_figures_read_is_counted(app, column):
    """The triggers' column list is the one the figures read (portal.models.FIGURES_COLUMNS)."""
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
        before = figures.version(db.session)
        db.session.execute(text(f"UPDATE reports SET {column} = {values[column]}"))  # noqa: S608 -- names from the test
        db.session.commit()
        assert figures.version(db.session) > before


def test_a_snapshot_that_cannot_be_stored_costs_only_the_saving(app):
    with app.app_context():
        new_report()
        # Given a database that refuses to store snapshots (as a lock timeout would)
        if db.engine.dialect.name == "postgresql":
            db.session.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
                )
            )
            db.session.execute(
                text("CREATE TRIGGER refuse BEFORE INSERT ON figures_snapshots FOR EACH ROW EXECUTE FUNCTION refuse()")
            )
        else:
            db.session.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON figures_snapshots BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        db.session.commit()
        work, calls = work_counter()
        # Then the figures are still worked out and returned, and the session goes on working
        worked = figures.worked_out(db.session, figures.snapshot_key(view="test"), work)
        assert worked.fresh and worked.figures["cases"] == 1
        assert db.session.scalar(select(db.func.count()).select_from(Report)) == 1
        db.session.commit()
        assert db.session.scalar(select(db.func.count()).select_from(FiguresSnapshot)) == 0


def test_without_the_version_row_nothing_is_kept(app):
    with app.app_context():
        new_report()
        db.session.execute(text("DELETE FROM figures_version"))
        db.session.commit()
        work, calls = work_counter()
        assert ask(work).fresh and ask(work).fresh
        assert len(calls) == 2
        assert db.session.scalar(select(db.func.count()).select_from(FiguresSnapshot)) == 0


def test_a_snapshot_is_never_stored_over_a_later_one(app):
    with app.app_context():
        new_report()
        key = figures.snapshot_key(view="race")
        old_version = figures.version(db.session)
        new_report()  # the data moves on
        figures.worked_out(db.session, key, lambda: {"at": "later"})
        db.session.commit()
        # When a slow request that read the old version stores its figures last
        figures._store(db.session, key, old_version, utcnow(), 1.0, '{"at": "earlier"}')
        db.session.commit()
        # Then the later snapshot stands
        stored = db.session.scalar(select(FiguresSnapshot.figures).where(FiguresSnapshot.key == key))
        assert stored == '{"at": "later"}'


def test_the_snapshot_is_kept_for_the_day_it_was_worked_out(app):
    # "Open over a year" counts back from today: a new day is new figures, even with no change
    with app.app_context():
        add_case(received=datetime.combine(utcnow().date(), datetime.min.time()) - timedelta(days=365))
        db.session.commit()
        now = utcnow()
        today = gather(db.session, InsightFilters(), now)
        tomorrow = gather(db.session, InsightFilters(), now + timedelta(days=1))
        assert today.stats["timeliness"]["open_over_1_year"] == 0
        assert tomorrow.stats["timeliness"]["open_over_1_year"] == 1


def test_refresh_figures_works_them_out_once_for_the_next_supervisor(app, client):
    with app.app_context():
        new_report()
    runner = app.test_cli_runner()
    # When cron runs the command after a change, and again with nothing changed
    first = runner.invoke(args=["portal", "refresh-figures"])
    second = runner.invoke(args=["portal", "refresh-figures"])
    assert first.exit_code == 0 and "worked out afresh" in first.output
    assert second.exit_code == 0 and "nothing to do" in second.output
    # Then the dashboard reads the figures it worked out
    with app.app_context():
        worked_at = db.session.scalar(select(FiguresSnapshot.computed_at))
        now = utcnow()
        assert not gather(db.session, InsightFilters(), now).worked_out_afresh
        assert gather(db.session, InsightFilters(), now).worked_out_at == worked_at
