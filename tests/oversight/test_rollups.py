"""oversight.rollups: the running totals behind the all-time figures stay equal to the cases, whatever changes them.

Every test compares two ways of working the figures out: from the totals the database's triggers keep
(`stats.compute`, all time, no command) and from the cases themselves (`use_rollups=False`, the path every
period or command filter takes). The totals must also never have been rebuilt in between, or the comparison
would prove nothing: each check asserts they were trusted throughout.
"""

from __future__ import annotations

import io
import threading
import time
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from portal import demo as seeding
from portal.domain import casework, intake
from portal.domain.importers import import_workforce
from portal.oversight import rollups, stats
from portal.oversight.definitions import SubjectGroup
from portal.oversight.figures_models import FiguresSubjectGroup
from portal.sealing import recovery
from portal.storage import bulk
from portal.storage.models import FiguresCaseCount, FiguresDayCount, FiguresSubject, Report, WorkforceMember, db, utcnow
from portal.web.app import server_secrets
from tests.factories import NOT_CIPHERTEXT, add_case, load_history, new_report, person

TODAY = date(2025, 6, 30)


def maintained() -> tuple[dict, dict, dict, dict]:
    """What the totals add up to, as plain dicts (ledgers summed; people with no case left out)."""
    cases: dict = {}
    for row in db.session.execute(select(FiguresCaseCount)).scalars():
        key = tuple(getattr(row, name) for name in rollups.CASE_KEYS)
        cases[key] = cases.get(key, 0) + row.n
    days: dict = {}
    for row in db.session.execute(select(FiguresDayCount)).scalars():
        days[row.days] = days.get(row.days, 0) + row.n
    subjects = {
        (s.kind, s.key): (
            s.cases,
            s.dismissed,
            s.reg13,
            s.finalised,
            s.upheld,
            s.ethnicity,
            s.probationer,
            s.member_command,
        )
        for s in db.session.execute(select(FiguresSubject)).scalars()
        if s.cases
    }
    groups: dict = {}  # the per-person rows added up by the directory's facts (migration 0023's ledger)
    values = SubjectGroup._fields[len(rollups.SUBJECT_GROUP_KEYS) :]
    for row in db.session.execute(select(FiguresSubjectGroup)).scalars():
        key = tuple(getattr(row, name) for name in rollups.SUBJECT_GROUP_KEYS)
        old = groups.get(key, (0,) * len(values))
        groups[key] = tuple(a + getattr(row, name) for a, name in zip(old, values, strict=True))
    return (
        {k: v for k, v in cases.items() if v},
        {k: v for k, v in days.items() if v},
        subjects,
        {k: v for k, v in groups.items() if any(v)},
    )


def check(today: date = TODAY) -> dict:
    """The figures from the totals equal the figures from the cases, and the totals equal a fresh rebuild."""
    assert rollups.is_valid(db.session), "the totals must have been kept, not rebuilt"
    from_totals = stats.compute(db.session, today=today)
    assert rollups.is_valid(db.session)
    from_cases = stats.compute(db.session, today=today, use_rollups=False)
    assert from_totals == from_cases
    kept = maintained()
    rollups.rebuild(db.session)
    assert maintained() == kept
    db.session.commit()
    return from_totals


def data_key(app, report: Report) -> bytes:
    return recovery.data_key(report, recovery.load_recovery_key(app.config["TEST_RECOVERY_KEY"]))


