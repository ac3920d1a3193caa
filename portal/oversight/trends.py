"""Fairness end to end, the headline figures quarter by quarter, and gross misconduct by category and year: the
keys `end_to_end`, `trends` and `gross_misconduct_outcomes` of `flask portal stats --json` (docs/SPEC.md).

Grouped statements over the cases of the period (portal.oversight.definitions.received_in), clear metadata only,
whatever the number of cases (the first two are one pass on PostgreSQL, with grouping sets):

- by quarter received, category and finding: cases, finalised, upheld, gross misconduct found and dismissed;
- by quarter received and days to finalise: the histogram that gives each quarter's mean and exact median;
- by person and quarter (the subject key of portal.oversight.stats: the staff number's blind index, else the
  name's), then grouped by what the directory says of the person, per quarter and over the whole period: repeat
  subjects, and the people and cases behind each step of the end-to-end measure.

Each quarter's figures are the headline figures over the cases received in that quarter, defined as for a
period (a quarter at either end of a period is cut to the period). The steps of the end-to-end measure, by the
subject's ethnicity group against the baseline group ("White"), each with Katz's 95% interval
(portal.oversight.rates.relative_rate_interval):

- allegation: people with a case / the group's headcount (as `disproportionality.allegations`);
- case to answer: upheld cases / finalised cases (as `findings_by_ethnicity`);
- gross misconduct found, a sanction of a written warning or more, dismissal: such cases / upheld cases.

Every entry carries the people behind its two counts (`people`, `people_out_of`), which is what the dashboard's
tables suppress small groups by (portal.oversight.tables); the JSON itself, like the rest of `stats --json`, is not
suppressed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Integer, Row, and_, case, cast, func, null, or_, select, tuple_, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from portal.core.codes import ETHNICITY_GROUPS
from portal.core.routing import CATEGORIES
from portal.oversight import definitions as d
from portal.oversight import trend_rollups
from portal.oversight.definitions import BASELINE_GROUP
from portal.oversight.rates import median_of_histogram, rate, relative_rate_interval
from portal.storage.models import Report, WorkforceMember

# The steps, in order, with the counts (case tallies) and people behind each: (numerator, denominator).
STEPS: dict[str, tuple[str, str]] = {
    "allegation": ("alleged", "headcount"),
    "case_to_answer": ("upheld", "finalised"),
    "gross_misconduct_found": ("gross", "upheld"),
    "written_warning_or_more": ("sanctioned", "upheld"),
    "dismissal": ("dismissed", "upheld"),
}
TALLIES = ("finalised", "upheld", "gross", "sanctioned", "dismissed")


@dataclass
class GroupCounts:
    """One ethnicity group's cases at each step (`cases`) and the people behind them (`people`), keyed by tally."""

    cases: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TALLIES, 0))
    people: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*TALLIES, "alleged"), 0))

    def add(self, row: Any) -> None:
        self.people["alleged"] += int(row.people or 0)
        for name in TALLIES:
            self.cases[name] += int(getattr(row, name) or 0)
            self.people[name] += int(getattr(row, f"people_{name}") or 0)


