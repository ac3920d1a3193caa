"""oversight.trend_rollups: the running totals behind the quarterly trends and the end-to-end fairness figures stay
equal to the cases, whatever changes them (cases, the directory), on SQLite and PostgreSQL.

Each check compares the keys `trends`, `end_to_end` and `gross_misconduct_outcomes` worked out from the totals the
triggers keep (`stats.compute`, all time, no command) with the same keys worked out from the cases
(`use_rollups=False`), asserts the totals were trusted throughout (never rebuilt in between, or the comparison
would prove nothing), and that what the triggers kept equals a fresh rebuild.
"""

from __future__ import annotations

import importlib.util
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update

from portal.oversight import definitions, rollups, stats, trend_rollups
from portal.oversight.figures_models import (
    FiguresGroupCount,
    FiguresQuarterCase,
    FiguresQuarterDay,
    FiguresSubjectQuarter,
)
from portal.storage.models import Report, WorkforceMember, db
from tests.factories import add_case, person

TODAY = date(2025, 6, 30)
NEW_KEYS = ("end_to_end", "trends", "gross_misconduct_outcomes")
LEDGERS = {
    FiguresQuarterCase: trend_rollups.CASE_KEYS,
    FiguresQuarterDay: ("quarter", "days"),
    FiguresGroupCount: trend_rollups.GROUP_KEYS,
}


def _ledger(model, keys, values) -> dict:
    summed: dict = {}
    for row in db.session.execute(select(model)).scalars():
        key = tuple(getattr(row, name) for name in keys)
        old = summed.get(key, (0,) * len(values))
        summed[key] = tuple(a + getattr(row, name) for a, name in zip(old, values, strict=True))
    return {key: value for key, value in summed.items() if any(value)}


def maintained() -> dict:
    """What the new totals add up to (ledgers summed; people with no case left out)."""
    kept = {
        model.__tablename__: _ledger(model, keys, trend_rollups.GROUP_VALUES if model is FiguresGroupCount else ("n",))
        for model, keys in LEDGERS.items()
    }
    s = FiguresSubjectQuarter
    columns = [c.name for c in s.__table__.columns]
    kept["subjects"] = {
        (row.kind, row.key, row.quarter): tuple(getattr(row, c) for c in columns)
        for row in db.session.execute(select(s)).scalars()
        if row.cases
    }
    return kept


def check() -> dict:
    assert rollups.is_valid(db.session), "the totals must have been kept, not rebuilt"
    from_totals = stats.compute(db.session, today=TODAY)
    assert rollups.is_valid(db.session)
    from_cases = stats.compute(db.session, today=TODAY, use_rollups=False)
    for key in NEW_KEYS:
        assert from_totals[key] == from_cases[key], key
    assert from_totals == from_cases
    kept = maintained()
    rollups.rebuild(db.session)
    assert maintained() == kept
    db.session.commit()
    return from_totals


def member(code: str, ethnicity: str, command: str = "CE") -> WorkforceMember:
    found = WorkforceMember(
        staff_number_index=person(code), command=command, rank_band="constable", ethnicity=ethnicity
    )
    db.session.add(found)
    return found


def step(figures: dict, name: str, group: str) -> dict:
    return figures["end_to_end"]["steps"][name][group]


def quarter(figures: dict, label: str) -> dict:
    return next(q for q in figures["trends"]["quarters"] if q["quarter"] == label)


def test_the_trend_totals_follow_cases_and_the_directory(app):
    with app.app_context():
        assert rollups.is_valid(db.session)
        member("w1", "White")
        member("w2", "White")
        member("b1", "Black", "NA")
        db.session.commit()
        upheld = dict(state="resolved", finding="case-to-answer")
        # Two cases about w1 in 2024 Q1 (one a gross-misconduct dismissal), one about w2 and one about b1 in Q2
        add_case(received=datetime(2024, 1, 5), subject=person("w1"), finalised=datetime(2024, 2, 4), **upheld)
        gross = add_case(
            received=datetime(2024, 2, 5),
            subject=person("w1"),
            finalised=datetime(2024, 3, 6),
            severity="gross-misconduct",
            sanction="dismissal",
            category="sexual-misconduct",
            **upheld,
        )
        add_case(received=datetime(2024, 4, 2), subject=person("w2"), finalised=datetime(2024, 4, 12), **upheld)
        b1 = add_case(
            received=datetime(2024, 5, 2),
            subject=person("b1"),
            finalised=datetime(2024, 5, 22),
            sanction="written-warning",
            **upheld,
        )
        add_case(received=datetime(2024, 5, 3), subject=None)  # no subject
        add_case(received=datetime(2024, 6, 3), subject=person("x"))  # not in the directory
        db.session.commit()
        figures = check()
        # Worked out by hand
        q1 = quarter(figures, "2024-Q1")
        assert q1["cases"] == 2 and q1["repeat_subjects"]["with_2_or_more_cases"] == 1
        assert q1["repeat_subjects"]["dismissed_among_repeat"] == 1
        assert q1["timeliness"]["median_days_to_finalise"] == 30.0
        assert quarter(figures, "2024-Q2")["repeat_subjects"]["subjects"] == 3  # w2, b1, x
        assert step(figures, "case_to_answer", "White")["count"] == 3
        dismissal = step(figures, "dismissal", "White")
        assert [dismissal[k] for k in ("count", "out_of", "people", "people_out_of")] == [1, 3, 1, 2]
        assert step(figures, "written_warning_or_more", "Black")["count"] == 1
        outcomes = figures["gross_misconduct_outcomes"]["by_year"]["2024"]["by_category"]["sexual-misconduct"]
        assert outcomes == {"gross_misconduct_found": 1, "dismissed": 1}

        # Cases changed: the outcome reversed, a case moved to another quarter and another person, one deleted
        gross.finding, gross.sanction = "no-case-to-answer", None
        db.session.commit()
        assert quarter(check(), "2024-Q1")["repeat_subjects"]["dismissed_among_repeat"] == 0
        db.session.execute(update(Report).where(Report.id == b1.id).values(received_at=datetime(2023, 12, 30)))
        db.session.commit()
        assert quarter(check(), "2023-Q4")["cases"] == 1
        db.session.execute(update(Report).where(Report.id == b1.id).values(subject_staff_index=person("w2")))
        db.session.commit()
        assert step(check(), "written_warning_or_more", "Black")["count"] == 0
        reopened = "UPDATE reports SET finalised_at = NULL, state = 'investigation' WHERE received_at < '2024-02-01'"
        db.session.execute(text(reopened))
        db.session.commit()
        check()

        # The directory: a new member who is already a subject, a member changed, a member removed
        member("x", "Asian", "NA")
        db.session.commit()
        assert step(check(), "allegation", "Asian")["count"] == 1
        db.session.execute(
            update(WorkforceMember).where(WorkforceMember.ethnicity == "White").values(ethnicity="Mixed")
        )
        db.session.commit()
        assert step(check(), "case_to_answer", "Mixed")["count"] >= 1
        db.session.execute(delete(WorkforceMember).where(WorkforceMember.command == "CE"))
        db.session.commit()
        assert step(check(), "case_to_answer", "Mixed")["count"] == 0

        db.session.execute(delete(Report).where(Report.subject_staff_index == person("x")))
        db.session.commit()
        check()
        db.session.execute(delete(Report))
        db.session.commit()
        check()
        assert maintained() == dict.fromkeys(
            ("figures_quarter_cases", "figures_quarter_days", "figures_group_counts", "subjects"), {}
        )