def test_the_totals_follow_every_kind_of_change(app, tmp_path):
    load_history(app, tmp_path)  # 30 directory members, 25 legacy cases through the real importers
    with app.app_context():
        assert rollups.is_valid(db.session)
        first = check()
        assert first["cases"] == 25

        # The portal's intake: a member of the directory typed another way, a name only, nobody at all
        new_report(subject_staff_number="mp-1001", category="sexual-misconduct")
        new_report(subject_staff_number="", subject_name="Someone Unknown")
        new_report(subject_staff_number="")
        check()

        # A held report (no case yet), then the report that corroborates it: both count from then on
        held = new_report(subject_staff_number="ZZ 900", hold_until_corroborated=True)
        assert check()["cases"] == 28
        new_report(subject_staff_number="zz900")
        assert check()["cases"] == 30
        assert db.session.get(Report, held.report.id).held is False

        # A held report withdrawn by its reporter: never counted, nothing to take away
        withdrawn = new_report(subject_staff_number="QQ1", hold_until_corroborated=True)
        intake.withdraw_held(db.session, db.session.get(Report, withdrawn.report.id))
        db.session.commit()
        check()

        # Triage: stages, an assessment, an outcome with a dismissal, Regulation 13
        report = db.session.scalar(select(Report).where(Report.source == "portal").order_by(Report.received_at))
        casework.change_state(db.session, report, "acknowledged")
        db.session.commit()
        check()
        casework.record_assessment(report, data_key(app, report), "gross-misconduct", "Seen on camera")
        report.reg13 = True
        casework.record_outcome(db.session, report, "case-to-answer", "dismissal")
        db.session.commit()
        figures = check()
        assert figures["gross_misconduct"]["dismissed"] >= 1

        # Bulk Core statements and SQL typed by hand, which no application code sees
        db.session.execute(update(Report).where(Report.category == "duties").values(subject_command="NA"))
        db.session.execute(text("UPDATE reports SET finding = 'no-case-to-answer' WHERE finding = 'not-investigated'"))
        db.session.commit()
        check()
        # A case moved from one person to another (their staff numbers' blind indexes)
        two = db.session.scalars(select(Report.subject_staff_index).where(Report.subject_staff_index.is_not(None)))
        a, b = list(dict.fromkeys(two))[:2]
        db.session.execute(update(Report).where(Report.subject_staff_index == a).values(subject_staff_index=b))
        db.session.commit()
        check()
        db.session.execute(text("UPDATE reports SET finalised_at = NULL, state = 'investigation' WHERE reg13"))
        db.session.execute(delete(Report).where(Report.category == "corruption"))
        db.session.commit()
        check()

        # The directory: a new member who is already a subject, a member changed, a member removed
        rows = (
            "staff_number,name,command,rank,ethnicity,probationer,joined_on\n"
            "ZZ900,Zed,NA,constable,Black,true,2024-01-01\n"
        )
        import_workforce(db.session, io.StringIO(rows), server_secrets().blind_index_key)
        db.session.commit()
        check()
        db.session.execute(
            text("UPDATE workforce SET ethnicity = 'Asian', probationer = NOT probationer WHERE command = 'CE'")
        )
        db.session.commit()
        check()
        db.session.execute(text("UPDATE workforce SET command = 'NA' WHERE ethnicity = 'Black'"))
        db.session.execute(delete(WorkforceMember).where(WorkforceMember.ethnicity == "Mixed"))
        db.session.commit()
        figures = check()
        assert figures["disproportionality"]["allegations"]["Mixed"]["headcount"] == 0

        # Everything gone
        db.session.execute(delete(Report))
        db.session.commit()
        assert check()["cases"] == 0


def test_a_change_rolled_back_leaves_the_totals_as_they_were(app):
    with app.app_context():
        add_case(received=utcnow() - timedelta(days=40), subject=person("a"))
        db.session.commit()
        before = maintained()
        add_case(received=utcnow() - timedelta(days=4), subject=person("a"), finalised=utcnow())
        db.session.execute(text("UPDATE reports SET category = 'corruption'"))
        db.session.flush()
        assert maintained() != before  # the triggers ran in the transaction...
        db.session.rollback()
        assert maintained() == before  # ...and went with it
        check(today=utcnow().date())


def test_the_days_of_a_case_finalised_then_reopened_are_taken_away(app):
    with app.app_context():
        report = add_case(received=datetime(2024, 1, 1, 9), finalised=datetime(2024, 1, 31, 17), state="resolved")
        db.session.commit()
        assert rollups.day_rows(db.session) == [(30, 1)]
        report.finalised_at, report.state = None, "investigation"
        db.session.commit()
        assert rollups.day_rows(db.session) == []
        check()


