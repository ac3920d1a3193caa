"""The oversight figures of shared/SPEC.md (`flask portal stats --json`), from clear metadata only.

`compute(session, ...)` runs a handful of SQL aggregates over the reports and workforce tables, or, for all
time without a command, over the running totals the database keeps of them (portal.rollups: the same sums,
kept on every write): no report is loaded as an object and nothing is ever decrypted (no key is needed or
used). Every figure is over the *cases received in the period*, whenever they were finalised.

Definitions (SPEC "Definitions", with the choices it leaves open):
- A case is a report that is not held until corroborated (`held` reports are not cases yet and count
  nowhere). Imported legacy cases, demo and seeded cases count like any other.
- The period selects by the date received (the UTC date of `received_at`), both ends inclusive; without
  `date_from`/`date_to` it is all time, and `period` shows the earliest date received (today when there
  are no cases) and today (or the latest date received, if later).
- `command` restricts cases to `subject_command == command`, and workforce headcounts to members whose
  directory command is `command`.
- Finalised: `finalised_at` set (imported `finalised_on`; set by the portal at resolve/close) or state
  `resolved`/`closed`. Open: every other case. `open_over_1_year`: open cases received more than 365 days
  before `today` (received date < today - 365 days).
- Days to finalise = finalised date minus received date (dates, not times). Mean, median, the share over
  two years (> 730 days) and the buckets are over finalised cases that have a finalisation date: all of
  them in practice (a case can only reach resolved/closed through portal.casework, which stamps the
  date); `finalised_with_dates` says how many. The median is exact: the middle of the days-to-finalise
  histogram (one row per distinct day count) on both databases.
- Rates are fractions in [0, 1]; relative rates are ratios. Any rate or ratio whose denominator is zero
  is 0.0, and so are the mean and median when nothing is finalised. Counts are ints, rates floats.
- Findings rates divide by the finalised cases of the group (all, or one category).
- Repeat subjects: the subject key of a case is the blind index of the staff number, else of the name;
  cases with neither are not about a known subject. `subjects` counts distinct keys, `with_2_or_more_cases`
  those with two or more cases in the period, `dismissed_among_repeat` those of them with at least one
  case (in the period) sanctioned `dismissal`.
- Disproportionality uses the current workforce directory: a case's subject is a member when its staff
  number's blind index is the member's. `people_with_allegations` of a group = distinct members of that
  ethnicity group subject to at least one case in the period; `headcount` = members of the group; with
  `command`, both count only members in that command (so a rate stays a fraction of its headcount).
  Reg 13: distinct members who are probationers (per the directory) subject to a case marked reg13, over
  the group's probationer headcount. `relative_rate` = the group's rate / the baseline ("White") rate.
  Every group of ETHNICITY_GROUPS is always present, with zeros when it has nobody.
- Gross misconduct: `assessed` = cases with severity gross-misconduct; `dismissed` = those with sanction
  dismissal; `dismissal_rate` = dismissed / assessed.

Extra keys (beyond the SPEC schema), for the dashboards:
- top level: `cases` (int, cases in the period), `command` (the code or null), `today` (YYYY-MM-DD),
  `states` ({state: int} for every state code), `cases_by_command` ({command code or "unknown": int}),
  `cases_by_source` ({"portal"/"import"/...: int}).
- `period.all_time` (bool): neither end was given.
- `timeliness.finalised_with_dates` (int) and `timeliness.days_to_finalise_buckets` ({"0-90", "91-180",
  "181-365", "366-730", ">730": int} over finalised cases with dates; the 0-90 bucket takes any negative
  day count from bad legacy data).
- `findings.all.not_investigated_rate` (float), `findings.all.with_finding` (int, finalised cases with a
  finding); `findings.by_category.<c>` also has `cases` (int), `no_case_to_answer_rate` and
  `not_investigated_rate` (floats). Every category code of portal.routing.CATEGORIES is present (zeros
  when it has no case), plus any other code found in the data.
- `disproportionality.<measure>.<group>.relative_rate_ci95`: [low, high], the 95% confidence interval of
  the relative rate by the Katz log method (SE of ln RR = sqrt(1/a - 1/n1 + 1/b - 1/n0)); null for the
  baseline group and whenever it is undefined (no people in the group or in the baseline, or a zero
  headcount). `disproportionality.cases_linked_to_workforce` (int): cases in the period whose staff number
  is in the directory, and `disproportionality.cases_not_linked` (int): the others (coverage of the
  measure).
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from . import rollups, workflow
from .importers import ETHNICITY_GROUPS
from .models import Report, WorkforceMember, utcnow
from .routing import CATEGORIES

BASELINE_GROUP = "White"
OVER_TWO_YEARS_DAYS = 730
OPEN_OVER_DAYS = 365
BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("0-90", 90),
    ("91-180", 180),
    ("181-365", 365),
    ("366-730", 730),
    (">730", None),
)
Z_95 = 1.959963984540054
HALFWAY = bytes([0x80])  # the middle of the blind indexes' range (32 bytes; every one starting 0x80 or above is >=)


def _rate(numerator: int | float, denominator: int | float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def _int(value: Any) -> int:
    return int(value or 0)


def days_expression(dialect: str) -> ColumnElement[int]:
    """Finalised date minus received date, in whole days, in SQL."""
    if dialect == "postgresql":
        return type_coerce(cast(Report.finalised_at, Date) - cast(Report.received_at, Date), Integer)

    # SQLite: the Julian day number of a date is floor(julianday + 0.5) for any time in that day (julianday's
    # whole numbers fall at noon), so one parse of each timestamp gives the days between the two dates; a
    # third faster at a million cases than julianday(date(...)), which parses each twice. The timestamp is cut
    # to milliseconds first: julianday rounds to the millisecond, and 23:59:59.9995 would round into the next day.
    # Constants as literals, not parameters: SQLite uses the index on this very expression
    # (ix_reports_days_to_finalise, migration 0008) only when the query spells it the same way.
    def day_number(column: Any) -> Any:
        cut = func.substr(column, literal_column("1"), literal_column("23"))
        return cast(func.julianday(cut) + literal_column("0.5"), Integer)

    return day_number(Report.finalised_at) - day_number(Report.received_at)


def finalised_condition() -> ColumnElement[bool]:
    """A case is finalised when it has a finalised date or is in a final state."""
    return or_(Report.finalised_at.is_not(None), Report.state.in_(workflow.FINAL_STATES))


def _median_of_histogram(pairs: list[tuple[int, int]]) -> float:
    """The median of values given as (value, how many) sorted by value; 0.0 when there are none."""
    total = sum(count for _, count in pairs)
    if total == 0:
        return 0.0
    wanted = (total - 1) // 2, total // 2  # the middle position(s), counting from 0
    found: list[int] = []
    seen = 0
    for value, count in pairs:
        for position in wanted:
            if seen <= position < seen + count:
                found.append(value)
        seen += count
        if len(found) == 2:
            break
    return (found[0] + found[1]) / 2


def _katz(people: int, headcount: int, base_people: int, base_headcount: int) -> list[float] | None:
    if not (people and headcount and base_people and base_headcount):
        return None
    ratio = (people / headcount) / (base_people / base_headcount)
    spread = math.sqrt(1 / people - 1 / headcount + 1 / base_people - 1 / base_headcount)
    return [math.exp(math.log(ratio) - Z_95 * spread), math.exp(math.log(ratio) + Z_95 * spread)]


def _groups(
    people: dict[str, int], headcounts: dict[str, int], people_key: str, headcount_key: str
) -> dict[str, dict[str, Any]]:
    names = list(ETHNICITY_GROUPS) + sorted((set(people) | set(headcounts)) - set(ETHNICITY_GROUPS))
    base_rate = _rate(people.get(BASELINE_GROUP, 0), headcounts.get(BASELINE_GROUP, 0))
    result: dict[str, dict[str, Any]] = {}
    for group in names:
        count, headcount = people.get(group, 0), headcounts.get(group, 0)
        rate = _rate(count, headcount)
        result[group] = {
            people_key: count,
            headcount_key: headcount,
            "rate": rate,
            "relative_rate": _rate(rate, base_rate),
            "relative_rate_ci95": None
            if group == BASELINE_GROUP
            else _katz(count, headcount, people.get(BASELINE_GROUP, 0), headcounts.get(BASELINE_GROUP, 0)),
        }
    return result


def compute(
    session: Session,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    command: str | None = None,
    today: date | None = None,
    use_rollups: bool = True,
) -> dict[str, Any]:
    """The oversight figures as one JSON-ready dict (shared/SPEC.md schema plus the extras above).

    All time without a command, the sums come from the running totals (portal.rollups; rebuilt first if they
    are not trusted, which writes in the caller's transaction), else from the cases. `use_rollups=False`
    always reads the cases: the same figures, which the tests compare."""
    today = today or utcnow().date()
    dialect = session.connection().dialect.name
    totals = use_rollups and date_from is None and date_to is None and command is None
    if totals:
        rollups.ensure(session)
    # "IS NOT true" rather than "IS false": the same for this NOT NULL column, but SQLite's planner (without
    # ANALYZE statistics) would otherwise walk ix_reports_held, i.e. nearly every row through an index.
    cases = [Report.held.is_not(True)]
    if date_from is not None:
        cases.append(Report.received_at >= datetime.combine(date_from, time.min))
    if date_to is not None:
        cases.append(Report.received_at < datetime.combine(date_to + timedelta(days=1), time.min))
    if command is not None:
        cases.append(Report.subject_command == command)

    finalised = finalised_condition()
    dated = Report.finalised_at.is_not(None)
    days = days_expression(dialect)
    open_cutoff = datetime.combine(today - timedelta(days=OPEN_OVER_DAYS), time.min)

    def flag(condition: ColumnElement[bool]) -> Any:
        return case((condition, 1), else_=0)

    if dialect == "postgresql":
        # Room for the hash tables of the per-subject pass (the directory, the name-only subjects) in memory,
        # and no JIT: compiling these statements cost more (0.1 s) than it saves on a few passes.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        session.execute(text("SET LOCAL jit = off"))

    # 1. One pass over ix_reports_oversight gives every count that is a sum over cases: grouped by the codes the
    # figures split by, which lead that index (so SQLite streams the groups in index order, no sort), with the
    # yes/no conditions as filtered counts (cheaper than more grouping keys). A few thousand groups however
    # many cases, folded in Python below.
    def counted(*conditions: ColumnElement[bool]) -> Any:
        return func.count().filter(and_(*conditions))

    gross = Report.severity == "gross-misconduct"
    dismissal_ = Report.sanction == "dismissal"
    reg13_ = Report.reg13.is_(True)
    dated_ = Report.finalised_at.is_not(None)
    total = finalised_count = open_old = with_finding = gm_assessed = gm_dismissed = 0
    findings_all = {"case-to-answer": 0, "no-case-to-answer": 0, "not-investigated": 0}
    category_counts: dict[str, list[int]] = {}  # cases, finalised, yes, no, not investigated
    states = dict.fromkeys(workflow.STATES, 0)
    by_command: dict[str, int] = {}
    by_source: dict[str, int] = {}
    reg13_counts = [0, 0, 0]  # cases, finalised, finalised and dismissed
    earliest = latest = None
    statement = (
        select(
            Report.category,
            Report.state,
            Report.subject_command,
            Report.source,
            Report.finding,
            func.count(),
            counted(dated_),
            counted(~dated_, Report.received_at < open_cutoff),
            counted(gross),
            counted(gross, dismissal_),
            counted(reg13_),
            counted(reg13_, dismissal_),
            counted(reg13_, dated_),
            counted(reg13_, dismissal_, dated_),
            func.min(Report.received_at),
            func.max(Report.received_at),
        )
        .where(*cases)
        .group_by(Report.category, Report.state, Report.subject_command, Report.source, Report.finding)
    )
    if dialect == "sqlite":  # without ANALYZE statistics SQLite may walk another index and read every row
        statement = statement.with_hint(Report, "INDEXED BY ix_reports_oversight", "sqlite")
    grouped = rollups.case_rows(session) if totals else session.execute(statement)
    for row in grouped:
        category, state, command_code, source, finding = row[:5]
        (
            count,
            with_date,
            old,
            n_gross,
            n_gross_dismissed,
            n_reg13,
            n_reg13_dismissed,
            reg13_dated,
            reg13_done_dismissed,
        ) = (_int(value) for value in row[5:14])
        first, last = row[14], row[15]
        total += count
        states[state] = states.get(state, 0) + count
        by_command[command_code or "unknown"] = by_command.get(command_code or "unknown", 0) + count
        by_source[source] = by_source.get(source, 0) + count
        earliest = first if earliest is None or (first is not None and first < earliest) else earliest
        latest = last if latest is None or (last is not None and last > latest) else latest
        gm_assessed += n_gross
        gm_dismissed += n_gross_dismissed
        reg13_counts[0] += n_reg13
        counts = category_counts.setdefault(category, [0, 0, 0, 0, 0])
        counts[0] += count
        # Finalised: a finalised date, or a final state (then every case of the group is finalised).
        final_state = state in workflow.FINAL_STATES
        done = count if final_state else with_date
        open_old += 0 if final_state else old
        finalised_count += done
        counts[1] += done
        reg13_counts[1] += n_reg13 if final_state else reg13_dated
        reg13_counts[2] += n_reg13_dismissed if final_state else reg13_done_dismissed
        if finding is not None:
            with_finding += done
        if finding in findings_all:
            findings_all[finding] += done
            counts[2 + list(findings_all).index(finding)] += done

    # 2. Days to finalise as a histogram (one row per distinct number of days: a few thousand at most, however
    # many cases): the sum, the share over two years, the buckets and the exact median all follow from it.
    if totals:  # what the running totals cannot hold: it moves with today, or is one index look-up
        open_old = rollups.open_over(session, open_cutoff)
        earliest, latest = rollups.received_range(session)
        histogram = rollups.day_rows(session)
    else:
        histogram = [
            (int(value), int(count))
            for value, count in session.execute(
                select(days, func.count())
                .where(*cases, dated)
                .group_by(days)
                .order_by(days)
                .with_hint(Report, "INDEXED BY ix_reports_days_to_finalise", "sqlite")
            )
        ]
    dated_count = sum(count for _, count in histogram)
    day_sum = sum(value * count for value, count in histogram)
    over_two_years = sum(count for value, count in histogram if value > OVER_TWO_YEARS_DAYS)
    buckets = dict.fromkeys((label for label, _ in BUCKETS), 0)
    for value, count in histogram:
        label = next(label for label, high in BUCKETS if high is None or value <= high)
        buckets[label] += count
    median = _median_of_histogram(histogram)

    by_category: dict[str, dict[str, Any]] = {}
    for code in list(CATEGORIES) + sorted(set(category_counts) - set(CATEGORIES)):
        cases_in, done, yes, no, not_inv = category_counts.get(code, [0, 0, 0, 0, 0])
        by_category[code] = {
            "cases": cases_in,
            "finalised": done,
            "case_to_answer_rate": _rate(yes, done),
            "no_case_to_answer_rate": _rate(no, done),
            "not_investigated_rate": _rate(not_inv, done),
        }

    # 3. Per subject, joined to the directory: repeat subjects, the people behind the disproportionality
    # measures and the findings by ethnicity. The subject key is the staff number's blind index, else the
    # name's. Two groupings, each in the order of ix_reports_subject_outcome (so each streams through the
    # index, no hash table of ~700,000 subjects): by staff number, then by name where no number was given.
    # A member of the directory is one subject at most.
    upheld = and_(finalised, Report.finding == "case-to-answer")

    def per_subject(key: Any, *where: ColumnElement[bool]) -> Any:
        return (
            select(
                Report.subject_staff_index.label("staff_index")
                if key is Report.subject_staff_index
                else literal(None, Report.subject_staff_index.type).label("staff_index"),
                func.count().label("cases"),
                counted(dismissal_).label("dismissed"),
                counted(reg13_).label("reg13"),
                counted(finalised).label("finalised"),
                counted(upheld).label("upheld"),
            )
            .where(*cases, *where)
            .group_by(key)
        )

    # Blind indexes are HMACs, spread evenly over their range: on PostgreSQL the staff-number grouping is cut in
    # two halves by the first byte, so that a parallel append groups them on two cores at once (each subject
    # falls in one half, so every count stays exact). SQLite runs one statement on one core: one range.
    halves = (
        [Report.subject_staff_index < HALFWAY, Report.subject_staff_index >= HALFWAY]
        if dialect == "postgresql"
        else [Report.subject_staff_index.is_not(None)]
    )
    subject = union_all(
        *(per_subject(Report.subject_staff_index, half) for half in halves),
        per_subject(
            Report.subject_name_index, Report.subject_staff_index.is_(None), Report.subject_name_index.is_not(None)
        ),
    ).subquery()
    member = WorkforceMember
    subjects = repeat_subjects = repeat_dismissed = linked_cases = 0
    people: dict[str, int] = {}
    reg13_people: dict[str, int] = {}
    outcomes: dict[str, list[int]] = {}  # finalised, case to answer, people, people with case to answer
    # Grouped by plain columns (a few hundred groups), so that PostgreSQL's estimate picks a hash aggregate.
    per_group = (
        rollups.subject_rows(session)
        if totals
        else session.execute(
            select(
                member.ethnicity,
                member.probationer,
                member.command,
                func.count(),
                func.sum(flag(subject.c.cases >= 2)),
                func.sum(flag(and_(subject.c.cases >= 2, subject.c.dismissed > 0))),
                func.sum(subject.c.cases),
                func.sum(flag(subject.c.reg13 > 0)),
                func.sum(subject.c.finalised),
                func.sum(subject.c.upheld),
                func.sum(flag(subject.c.finalised > 0)),
                func.sum(flag(subject.c.upheld > 0)),
            )
            .select_from(subject)
            .outerjoin(member, member.staff_number_index == subject.c.staff_index)
            .group_by(member.ethnicity, member.probationer, member.command)
        )
    )
    for row in per_group:
        group, probationer, member_command = row[0], bool(row[1]), row[2]
        n, two_or_more, two_dismissed, n_cases, n_reg13, n_done, n_upheld, p_done, p_upheld = (_int(v) for v in row[3:])
        subjects += n
        repeat_subjects += two_or_more
        repeat_dismissed += two_dismissed
        if group is None:  # not in the directory (or known by name only)
            continue
        linked_cases += n_cases
        if command is not None and member_command != command:
            continue
        people[group] = people.get(group, 0) + n
        if probationer:
            reg13_people[group] = reg13_people.get(group, 0) + n_reg13
        found = outcomes.setdefault(group, [0, 0, 0, 0])
        for position, value in enumerate((n_done, n_upheld, p_done, p_upheld)):
            found[position] += value

    # 4. The directory's headcounts.
    members = [WorkforceMember.command == command] if command is not None else []
    headcounts: dict[str, int] = {}
    probationers: dict[str, int] = {}
    for group, count, on_probation in session.execute(
        select(
            WorkforceMember.ethnicity,
            func.count(),
            func.sum(case((WorkforceMember.probationer.is_(True), 1), else_=0)),
        )
        .where(*members)
        .group_by(WorkforceMember.ethnicity)
    ):
        headcounts[group] = _int(count)
        probationers[group] = _int(on_probation)
    to_answer, no_case, not_investigated = findings_all.values()

    period_from = date_from or (earliest.date() if earliest is not None else today)
    period_to = date_to or max(today, latest.date() if latest is not None else today)
    return {
        "period": {
            "from": period_from.isoformat(),
            "to": period_to.isoformat(),
            "all_time": date_from is None and date_to is None,
        },
        "today": today.isoformat(),
        "command": command,
        "cases": total,
        "states": states,
        "cases_by_command": by_command,
        "cases_by_source": by_source,
        "timeliness": {
            "finalised": finalised_count,
            "finalised_with_dates": dated_count,
            "mean_days_to_finalise": _rate(day_sum, dated_count),
            "median_days_to_finalise": float(median),
            "share_finalised_over_2_years": _rate(over_two_years, dated_count),
            "open": total - finalised_count,
            "open_over_1_year": open_old,
            "days_to_finalise_buckets": buckets,
        },
        "findings": {
            "all": {
                "finalised": finalised_count,
                "with_finding": with_finding,
                "case_to_answer_rate": _rate(to_answer, finalised_count),
                "no_case_to_answer_rate": _rate(no_case, finalised_count),
                "not_investigated_rate": _rate(not_investigated, finalised_count),
            },
            "by_category": by_category,
        },
        "repeat_subjects": {
            "subjects": subjects,
            "with_2_or_more_cases": repeat_subjects,
            "share_with_2_or_more": _rate(repeat_subjects, subjects),
            "dismissed_among_repeat": repeat_dismissed,
            "dismissal_rate_among_repeat": _rate(repeat_dismissed, repeat_subjects),
        },
        "disproportionality": {
            "baseline_group": BASELINE_GROUP,
            "allegations": _groups(people, headcounts, "people_with_allegations", "headcount"),
            "reg13": _groups(reg13_people, probationers, "people", "probationer_headcount"),
            "cases_linked_to_workforce": linked_cases,
            "cases_not_linked": total - linked_cases,
        },
        "findings_by_ethnicity": {
            group: dict(
                zip(("finalised", "case_to_answer", "people", "people_with_case_to_answer"), values, strict=True)
            )
            for group, values in (
                (group, outcomes.get(group, [0, 0, 0, 0]))
                for group in list(ETHNICITY_GROUPS) + sorted(set(outcomes) - set(ETHNICITY_GROUPS))
            )
        },
        "regulation_13": dict(zip(("cases", "finalised", "dismissed"), reg13_counts, strict=True)),
        "gross_misconduct": {
            "assessed": gm_assessed,
            "dismissed": gm_dismissed,
            "dismissal_rate": _rate(gm_dismissed, gm_assessed),
        },
    }


__all__ = ["BASELINE_GROUP", "BUCKETS", "compute"]
