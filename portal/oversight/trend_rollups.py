"""Running totals of the quarterly trends and the end-to-end fairness figures (migration 0021), beside those of
portal.oversight.rollups (whose state row, lock, rebuild and folding they share).

- `figures_quarter_cases` and `figures_quarter_days`: ledgers of cases by quarter received (category, finding,
  outcome) and of finalised cases by quarter and days to finalise: what trends.case_quarters and
  trends.day_quarters add up, over every case.
- `figures_subject_quarters`: one row per person and quarter received, and per person over all time (quarter
  -1, ALL_TIME), with their tallies and what the directory says of them: trends.people_quarters' per-person rows.
- `figures_group_counts`: those rows added up by (quarter, ethnicity, command), a ledger kept by triggers on the
  per-person table, so that reading the groups never reads a row per person, and a directory change (an update
  of the person's rows) moves their contributions from one group to another.

The readers give rows shaped as trends' grouped statements give them over all cases, so trends.compute works
both the same way; tests/oversight/test_trend_rollups.py compares the two.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, delete, func, insert, literal, or_, select, union_all
from sqlalchemy.orm import Session

from portal.oversight import definitions as d
from portal.oversight import rollups
from portal.oversight.figures_models import (
    FiguresGroupCount,
    FiguresQuarterCase,
    FiguresQuarterDay,
    FiguresSubjectQuarter,
)
from portal.storage.models import Report, WorkforceMember

ALL_TIME = -1  # the quarter of a person's row over all time
TALLIES = ("finalised", "upheld", "gross", "sanctioned", "dismissed")
MODELS = (FiguresQuarterCase, FiguresQuarterDay, FiguresSubjectQuarter, FiguresGroupCount)
TABLES = ", ".join(model.__tablename__ for model in MODELS)
CASE_KEYS = ("quarter", "category", "case_to_answer", "no_case_to_answer", "done", "gross", "dismissed")
NO_CASE = "no-case-to-answer"
GROUP_KEYS = ("quarter", "ethnicity", "member_command")
GROUP_VALUES = ("people", "repeat", "repeat_dismissed", *TALLIES, *(f"people_{t}" for t in TALLIES))


def _flag(condition: Any) -> Any:
    return case((condition, True), else_=False)


def _count(condition: Any) -> Any:
    return func.count().filter(condition)


def _people(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def rebuild(session: Session, dialect: str) -> None:
    """Work these totals out afresh from the cases and the directory (portal.oversight.rollups.rebuild calls it,
    with the totals marked not to be trusted, so that no trigger adds to what this inserts)."""
    for model in MODELS:
        session.execute(delete(model))
    counted, quarter = d.is_case(), d.quarter_received(dialect)
    keys = (
        quarter,
        Report.category,
        _flag(Report.finding == d.UPHELD_FINDING),
        _flag(Report.finding == NO_CASE),
        _flag(d.finalised()),
        _flag(d.gross_misconduct_found()),
        _flag(d.dismissed()),
    )
    session.execute(
        insert(FiguresQuarterCase).from_select(
            [*CASE_KEYS, "n"], select(*keys, func.count()).where(counted).group_by(*keys)
        )
    )
    days = d.days_to_finalise(dialect)
    session.execute(
        insert(FiguresQuarterDay).from_select(
            ["quarter", "days", "n"],
            select(quarter, days, func.count()).where(counted, d.has_finalised_date()).group_by(quarter, days),
        )
    )
    staff = Report.subject_staff_index
    kind = case((staff.is_not(None), "s"), else_="n")
    key = func.coalesce(staff, Report.subject_name_index)
    tallies = (
        func.count(),
        _count(Report.sanction == d.DISMISSAL),
        _count(d.finalised()),
        _count(d.upheld()),
        _count(d.gross_misconduct_found()),
        _count(d.written_warning_or_more()),
        _count(d.dismissed()),
    )
    member = WorkforceMember
    subject = or_(staff.is_not(None), Report.subject_name_index.is_not(None))

    def people(period: Any) -> Any:
        return (
            select(kind, key, period, *tallies, func.min(member.ethnicity), func.min(member.command))
            .select_from(Report)
            .outerjoin(member, member.staff_number_index == staff)
            .where(counted, subject)
            .group_by(kind, key, period)
        )

    columns = ["kind", "key", "quarter", "cases", "any_dismissal", *TALLIES, "ethnicity", "member_command"]
    session.execute(
        insert(FiguresSubjectQuarter).from_select(columns, union_all(people(quarter), people(literal(ALL_TIME))))
    )
    s = FiguresSubjectQuarter
    sums = (
        _people(s.cases > 0),
        _people(s.cases >= 2),
        _people(and_(s.cases >= 2, s.any_dismissal > 0)),
        *(func.sum(s.__table__.c[t]) for t in TALLIES),
        *(_people(s.__table__.c[t] > 0) for t in TALLIES),
    )
    grouped = (s.quarter, s.ethnicity, s.member_command)
    session.execute(
        insert(FiguresGroupCount).from_select(
            [*GROUP_KEYS, *GROUP_VALUES], select(*grouped, *sums).where(s.cases > 0).group_by(*grouped)
        )
    )


def case_rows(session: Session) -> list[Any]:
    """As trends.case_quarters over every case: by quarter, category and finding, the counts of cases; of the
    findings, only the two the trends read are told apart (any other is None, which they do not count)."""
    c = FiguresQuarterCase
    finding = case((c.case_to_answer.is_(True), d.UPHELD_FINDING), (c.no_case_to_answer.is_(True), NO_CASE))
    rows = session.execute(
        select(
            c.quarter,
            c.category,
            finding.label("finding"),
            func.sum(c.n).label("cases"),
            func.coalesce(func.sum(c.n).filter(c.done.is_(True)), 0).label("finalised"),
            func.coalesce(func.sum(c.n).filter(c.gross.is_(True)), 0).label("gross"),
            func.coalesce(func.sum(c.n).filter(c.dismissed.is_(True)), 0).label("dismissed"),
            func.count().label("ledger_rows"),
        )
        .group_by(c.quarter, c.category, finding)
        .having(func.sum(c.n) != 0)
    ).all()
    # Each (quarter, category, finding) adds up at most 8 keys of the ledger (the three facts) per finding.
    rollups.maybe_compact(session, c, CASE_KEYS, sum(row.ledger_rows for row in rows), 8 * len(rows))
    return rows


def day_rows(session: Session) -> list[Any]:
    """As trends.day_quarters over every case, summed up per quarter in the database: (quarter, dated,
    days_total, lower, upper), where lower and upper are the days at the middle position(s) of the quarter's
    histogram, (dated - 1) // 2 and dated // 2 counting from 0, as portal.oversight.rates.median_of_histogram
    finds them. One row per quarter instead of one per (quarter, days): at a million cases, 37 rows instead of
    47,000 read into Python (0.2-0.3 s of `stats --json`). The tests hold both ways to the same figures."""
    q = FiguresQuarterDay
    histogram = (
        select(q.quarter, q.days, func.sum(q.n).label("n"), func.count().label("ledger_rows"))
        .group_by(q.quarter, q.days)
        .having(func.sum(q.n) != 0)
        .subquery()
    )
    ordered = histogram.c
    running = func.sum(ordered.n).over(partition_by=ordered.quarter, order_by=ordered.days)
    cumulative = (
        select(
            ordered.quarter,
            ordered.days,
            ordered.n,
            ordered.ledger_rows,
            running.label("upto"),
            func.sum(ordered.n).over(partition_by=ordered.quarter).label("dated"),
        )
    ).subquery()
    c = cumulative.c
    # The first bucket whose running count passes a middle position p holds it: upto > p, and for a whole
    # number upto, upto > (dated - 1) // 2 is 2 * upto > dated - 1 (and > dated // 2 is 2 * upto > dated).
    rows = session.execute(
        select(
            c.quarter,
            func.max(c.dated).label("dated"),
            func.sum(c.days * c.n).label("days_total"),
            func.min(case((2 * c.upto > c.dated - 1, c.days))).label("lower"),
            func.min(case((2 * c.upto > c.dated, c.days))).label("upper"),
            func.sum(c.ledger_rows).label("ledger_rows"),
            func.count().label("keys"),
        )
        .group_by(c.quarter)
        .order_by(c.quarter)
    ).all()
    ledger = sum(int(row.ledger_rows) for row in rows)
    rollups.maybe_compact(session, q, ("quarter", "days"), ledger, sum(int(row.keys) for row in rows))
    return rows


def group_rows(session: Session) -> tuple[list[Any], list[Any]]:
    """As trends.people_quarters over every case: (rows by quarter, rows over all time), by the directory's
    ethnicity group and command."""
    g = FiguresGroupCount
    column = g.__table__.c
    rows = session.execute(
        select(
            *(column[k] for k in GROUP_KEYS),
            *(func.sum(column[v]).label(v) for v in GROUP_VALUES),
            func.count().label("ledger_rows"),
        )
        .group_by(*(column[k] for k in GROUP_KEYS))
        .having(or_(*(func.sum(column[v]) != 0 for v in GROUP_VALUES)))
    ).all()
    rollups.maybe_compact(session, g, GROUP_KEYS, sum(row.ledger_rows for row in rows), len(rows), GROUP_VALUES)
    by_quarter = [row for row in rows if row.quarter != ALL_TIME]
    return by_quarter, [row for row in rows if row.quarter == ALL_TIME]


__all__ = ["ALL_TIME", "TABLES", "case_rows", "day_rows", "group_rows", "rebuild"]
