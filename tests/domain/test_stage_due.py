"""The stage's due moment kept on each case (`reports.stage_due_at`, portal.domain.clocks), which the queue page's
"over stage target" filter reads: right after every kind of write, after the targets change, after migration
0022's backfill, and the filter returns exactly the cases the clocks module says are over target.

Real parts: the domain's own writers (intake, casework, settings), SQLite and PostgreSQL, the real migrations.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select, update

from portal import access
from portal.core import workflow
from portal.domain import casework, clocks, queues
from portal.domain import settings as store
from portal.oversight import definitions
from portal.sealing import recovery
from portal.storage.models import Officer, Queue, Report, db, utcnow
from tests.factories import add_case, load_history, make_officer, new_report

DAY = timedelta(days=1)
TARGETS = dict(
    assessment_days=9,
    investigation_days={"practice-requiring-improvement": 31, "misconduct": 77, "gross-misconduct": 140},
    reply_days=5,
    review_days=7,
    escalation_days=(0, 7, 14),
)


def _stored(report_id: str) -> datetime | None:
    db.session.expire_all()
    return db.session.scalar(select(Report.stage_due_at).where(Report.id == report_id))


def _agrees(report: Report) -> datetime | None:
    """The stored moment, checked against the clocks module's own reading of the row as it stands."""
    stored = _stored(report.id)
    report = db.session.get(Report, report.id)
    assert stored == clocks.stage_due(report, clocks.current_targets(db.session))
    return stored


def test_the_due_moment_follows_every_write_of_a_case(app):
    with app.app_context():
        store.save_clock_targets(db.session, **TARGETS)
        db.session.commit()
        submitted = new_report(subject_command="CE")
        report = submitted.report
        dek = recovery.data_key(report, recovery.load_recovery_key(app.config["TEST_RECOVERY_KEY"]))
        targets = clocks.current_targets(db.session)
        # Received: acknowledge within the intake clock's days, from receipt
        assert _agrees(report) == report.received_at + targets.acknowledge_days * DAY
        start = utcnow().replace(microsecond=123456)

        def step(days: int, change) -> datetime | None:
            nonlocal report
            report = db.session.get(Report, report.id)
            change(report, start + days * DAY)
            db.session.commit()
            return _agrees(report)

        def move(state: str):
            return lambda r, at: casework.change_state(db.session, r, state, at)

        assert step(1, move("acknowledged")) == start + DAY + 9 * DAY
        assert step(2, move("assessment")) == start + 2 * DAY + 9 * DAY
        # The severity assessed: no change while in assessment, then the investigation's days by severity
        assert step(3, lambda r, at: casework.record_assessment(r, dek, "misconduct", "Reasons.")) == start + 11 * DAY
        assert step(4, move("investigation")) == start + 4 * DAY + 77 * DAY
        assert step(5, lambda r, at: casework.record_assessment(r, dek, "gross-misconduct", "More.")) == (
            start + 4 * DAY + 140 * DAY
        )
        # Re-routed: the stage and its target go with the case
        psu = db.session.scalar(select(Queue).where(Queue.code == "PSU-CE"))
        queue_before = report.queue_id
        assert step(6, lambda r, at: casework.reroute(db.session, r, dek, psu, at)) == start + 144 * DAY
        assert _stored(report.id) and db.session.get(Report, report.id).queue_id != queue_before
        # Referred: no target; back under investigation: a new stage, timed from its start
        assert step(7, move("referred")) is None
        assert step(8, move("investigation")) == start + 8 * DAY + 140 * DAY
        # A date set by hand (as a correction would) moves it too
        assert step(9, lambda r, at: setattr(r, "stage_entered_at", at)) == start + 9 * DAY + 140 * DAY
        # Resolved, then closed: finalised, no target
        assert step(10, lambda r, at: casework.record_outcome(db.session, r, "case-to-answer", "none", at)) is None
        assert step(11, move("closed")) is None


def test_a_change_of_targets_recomputes_every_open_case(app):
    with app.app_context():
        received = utcnow().replace(microsecond=654321) - 50 * DAY
        cases = [
            add_case(received=received, state="received", acknowledged=False),
            add_case(received=received, state="acknowledged"),
            add_case(received=received, state="assessment"),
            add_case(received=received, state="investigation", severity="practice-requiring-improvement"),
            add_case(received=received, state="investigation", severity=None),
            add_case(received=received, state="investigation", severity="nfa"),
            add_case(received=received, state="referred"),
            add_case(received=received, state="closed", finalised=received + DAY),
        ]
        db.session.commit()
        before = [_agrees(case) for case in cases]
        # When the administrator changes the stage targets and the days to acknowledge
        store.save_clock_targets(db.session, **TARGETS)
        store.save_clock_settings(db.session, 3, 28)
        db.session.commit()
        # Then every open case's moment is the new targets' (no other write touched them)
        after = [_agrees(case) for case in cases]
        assert after == [
            received + 3 * DAY,
            received + 9 * DAY,
            received + 9 * DAY,
            received + 31 * DAY,
            received + 77 * DAY,  # no severity recorded: the misconduct target
            received + 77 * DAY,  # a severity with no target of its own: the same
            None,
            None,
        ]
        assert before[:6] != after[:6]