def steps(groups: dict[str, GroupCounts], headcounts: dict[str, int]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every step's figures for every ethnicity group (each group of ETHNICITY_GROUPS always present)."""
    names = list(ETHNICITY_GROUPS) + sorted((set(groups) | set(headcounts)) - set(ETHNICITY_GROUPS))
    empty = GroupCounts()

    def counts(group: str, tally: str) -> tuple[int, int]:
        """(cases, people) of a tally; headcount and people alleged are people both ways."""
        found = groups.get(group, empty)
        if tally == "headcount":
            return headcounts.get(group, 0), headcounts.get(group, 0)
        if tally == "alleged":
            return found.people["alleged"], found.people["alleged"]
        return found.cases[tally], found.people[tally]

    result: dict[str, dict[str, dict[str, Any]]] = {}
    for step, (top, bottom) in STEPS.items():
        base_count, base_out_of = counts(BASELINE_GROUP, top)[0], counts(BASELINE_GROUP, bottom)[0]
        base_rate = rate(base_count, base_out_of)
        result[step] = {}
        for group in names:
            (count, people), (out_of, people_out_of) = counts(group, top), counts(group, bottom)
            interval = relative_rate_interval(count, out_of, base_count, base_out_of)
            result[step][group] = {
                "count": count,
                "out_of": out_of,
                "people": people,
                "people_out_of": people_out_of,
                "rate": rate(count, out_of),
                "relative_rate": rate(rate(count, out_of), base_rate),
                "relative_rate_ci95": None if group == BASELINE_GROUP or interval is None else list(interval),
            }
    return result


# ------------------------------------------------------------------ the grouped statements


def _count(*conditions: ColumnElement[bool]) -> Any:
    return func.count().filter(and_(*conditions)) if conditions else func.count()


def case_quarters(session: Session, cases: list[ColumnElement[bool]], dialect: str) -> list[Row[Any]]:
    """Cases by quarter received, category and finding, with the outcome counts as filtered counts."""
    quarter = d.quarter_received(dialect)
    statement = (
        select(
            quarter.label("quarter"),
            Report.category,
            Report.finding,
            _count().label("cases"),
            _count(d.finalised()).label("finalised"),
            _count(d.gross_misconduct_found()).label("gross"),
            _count(d.dismissed()).label("dismissed"),
        )
        .where(*cases)
        .group_by(quarter, Report.category, Report.finding)
        .with_hint(Report, "INDEXED BY ix_reports_oversight", "sqlite")
    )
    return session.execute(statement).all()


def case_and_day_quarters(
    session: Session, cases: list[ColumnElement[bool]], dialect: str
) -> tuple[list[Any], list[Any]]:
    """case_quarters and day_quarters. PostgreSQL groups both ways in one pass over the index (grouping sets);
    SQLite has none, and runs the two statements."""
    if dialect != "postgresql":
        return case_quarters(session, cases, dialect), day_quarters(session, cases, dialect)
    quarter, days = d.quarter_received(dialect), d.days_to_finalise(dialect)
    statement = (
        select(
            quarter.label("quarter"),
            Report.category,
            Report.finding,
            days.label("days"),
            func.grouping(Report.category).label("by_days"),
            _count().label("cases"),
            _count(d.finalised()).label("finalised"),
            _count(d.gross_misconduct_found()).label("gross"),
            _count(d.dismissed()).label("dismissed"),
            _count(d.has_finalised_date()).label("n"),
        )
        .where(*cases)
        .group_by(func.grouping_sets(tuple_(quarter, Report.category, Report.finding), tuple_(quarter, days)))
    )
    rows = session.execute(statement).all()
    by_days = sorted((row for row in rows if row.by_days and row.n), key=lambda row: (row.quarter, row.days))
    return [row for row in rows if not row.by_days], by_days


def day_quarters(session: Session, cases: list[ColumnElement[bool]], dialect: str) -> list[Row[Any]]:
    """Finalised cases with a date by quarter received and days to finalise, in order of days."""
    quarter, days = d.quarter_received(dialect), d.days_to_finalise(dialect)
    statement = (
        select(quarter.label("quarter"), days.label("days"), func.count().label("n"))
        .where(*cases, d.has_finalised_date())
        .group_by(quarter, days)
        .order_by(quarter, days)
    )
    return session.execute(statement).all()


def _people(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def people_quarters(
    session: Session, cases: list[ColumnElement[bool]], dialect: str
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """Per person and quarter, then grouped by the directory's ethnicity group and command: (rows per quarter,
    rows over the whole period). One pass over the cases; the per-person rows are read twice."""
    staff = Report.subject_staff_index
    name = case((staff.is_(None), Report.subject_name_index))
    quarter = d.quarter_received(dialect)
    tallies = {
        "finalised": d.finalised(),
        "upheld": d.upheld(),
        "gross": d.gross_misconduct_found(),
        "sanctioned": d.written_warning_or_more(),
        "dismissed": d.dismissed(),
    }
    person = (
        select(
            staff.label("staff"),
            quarter.label("quarter"),
            func.count().label("cases"),
            _count(Report.sanction == d.DISMISSAL).label("any_dismissal"),
            *(_count(condition).label(tally) for tally, condition in tallies.items()),
        )
        .where(*cases, or_(staff.is_not(None), Report.subject_name_index.is_not(None)))
        .group_by(staff, name, quarter)
        .cte("person_quarters")
    )
    member = WorkforceMember

    def grouped(source: Any, *keys: Any) -> Any:
        return select(
            *keys,
            member.ethnicity,
            member.command.label("member_command"),
            func.count().label("people"),
            _people(source.c.cases >= 2).label("repeat"),
            _people(and_(source.c.cases >= 2, source.c.any_dismissal > 0)).label("repeat_dismissed"),
            *(func.sum(source.c[tally]).label(tally) for tally in TALLIES),
            *(_people(source.c[tally] > 0).label(f"people_{tally}") for tally in TALLIES),
        )

    by_quarter = (
        grouped(person, person.c.quarter)
        .select_from(person)
        .outerjoin(member, member.staff_number_index == person.c.staff)
        .group_by(person.c.quarter, member.ethnicity, member.command)
    )
    per_member = (
        select(
            person.c.staff,
            func.sum(person.c.cases).label("cases"),
            func.sum(person.c.any_dismissal).label("any_dismissal"),
            *(func.sum(person.c[tally]).label(tally) for tally in TALLIES),
        )
        .where(person.c.staff.is_not(None))
        .group_by(person.c.staff)
        .subquery()
    )
    over_period = (
        grouped(per_member, cast(null(), Integer).label("quarter"))
        .select_from(per_member)
        .join(member, member.staff_number_index == per_member.c.staff)
        .group_by(member.ethnicity, member.command)
    )
    # One statement, so that the per-person grouping (the costly part) is worked out once for both
    rows = session.execute(union_all(by_quarter, over_period)).all()
    return [row for row in rows if row.quarter is not None], [row for row in rows if row.quarter is None]


# ------------------------------------------------------------------ shaped as figures


@dataclass
class Quarter:
    """Everything one quarter's figures add up."""

    cases: int = 0
    finalised: int = 0
    findings: dict[str, int] = field(default_factory=dict)
    categories: dict[str, list[int]] = field(default_factory=dict)  # finalised, upheld
    dated: int = 0  # finalised with a date
    days_total: int = 0  # their days to finalise, added up
    median_days: float = 0.0
    subjects: int = 0
    repeat: int = 0
    repeat_dismissed: int = 0
    groups: dict[str, GroupCounts] = field(default_factory=dict)


def _day_histograms(rows: list[Any]) -> list[tuple[int, int, int, float]]:
    """(quarter, dated, days added up, median) from histogram rows (quarter, days, n) in order of both."""
    by_quarter: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for row in rows:
        by_quarter[row.quarter].append((int(row.days), int(row.n)))
    return [
        (number, sum(n for _, n in pairs), sum(days * n for days, n in pairs), float(median_of_histogram(pairs)))
        for number, pairs in by_quarter.items()
    ]


def _day_summaries(rows: list[Any]) -> list[tuple[int, int, int, float]]:
    """The same from the running totals' summaries (portal.oversight.trend_rollups.day_rows)."""
    return [(row.quarter, int(row.dated), int(row.days_total), (row.lower + row.upper) / 2) for row in rows]


def _fold_groups(rows: list[Row[Any]], command: str | None, into: Any) -> None:
    """Add rows of people by ethnicity into GroupCounts (`into(row)` picks the dict), as stats' SubjectTotals does:
    people not in the directory count nowhere; with a command, only members of it."""
    for row in rows:
        if row.ethnicity is None or (command is not None and row.member_command != command):
            continue
        into(row).setdefault(row.ethnicity, GroupCounts()).add(row)


def compute(
    session: Session,
    cases: list[ColumnElement[bool]],
    dialect: str,
    period: tuple[date, date],
    command: str | None,
    headcounts: dict[str, int],
    from_totals: bool = False,
) -> dict[str, Any]:
    """The keys `end_to_end`, `trends` and `gross_misconduct_outcomes` over the cases of the period (first and
    last day), about staff of `command` (None: every command), against the directory's `headcounts`.
    `from_totals`: every case, read from the running totals (portal.oversight.trend_rollups; the caller made sure
    they are trusted) instead of the grouped statements: the same rows."""
    first, last = period
    quarters: dict[int, Quarter] = defaultdict(Quarter)
    years: dict[int, dict[str, list[int]]] = defaultdict(dict)
    if from_totals:
        case_rows, day_rows = trend_rollups.case_rows(session), _day_summaries(trend_rollups.day_rows(session))
        by_quarter, over_period = trend_rollups.group_rows(session)
    else:
        case_rows, histogram = case_and_day_quarters(session, cases, dialect)
        day_rows = _day_histograms(histogram)
        by_quarter, over_period = people_quarters(session, cases, dialect)
    for row in case_rows:
        q = quarters[row.quarter]
        q.cases += row.cases
        q.finalised += row.finalised
        if row.finding is not None:
            q.findings[row.finding] = q.findings.get(row.finding, 0) + row.finalised
        category = q.categories.setdefault(row.category, [0, 0])
        category[0] += row.finalised
        category[1] += row.finalised if row.finding == d.UPHELD_FINDING else 0
        outcome = years[row.quarter // 4].setdefault(row.category, [0, 0])
        outcome[0] += row.gross
        outcome[1] += row.dismissed
    for number, dated, days_total, median in day_rows:
        q = quarters[number]
        q.dated, q.days_total, q.median_days = dated, days_total, median
    for row in by_quarter:
        q = quarters[row.quarter]
        q.subjects += int(row.people)
        q.repeat += int(row.repeat or 0)
        q.repeat_dismissed += int(row.repeat_dismissed or 0)
    _fold_groups(by_quarter, command, lambda row: quarters[row.quarter].groups)
    whole: dict[str, GroupCounts] = {}
    _fold_groups(over_period, command, lambda _row: whole)
    numbers = range(min([d.quarter_of(first), *quarters]), max([d.quarter_of(last), *quarters]) + 1)
    return {
        "end_to_end": {"baseline_group": BASELINE_GROUP, "steps": steps(whole, headcounts)},
        "trends": {"quarters": [_quarter(n, quarters.get(n, Quarter()), headcounts, first, last) for n in numbers]},
        "gross_misconduct_outcomes": _outcomes(years, range(first.year, max(last.year, *years, first.year) + 1)),
    }


def _quarter(number: int, q: Quarter, headcounts: dict[str, int], first: date, last: date) -> dict[str, Any]:
    start, end = d.quarter_bounds(number)
    upheld = q.findings.get(d.UPHELD_FINDING, 0)
    return {
        "quarter": d.quarter_label(number),
        "from": max(start, first).isoformat(),
        "to": min(end, last).isoformat(),
        "cases": q.cases,
        "timeliness": {
            "finalised": q.finalised,
            "open": q.cases - q.finalised,
            "finalised_with_dates": q.dated,
            "mean_days_to_finalise": rate(q.days_total, q.dated),
            "median_days_to_finalise": q.median_days,
        },
        "findings": {
            "all": {
                "finalised": q.finalised,
                "case_to_answer_rate": rate(upheld, q.finalised),
                "no_case_to_answer_rate": rate(q.findings.get("no-case-to-answer", 0), q.finalised),
            },
            "by_category": {
                code: {"finalised": done, "case_to_answer_rate": rate(yes, done)}
                for code in list(CATEGORIES) + sorted(set(q.categories) - set(CATEGORIES))
                for done, yes in [q.categories.get(code, [0, 0])]
            },
        },
        "repeat_subjects": repeat_subjects(q.subjects, q.repeat, q.repeat_dismissed),
        "relative_rates": steps(q.groups, headcounts),
    }


def repeat_subjects(subjects: int, repeat: int, dismissed: int) -> dict[str, Any]:
    """The repeat-subjects figures (portal.oversight.stats' definitions) from their three counts."""
    return {
        "subjects": subjects,
        "with_2_or_more_cases": repeat,
        "share_with_2_or_more": rate(repeat, subjects),
        "dismissed_among_repeat": dismissed,
        "dismissal_rate_among_repeat": rate(dismissed, repeat),
    }


def _outcomes(years: dict[int, dict[str, list[int]]], span: range) -> dict[str, Any]:
    codes = list(CATEGORIES) + sorted({code for year in years.values() for code in year} - set(CATEGORIES))

    def entry(gross: int, dismissed: int) -> dict[str, int]:
        return {"gross_misconduct_found": gross, "dismissed": dismissed}

    by_year = {}
    for year in span:
        found = years.get(year, {})
        by_year[str(year)] = {
            "all": entry(sum(v[0] for v in found.values()), sum(v[1] for v in found.values())),
            "by_category": {code: entry(*found.get(code, [0, 0])) for code in codes},
        }
    return {
        "by_year": by_year,
        "by_category": {
            code: entry(
                sum(year.get(code, [0, 0])[0] for year in years.values()),
                sum(year.get(code, [0, 0])[1] for year in years.values()),
            )
            for code in codes
        },
    }


__all__ = ["STEPS", "GroupCounts", "compute", "steps"]