def test_each_quarters_median_and_mean_are_worked_out_in_the_database_as_from_the_cases(app):
    """trend_rollups.day_rows sums each quarter's histogram up in SQL (running counts over the days): the middle
    position(s) fall in one bucket or two, in the first bucket or the last, with an odd or an even count."""
    resolved = dict(state="resolved", finding="no-case-to-answer")
    quarters = {
        "2023-Q1": [10, 10, 20, 40],  # even: the middle two in different buckets, (10 + 20) / 2
        "2023-Q2": [5, 7, 7],  # odd: the middle one in the last bucket
        "2023-Q3": [3, 3, 3, 3, 90],  # both middle positions in the first bucket
        "2023-Q4": [61],  # one case
    }
    starts = {"2023-Q1": datetime(2023, 1, 2), "2023-Q2": datetime(2023, 4, 3), "2023-Q3": datetime(2023, 7, 3)}
    starts["2023-Q4"] = datetime(2023, 10, 2)
    with app.app_context():
        for label, days in quarters.items():
            for number in days:
                received = starts[label]
                add_case(received=received, finalised=received + timedelta(days=number), **resolved)
        add_case(received=datetime(2023, 5, 1), state="investigation")  # open: in no histogram
        db.session.commit()
        figures = check()  # the totals against the cases (the histogram in Python)
        expected = {
            "2023-Q1": (15.0, 20.0),
            "2023-Q2": (7.0, 19 / 3),
            "2023-Q3": (3.0, 102 / 5),
            "2023-Q4": (61.0, 61.0),
        }
        for label, (median, mean) in expected.items():
            timeliness = quarter(figures, label)["timeliness"]
            assert timeliness["median_days_to_finalise"] == median, label
            assert timeliness["mean_days_to_finalise"] == pytest.approx(mean), label
            assert timeliness["finalised_with_dates"] == len(quarters[label])
        assert len(trend_rollups.day_rows(db.session)) == 4  # one row per quarter, not per (quarter, days)


def test_the_group_ledger_is_folded_back_when_it_grows(app, monkeypatch):
    monkeypatch.setattr(rollups, "COMPACT_MARGIN", 5)
    with app.app_context():
        member("w1", "White")
        report = add_case(received=datetime(2024, 1, 1), subject=person("w1"))
        db.session.commit()
        for number in range(20):  # every change moves the person's contributions: -1 and +1 rows
            report.state, report.finding = ("resolved", "case-to-answer") if number % 2 else ("investigation", None)
            db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(FiguresGroupCount)) > 20
        before = maintained()
        check()  # a reader adds them up, and folds them back
        assert maintained() == before
        assert db.session.scalar(select(func.count()).select_from(FiguresGroupCount)) <= 4


def test_the_triggers_spell_quarters_days_and_final_states_as_the_figures_do():
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0021_trend_rollups.py"
    spec = importlib.util.spec_from_file_location("migration_0021", path)
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    for dialect in ("sqlite", "postgresql"):
        assert migration.QUARTER[dialect].format(r="reports") == definitions.QUARTER_SQL[dialect].format(r="reports.")
        assert migration.DAYS[dialect].format(r="reports") == definitions.days_sql(dialect, "reports.")
    assert migration.FINAL_STATES == definitions.FINAL_STATES_SQL
    assert migration.LOCK_KEY == rollups.LOCK_KEY
    assert migration.TALLIES == trend_rollups.TALLIES