def test_the_filter_returns_exactly_the_cases_the_clocks_module_says_are_over_target(app):
    """Property-style: many generated cases, targets changed between rounds, the bulk recompute in SQL compared
    with the clocks module's Python reading of every row, to the microsecond."""
    officer_id = make_officer(app, "triage@force.test", queues=("DPS",))
    rng = random.Random(17)
    with app.app_context():
        dps = db.session.scalar(select(Queue).where(Queue.code == "DPS"))
        who = access.identity(
            db.session, db.session.get(Officer, officer_id), app.extensions["portal_secrets"].blind_index_key
        )
        now = utcnow()
        ids = []
        for number in range(240):
            state = rng.choice(workflow.STATES)
            received = now - timedelta(days=rng.randint(0, 400), seconds=rng.randint(0, 86_400))
            received = received.replace(microsecond=rng.randint(0, 999_999))
            final = definitions.state_is_final(state)
            case = add_case(
                received=received,
                state=state,
                severity=rng.choice((None, "nfa", "practice-requiring-improvement", "misconduct", "gross-misconduct")),
                acknowledged=rng.random() < 0.7,
                # A finalised date on some open cases too: those are not open (definitions.is_open)
                finalised=received + DAY if final or rng.random() < 0.05 else None,
            )
            if rng.random() < 0.6:
                case.stage_entered_at = received + timedelta(
                    days=rng.randint(0, 30), microseconds=rng.randint(0, 10**6)
                )
            if number == 0:  # due exactly now: not over target (strictly before now)
                case.state, case.severity, case.finalised_at = "assessment", None, None
                case.stage_entered_at = now - 15 * DAY
            ids.append(case)
        db.session.commit()
        ids = [case.id for case in ids]

        def check(targets: store.ClockTargets) -> int:
            reports = db.session.scalars(select(Report).where(Report.id.in_(ids))).all()
            for report in reports:  # the SQL recompute (or the write) agrees with Python to the microsecond
                assert report.stage_due_at == clocks.stage_due(report, targets), report.state
            expected = set()
            for report in reports:
                clock = clocks.stage_clock(report, targets, now)
                if clock is not None and clock.late and report.finalised_at is None:
                    expected.add(report.id)
            filters = queues.QueueFilters(over_target=True)
            rows, more = queues.list_queue(db.session, dps, who, filters, 1, 1000, now)
            assert not more
            assert {row.report.id for row in rows} == expected
            exact = set(db.session.scalars(select(Report.id).where(clocks.over_target(targets, now))))
            assert exact == expected
            return len(expected)

        late = check(clocks.current_targets(db.session))
        assert 0 < late < len(ids)
        assert ids[0] not in {row.report.id for row in queues.list_queue(
            db.session, dps, who, queues.QueueFilters(over_target=True), 1, 1000, now
        )[0]}  # fmt: skip
        # Other targets: the administrator's change recomputes in SQL
        for _ in range(3):
            store.save_clock_targets(
                db.session,
                assessment_days=rng.randint(1, 60),
                investigation_days={code: rng.randint(1, 365) for code in store.INVESTIGATION_DEFAULTS},
                reply_days=5,
                review_days=7,
                escalation_days=(0, 7, 14),
            )
            store.save_clock_settings(db.session, rng.randint(1, 30), 28)
            db.session.commit()
            check(clocks.current_targets(db.session))
        # The bulk path (a seed, an import) from nothing: the same
        db.session.execute(update(Report).values(stage_due_at=None))
        clocks.recompute_stage_due(db.session, clocks.current_targets(db.session))
        db.session.commit()
        check(clocks.current_targets(db.session))


def test_imported_cases_get_their_due_moment(app, tmp_path):
    # The importers insert rows as dictionaries, which no flush sees
    with app.app_context():
        store.save_clock_targets(db.session, **TARGETS)
        db.session.commit()
    load_history(app, tmp_path)
    with app.app_context():
        reports = db.session.scalars(select(Report).where(Report.source == "import")).all()
        targets = clocks.current_targets(db.session)
        assert len(reports) == 25
        assert [r.stage_due_at for r in reports] == [clocks.stage_due(r, targets) for r in reports]
        open_ones = [r for r in reports if r.finalised_at is None]
        assert open_ones and all(r.stage_due_at == r.received_at + 9 * DAY for r in open_ones)  # in assessment


def test_migration_0022_backfills_the_cases_already_there(app):
    with app.app_context():
        store.save_clock_targets(db.session, **TARGETS)
        received = utcnow().replace(microsecond=4321) - 20 * DAY
        cases = [
            add_case(received=received, state="received", acknowledged=False),
            add_case(received=received, state="assessment"),
            add_case(received=received, state="investigation", severity="gross-misconduct"),
            add_case(received=received, state="referred"),
            add_case(received=received, state="resolved", finalised=received + DAY),
        ]
        cases[1].stage_entered_at = received + 2 * DAY
        db.session.commit()
        ids = [case.id for case in cases]
        db.session.remove()
    runner = app.test_cli_runner()
    # Given the database taken back to before the column, still holding the cases
    result = runner.invoke(args=["db", "downgrade", "0021_trend_rollups"])
    assert result.exit_code == 0, result.output
    # When it is upgraded
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    # Then each case holds its due moment under the stored targets
    with app.app_context():
        assert [_stored(report_id) for report_id in ids] == [
            received + 7 * DAY,
            received + 2 * DAY + 9 * DAY,
            received + 140 * DAY,
            None,
            None,
        ]
        for report_id in ids:
            _agrees(db.session.get(Report, report_id))