def test_the_ledgers_are_folded_back_when_they_grow(app, monkeypatch):
    monkeypatch.setattr(rollups, "COMPACT_MARGIN", 5)
    with app.app_context():
        report = add_case(received=datetime(2024, 1, 1), subject=person("a"))
        db.session.commit()
        for number in range(30):  # every change appends -1 and +1 rows
            report.state = "investigation" if number % 2 else "acknowledged"
            report.finalised_at = datetime(2024, 2, 1) if number % 3 else None
            db.session.commit()
        ledger = db.session.scalar(select(func.count()).select_from(FiguresCaseCount))
        assert ledger > 20
        assert db.session.scalar(select(func.count()).select_from(FiguresSubjectGroup)) > 20
        before = maintained()
        figures = check()  # a reader adds them up, and folds them back
        assert db.session.scalar(select(func.count()).select_from(FiguresCaseCount)) == 1
        assert db.session.scalar(select(func.count()).select_from(FiguresDayCount)) <= 1
        assert db.session.scalar(select(func.count()).select_from(FiguresSubjectGroup)) == 1
        assert maintained() == before
        assert figures["cases"] == 1


def test_totals_not_trusted_are_rebuilt_by_the_next_reader(app):
    with app.app_context():
        add_case(received=datetime(2024, 1, 1), subject=person("a"))
        db.session.commit()
        rollups.invalidate(db.session)
        add_case(received=datetime(2024, 2, 1), subject=person("a"), finalised=datetime(2024, 3, 1))
        db.session.commit()
        assert maintained()[0] == {("bullying", "received", "CE", "portal", None, False, False, False, False): 1}
        figures = stats.compute(db.session, today=TODAY)  # rebuilds first
        db.session.commit()
        assert rollups.is_valid(db.session)
        assert figures["cases"] == 2 and figures["repeat_subjects"]["with_2_or_more_cases"] == 1
        check()


def test_the_seed_works_the_totals_out_once_at_the_end(app):
    with app.app_context():
        seeding.seed(db.session, server_secrets(), 300, seed_value=3, workers=0, now=datetime(2025, 6, 30, 12))
        assert rollups.is_valid(db.session)
        figures = check()
        assert figures["cases"] == 300


