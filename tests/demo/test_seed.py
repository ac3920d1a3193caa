"""`flask portal seed`: a synthetic force and sealed cases whose figures follow the review's.

Given a fresh instance, when it is seeded, then the cases are sealed like real ones (only the queue or the
recovery key opens them, and no plaintext is in the database), the same seed gives the same cases, the
references are well formed and unique, and the figures are roughly the review's.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import func, select, text

from portal import demo as seeding
from portal.core import crypto, routing
from portal.demo import rows, words
from portal.domain import intake
from portal.sealing import recovery
from portal.storage.models import CaseEvent, Queue, ReferenceCounter, Report, WorkforceMember, db
from tests.factories import build_app

NOW = datetime(2026, 6, 30, 12, 0, 0)
CLEAR = (
    "reference",
    "received_at",
    "mode",
    "category",
    "state",
    "queue_id",
    "routing_reasons",
    "iopc_flags",
    "fear_of_reprisal",
    "subject_command",
    "subject_rank_band",
    "subject_ethnicity",
    "subject_probationer",
    "subject_staff_index",
    "subject_name_index",
    "earlier_concerns",
    "pattern_flags",
    "acknowledged_at",
    "finalised_at",
    "next_update_due_at",
    "severity",
    "finding",
    "sanction",
    "reg13",
)


def _seed(app, reports=400, seed_value=5, workers=0, now=NOW):
    with app.app_context():
        return seeding.seed(
            db.session, app.extensions["portal_secrets"], reports, seed_value=seed_value, now=now, workers=workers
        )


def _clear_values(app) -> list[tuple]:
    """The clear columns in reference order; blind indexes (keyed per instance) as who-is-who numbers."""
    columns = [getattr(Report, name) for name in CLEAR]
    with app.app_context():
        rows = [list(row) for row in db.session.execute(select(*columns).order_by(Report.reference))]
    people: dict[bytes, int] = {}
    for row in rows:
        for position in (CLEAR.index("subject_staff_index"), CLEAR.index("subject_name_index")):
            if row[position] is not None:
                row[position] = people.setdefault(row[position], len(people))
    return [tuple(row) for row in rows]


def _directory(app) -> list[tuple]:
    with app.app_context():
        return sorted(
            tuple(row)
            for row in db.session.execute(
                select(
                    WorkforceMember.command,
                    WorkforceMember.rank_band,
                    WorkforceMember.ethnicity,
                    WorkforceMember.probationer,
                    WorkforceMember.joined_on,
                )
            )
        )


def test_the_same_seed_gives_the_same_force_and_cases(app, backend, tmp_path):
    _seed(app)
    first, first_directory = _clear_values(app), _directory(app)
    assert len(first) == 400 and len(first_directory) == seeding.headcount_for(400)
    # A second instance (the same database server, reset) with the same seed and date, sealing in workers.
    again = build_app(tmp_path / "again", backend)
    _seed(again, workers=2)
    assert _clear_values(again) == first
    assert _directory(again) == first_directory
    with again.app_context():
        db.session.remove()
        db.engine.dispose()


def test_another_seed_gives_other_cases(app):
    _seed(app, reports=60, seed_value=1)
    first = _clear_values(app)
    with app.app_context():
        db.session.execute(text("DELETE FROM case_events"))
        db.session.execute(text("DELETE FROM reports"))
        db.session.execute(text("DELETE FROM workforce"))
        db.session.commit()
    _seed(app, reports=60, seed_value=2)
    assert [row[1:] for row in _clear_values(app)] != [row[1:] for row in first]


def test_seeded_cases_are_sealed_and_open_only_with_their_keys(app):
    _seed(app, reports=120)
    recovery_private = recovery.load_recovery_key(app.config["TEST_RECOVERY_KEY"])
    secrets = app.extensions["portal_secrets"]
    with app.app_context():
        raw_rows = db.session.execute(text("SELECT * FROM reports")).all()
        raw = b"\x00".join(
            value if isinstance(value, bytes) else str(value).encode() for row in raw_rows for value in row
        )
        queue_keys = {q.id: recovery.queue_private_key(q, recovery_private) for q in db.session.scalars(select(Queue))}
        reports = db.session.scalars(select(Report)).all()
        assert len(reports) == 120
        named = 0
        for report in reports:
            assert report.source == "seed" and report.held is False
            assert report.receipt_index is None and report.dek_for_receipt is None  # no receipt: none to lose
            dek = recovery.data_key(report, recovery_private)
            assert recovery.data_key_through_queue(report, queue_keys[report.queue_id]) == dek
            fields = recovery.open_report_fields(report, dek)
            assert fields["summary"] in words.SUMMARIES[report.category]
            assert len(fields["details"]) > 50
            for name in ("summary", "details", "subject_name", "subject_staff_number", "location", "reporter_name"):
                if fields[name]:
                    assert fields[name].encode() not in raw, name
            if report.severity:
                rationale = crypto.open_text(
                    dek, report.severity_rationale_sealed, table="reports", column="severity_rationale", row=report.id
                )
                assert rationale == words.RATIONALES[report.severity]
            # The blind indexes are those of the sealed staff number and name, as at intake.
            assert report.subject_staff_index == crypto.staff_number_index(
                secrets.blind_index_key, fields["subject_staff_number"]
            )
            assert report.subject_name_index == crypto.name_index(secrets.blind_index_key, fields["subject_name"])
            if report.mode == "anonymous":
                assert not fields["reporter_name"] and not fields["reporter_contact"]
            if report.subject_ethnicity is not None:
                member = db.session.scalar(
                    select(WorkforceMember).where(WorkforceMember.staff_number_index == report.subject_staff_index)
                )
                assert member is not None
                assert (member.ethnicity, member.command, member.probationer) == (
                    report.subject_ethnicity,
                    report.subject_command,
                    report.subject_probationer,
                )
                named += 1
            # A sealed field moved to another row does not open there.
            with pytest.raises(crypto.DecryptionError):
                crypto.open_text(dek, report.summary_sealed, table="reports", column="summary", row="another-row")
        assert named > 0


def test_references_are_well_formed_unique_and_continue_the_counters(app):
    secrets = app.extensions["portal_secrets"]
    with app.app_context():  # a real report first: seeding takes the numbers after it
        new = intake.NewReport(mode="anonymous", category="duties", summary="Real one", details="A real report.")
        real = intake.submit_report(db.session, new, secrets, intake.IntakeSettings(), now=NOW).report.reference
        db.session.commit()
    _seed(app, reports=400)
    with app.app_context():
        rows = db.session.execute(select(Report.reference, Report.received_at, Report.source)).all()
        counters = dict(db.session.execute(select(ReferenceCounter.year, ReferenceCounter.last)).all())
    references = [r.reference for r in rows]
    assert len(set(references)) == len(references) == 401
    by_year: dict[int, list[int]] = {}
    for row in rows:
        match = re.fullmatch(r"CR-(\d{4})-(\d{6})", row.reference)
        assert match, row.reference
        assert int(match.group(1)) == row.received_at.year
        by_year.setdefault(row.received_at.year, []).append(int(match.group(2)))
    for year, numbers in by_year.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1))  # no gaps, no repeats
        assert counters[year] == len(numbers)
    assert real == f"CR-{NOW.year}-000001"
    # Within a year the numbers follow the date received.
    seeded = sorted((r for r in rows if r.source == "seed"), key=lambda r: (r.received_at, r.reference))
    for year in by_year:
        numbers = [int(r.reference[-6:]) for r in seeded if r.received_at.year == year]
        assert numbers == sorted(numbers)


def test_figures_follow_the_review_roughly(app):
    result = _seed(app, reports=400)
    assert result.cases == 400 and result.workforce == 2000
    with app.app_context():
        reports = db.session.scalars(select(Report)).all()
        events = db.session.scalar(select(func.count()).select_from(CaseEvent))
        workforce = db.session.execute(select(WorkforceMember.ethnicity, WorkforceMember.probationer)).all()
        rules = intake.load_rules(db.session)
        queues = {q.id: q.code for q in db.session.scalars(select(Queue))}
    assert events >= 400
    finalised = [r for r in reports if r.finalised_at is not None]
    open_cases = [r for r in reports if r.finalised_at is None]
    days = [(r.finalised_at - r.received_at).days for r in finalised]
    assert 300 <= statistics.mean(days) <= 500  # finding 1: ~400 days
    assert 0.12 <= sum(d > 730 for d in days) / len(days) <= 0.28  # ~20% over two years
    assert all(r.state in ("resolved", "closed") for r in finalised)
    assert all(r.state not in ("resolved", "closed") for r in open_cases)
    assert any((NOW - r.received_at).days > 365 for r in open_cases)  # some open over a year
    findings = Counter(r.finding for r in finalised)
    assert 0.50 <= findings["no-case-to-answer"] / len(finalised) <= 0.65  # finding 2
    assert 0.27 <= findings["case-to-answer"] / len(finalised) <= 0.40
    years = {r.received_at.year for r in reports}
    assert len(years) >= 9 and max(r.received_at for r in reports) <= NOW
    assert 0.08 <= sum(p for _e, p in workforce) / len(workforce) <= 0.16  # probationers
    assert Counter(e for e, _p in workforce).most_common(1)[0][0] == "White"
    assert all(r.reg13 is False or r.subject_probationer for r in reports)  # finding 8: probationers only
    # Finding 4: 20% of the people have two or more cases.
    people = Counter(r.subject_staff_index or r.subject_name_index for r in reports if r.subject_name_index)
    assert 0.14 <= sum(n >= 2 for n in people.values()) / len(people) <= 0.26
    # Routing: what the rules give for each case's facts (DPS for the serious categories, else the PSU).
    used = Counter(queues[r.queue_id] for r in reports)
    assert used["DPS"] > 100 and sum(1 for code in used if code.startswith("PSU-")) >= 5
    for report in reports:
        facts = routing.ReportFacts(
            report.category,
            report.subject_command,
            report.fear_of_reprisal,
            report.earlier_concerns,
            pattern_flagged=bool(report.pattern_flags),
        )
        assert routing.route_report(facts, rules, queues.values()).queue == queues[report.queue_id]
        if report.category in routing.SERIOUS_CATEGORIES:
            assert queues[report.queue_id] == "DPS"


def test_stats_show_the_review_findings(app):
    stats = pytest.importorskip("portal.oversight.stats")
    _seed(app, reports=400)
    with app.app_context():
        figures = stats.compute(db.session, today=NOW.date())
    findings = figures["findings"]
    rate = {c: findings["by_category"][c]["case_to_answer_rate"] for c in ("discrimination", "sexual-misconduct")}
    assert rate["discrimination"] < rate["sexual-misconduct"] < findings["all"]["case_to_answer_rate"]
    groups = figures["disproportionality"]["allegations"]
    assert groups["Black"]["relative_rate"] > groups["Asian"]["relative_rate"] > 1.0
    assert 1.6 <= groups["Black"]["relative_rate"] <= 2.0 and 1.35 <= groups["Asian"]["relative_rate"] <= 1.75
    repeat = figures["repeat_subjects"]
    assert 0.14 <= repeat["share_with_2_or_more"] <= 0.26 and repeat["dismissal_rate_among_repeat"] < 0.01
    timeliness = figures["timeliness"]
    assert 300 <= timeliness["mean_days_to_finalise"] <= 500 and timeliness["open_over_1_year"] > 0


def test_seed_command(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["portal", "seed", "--reports", "50", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert re.search(r"Seeded 50 cases \(CR-\d{4}-\d{6} to CR-\d{4}-\d{6}; \d+ open\)", result.output)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Report).where(Report.source == "seed")) == 50
    again = runner.invoke(args=["portal", "seed", "--reports", "50"])
    assert again.exit_code != 0 and "not empty" in again.output
    for bad in (["--reports", "0"], ["--reports", "10", "--now", "yesterday"]):
        result = runner.invoke(args=["portal", "seed", *bad])
        assert result.exit_code != 0 and "Error" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Report)) == 50


def test_a_failed_seeding_leaves_nothing_behind(app, monkeypatch):
    def broken(task):
        raise RuntimeError("disk full")

    monkeypatch.setattr(rows, "seal_chunk", broken)
    with pytest.raises(RuntimeError):
        _seed(app, reports=50)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Report)) == 0
        assert db.session.scalar(select(func.count()).select_from(WorkforceMember)) == 0
        assert db.session.scalar(select(func.count()).select_from(CaseEvent)) == 0