def test_the_stats_command_keeps_the_upkeep_it_did(app):
    with app.app_context():
        add_case(received=datetime(2024, 1, 1), subject=person("a"))
        db.session.commit()
        rollups.invalidate(db.session)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["portal", "stats", "--json"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert rollups.is_valid(db.session)  # the rebuild was committed, not rolled back
        check()


def test_the_triggers_know_the_final_states_and_the_columns_the_figures_read():
    """Migration 0009 spells these out for the database; they must be what the application means by them."""
    import importlib.util
    from pathlib import Path

    from portal.core import workflow
    from portal.storage.models import FIGURES_COLUMNS

    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0009_figures_rollups.py"
    spec = importlib.util.spec_from_file_location("migration_0009", path)
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.FINAL_STATES == "(" + ", ".join(f"'{s}'" for s in workflow.FINAL_STATES) + ")"
    assert set(migration.REPORT_COLUMNS) == set(FIGURES_COLUMNS)
    assert migration.LOCK_KEY == rollups.LOCK_KEY


# --- PostgreSQL: concurrent writers ------------------------------------------------------------------------------


def _case(session: Session, subject: bytes, queue_id: int) -> None:
    session.add(
        Report(
            reference=f"CR-2098-{abs(hash((subject, time.perf_counter()))) % 10**6:06d}",
            received_at=utcnow(),
            mode="anonymous",
            category="bullying",
            state="received",
            queue_id=queue_id,
            subject_command="CE",
            subject_staff_index=subject,
            acknowledge_due_at=utcnow(),
            next_update_due_at=utcnow(),
            dek_for_queue=NOT_CIPHERTEXT,
            dek_for_recovery=NOT_CIPHERTEXT,
            summary_sealed=NOT_CIPHERTEXT,
            details_sealed=NOT_CIPHERTEXT,
        )
    )


def _waits_for(first: Session, work) -> None:
    """Run `work` (a second transaction) in a thread: it must wait until `first` commits, then succeed."""
    errors: list = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 -- reported to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the second transaction waits for the first to commit"
    first.commit()
    thread.join(10)
    assert not thread.is_alive() and not errors


def _postgresql_only(app) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has one writer at a time: there is no race to test")


def test_two_reports_about_one_person_at_once_make_two_cases(app):
    _postgresql_only(app)
    with app.app_context():
        queue_id = db.session.scalar(text("SELECT id FROM queues LIMIT 1"))
        first, second = Session(db.engine), Session(db.engine)
        try:
            _case(first, person("same"), queue_id)
            first.flush()  # its trigger holds the person's row
            _waits_for(first, lambda: (_case(second, person("same"), queue_id), second.commit()))
        finally:
            first.close()
            second.close()
        figures = check(today=utcnow().date())
        assert figures["repeat_subjects"]["with_2_or_more_cases"] == 1


def test_a_directory_change_and_a_report_about_the_new_member_never_miss_each_other(app):
    _postgresql_only(app)
    with app.app_context():
        queue_id = db.session.scalar(text("SELECT id FROM queues LIMIT 1"))
        directory, report = Session(db.engine), Session(db.engine)
        try:
            directory.add(
                WorkforceMember(
                    staff_number_index=person("new"), command="CE", rank_band="constable", ethnicity="Black"
                )
            )
            directory.flush()  # not committed: a report about them cannot see them yet
            _waits_for(directory, lambda: (_case(report, person("new"), queue_id), report.commit()))
        finally:
            directory.close()
            report.close()
        subject = db.session.get(FiguresSubject, ("s", person("new")))
        assert subject.ethnicity == "Black"
        figures = check(today=utcnow().date())
        assert figures["disproportionality"]["allegations"]["Black"]["people_with_allegations"] == 1


def test_without_the_state_row_the_totals_are_not_trusted_until_rebuilt(app):
    with app.app_context():
        db.session.execute(text("DELETE FROM figures_rollup_state"))
        db.session.commit()
        add_case(received=datetime(2024, 1, 1), subject=person("a"))  # the triggers do nothing
        db.session.commit()
        assert not rollups.is_valid(db.session) and maintained() == ({}, {}, {}, {})
        assert stats.compute(db.session, today=TODAY)["cases"] == 1  # rebuilt, the row put back
        db.session.commit()
        check()


def _triggers() -> list:
    if db.engine.dialect.name == "postgresql":
        query = (
            "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal ORDER BY 1, 2"
        )
    else:
        query = "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY 1, 2"
    return [tuple(row) for row in db.session.execute(text(query))]


def _indexes() -> list:
    if db.engine.dialect.name == "postgresql":
        query = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
    else:
        query = "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index' ORDER BY 1, 2"
    return [tuple(row) for row in db.session.execute(text(query))]


def test_a_bulk_load_turns_triggers_and_indexes_off_for_itself_and_does_their_work_once(app):
    with app.app_context():
        before, indexes = _triggers(), _indexes()
        assert len(before) >= 3
        with bulk.bulk_load(db.session, rebuild=rollups.rebuild):
            add_case(received=datetime(2024, 1, 1), subject=person("a"))
            add_case(received=datetime(2024, 2, 1), subject=person("a"), finalised=datetime(2024, 3, 1))
            db.session.flush()
            # Not trusted while the triggers are off; nothing kept row by row
            assert not rollups.is_valid(db.session) and maintained() == ({}, {}, {}, {})
            assert "ix_reports_oversight" not in {name for _table, name, _sql in _indexes()}
        db.session.commit()
        assert _triggers() == before and _indexes() == indexes
        assert rollups.is_valid(db.session)  # the rebuild at the end
        assert check()["repeat_subjects"]["with_2_or_more_cases"] == 1
        add_case(received=datetime(2024, 4, 1), subject=person("b"))  # and the triggers work again
        db.session.commit()
        assert check()["repeat_subjects"]["subjects"] == 2


def test_a_bulk_load_that_fails_leaves_the_triggers_and_indexes_as_they_were(app):
    with app.app_context():
        before, indexes = _triggers(), _indexes()
        with pytest.raises(RuntimeError), bulk.bulk_load(db.session, rebuild=rollups.rebuild):
            add_case(received=datetime(2024, 1, 1), subject=person("a"))
            db.session.flush()
            raise RuntimeError("the load failed")
        db.session.rollback()
        assert _triggers() == before and _indexes() == indexes
        add_case(received=datetime(2024, 1, 1), subject=person("a"))
        db.session.commit()
        check()
