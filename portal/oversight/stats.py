"""The oversight figures of docs/SPEC.md (`flask portal stats --json`), from clear metadata only.

`compute(session, ...)` runs a handful of SQL aggregates over the reports and workforce tables, or, for all
time without a command, over the running totals the database keeps of them (portal.oversight.rollups: the same sums,
kept on every write): no report is loaded as an object and nothing is ever decrypted (no key is needed or
used). Every figure is over the *cases received in the period*, whenever they were finalised.

A case, finalised, open, upheld and days to finalise are portal.oversight.definitions' (one definition each);
both passes (live and running totals) yield its named rows, CaseGroup and SubjectGroup.

Definitions (SPEC "Definitions", with the choices it leaves open):
- A case, finalised, open and days to finalise: portal.oversight.definitions. Imported legacy cases, demo and
  seeded cases count like any other.
- The period selects by the date received (the UTC date of `received_at`), both ends inclusive; without
  `date_from`/`date_to` it is all time, and `period` shows the earliest date received (today when there
  are no cases) and today (or the latest date received, if later).
- `command` restricts cases to `subject_command == command`, and workforce headcounts to members whose
  directory command is `command`.
- `open_over_1_year`: open cases received more than 365 days before `today` (received date < today - 365 days).
- Mean, median, the share over
  two years (> 730 days) and the buckets are over finalised cases that have a finalisation date: all of
  them in practice (a case can only reach resolved/closed through portal.domain.casework, which stamps the
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
  `not_investigated_rate` (floats). Every category code of portal.core.routing.CATEGORIES is present (zeros
  when it has no case), plus any other code found in the data.
- `disproportionality.<measure>.<group>.relative_rate_ci95`: [low, high], the 95% confidence interval of
  the relative rate by the Katz log method (SE of ln RR = sqrt(1/a - 1/n1 + 1/b - 1/n0)); null for the
  baseline group and whenever it is undefined (no people in the group or in the baseline, or a zero
  headcount). `disproportionality.cases_linked_to_workforce` (int): cases in the period whose staff number
  is in the directory, and `disproportionality.cases_not_linked` (int): the others (coverage of the
  measure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, select, text, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from portal.core import workflow
from portal.core.codes import ETHNICITY_GROUPS
from portal.core.routing import CATEGORIES
from portal.oversight import definitions as d
from portal.oversight import rollups, trends
from portal.oversight.definitions import BASELINE_GROUP, CaseGroup, SubjectGroup
from portal.oversight.rates import median_of_histogram as _median_of_histogram
from portal.oversight.rates import rate as _rate
from portal.oversight.rates import relative_rate_interval
from portal.storage.models import Report, WorkforceMember, utcnow

OVER_TWO_YEARS_DAYS = 730
OPEN_OVER_DAYS = 365
BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("0-90", 90),
    ("91-180", 180),
    ("181-365", 365),
    ("366-730", 730),
    (">730", None),
)
FINDINGS = ("case-to-answer", "no-case-to-answer", "not-investigated")
HALFWAY = bytes([0x80])  # the middle of the blind indexes' range (32 bytes; every one starting 0x80 or above is >=)


def _int(value: Any) -> int:
    return int(value or 0)


def _groups(
    people: dict[str, int], headcounts: dict[str, int], people_key: str, headcount_key: str
) -> dict[str, dict[str, Any]]:
    names = list(ETHNICITY_GROUPS) + sorted((set(people) | set(headcounts)) - set(ETHNICITY_GROUPS))
    base_headcount = headcounts.get(BASELINE_GROUP, 0)
    base_rate = _rate(people.get(BASELINE_GROUP, 0), base_headcount)
    result: dict[str, dict[str, Any]] = {}
    for group in names:
        count, headcount = people.get(group, 0), headcounts.get(group, 0)
        rate = _rate(count, headcount)
        interval = relative_rate_interval(count, headcount, people.get(BASELINE_GROUP, 0), base_headcount)
        result[group] = {
            people_key: count,
            headcount_key: headcount,
            "rate": rate,
            "relative_rate": _rate(rate, base_rate),
            "relative_rate_ci95": None if group == BASELINE_GROUP or interval is None else list(interval),
        }
    return result


@dataclass
class CaseTotals:
    """The sums over cases, folded from CaseGroup rows."""

    cases: int = 0
    finalised: int = 0
    open_old: int = 0
    with_finding: int = 0
    gross: int = 0
    gross_dismissed: int = 0
    findings: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FINDINGS, 0))
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(workflow.STATES, 0))
    by_command: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    reg13: dict[str, int] = field(default_factory=lambda: {"cases": 0, "finalised": 0, "dismissed": 0})
    earliest: datetime | None = None
    latest: datetime | None = None

    def add(self, group: CaseGroup) -> None:
        count, done, final_state = group.cases, group.finalised, d.state_is_final(group.state)
        self.cases += count
        self.states[group.state] = self.states.get(group.state, 0) + count
        command = group.subject_command or "unknown"
        self.by_command[command] = self.by_command.get(command, 0) + count
        self.by_source[group.source] = self.by_source.get(group.source, 0) + count
        if group.first_received is not None and (self.earliest is None or group.first_received < self.earliest):
            self.earliest = group.first_received
        if group.last_received is not None and (self.latest is None or group.last_received > self.latest):
            self.latest = group.last_received
        self.gross += group.gross
        self.gross_dismissed += group.gross_dismissed
        self.open_old += 0 if final_state else group.open_old
        self.finalised += done
        self.reg13["cases"] += group.reg13
        self.reg13["finalised"] += group.reg13 if final_state else group.reg13_dated
        self.reg13["dismissed"] += group.reg13_dismissed if final_state else group.reg13_dated_dismissed
        category = self.by_category.setdefault(
            group.category, {"cases": 0, "finalised": 0, **dict.fromkeys(FINDINGS, 0)}
        )
        category["cases"] += count
        category["finalised"] += done
        if group.finding is not None:
            self.with_finding += done
        if group.finding in self.findings:
            self.findings[group.finding] += done
            category[group.finding] += done


def _case_groups(session: Session, cases: list[ColumnElement[bool]], open_cutoff: datetime) -> list[CaseGroup]:
    """One pass over ix_reports_oversight gives every count that is a sum over cases: grouped by the codes the
    figures split by, which lead that index (so SQLite streams the groups in index order, no sort), with the
    yes/no conditions as filtered counts (cheaper than more grouping keys). A few thousand groups however many
    cases."""

    def counted(*conditions: ColumnElement[bool]) -> Any:
        return func.count().filter(and_(*conditions))

    gross, dismissal, reg13, dated = (
        Report.severity == "gross-misconduct",
        Report.sanction == "dismissal",
        Report.reg13.is_(True),
        d.has_finalised_date(),
    )
    keys = (Report.category, Report.state, Report.subject_command, Report.source, Report.finding)
    statement = (
        select(
            *keys,
            func.count(),
            counted(dated),
            counted(~dated, Report.received_at < open_cutoff),
            counted(gross),
            counted(gross, dismissal),
            counted(reg13),
            counted(reg13, dismissal),
            counted(reg13, dated),
            counted(reg13, dismissal, dated),
            func.min(Report.received_at),
            func.max(Report.received_at),
        )
        .where(*cases)
        .group_by(*keys)
        # without ANALYZE statistics SQLite may walk another index and read every row
        .with_hint(Report, "INDEXED BY ix_reports_oversight", "sqlite")
    )
    return [CaseGroup(*row) for row in session.execute(statement)]


def _day_histogram(session: Session, cases: list[ColumnElement[bool]], dialect: str) -> list[tuple[int, int]]:
    """Days to finalise as a histogram (one row per distinct number of days: a few thousand at most)."""
    days = d.days_to_finalise(dialect)
    statement = (
        select(days, func.count())
        .where(*cases, d.has_finalised_date())
        .group_by(days)
        .order_by(days)
        .with_hint(Report, "INDEXED BY ix_reports_days_to_finalise", "sqlite")
    )
    return [(int(value), int(count)) for value, count in session.execute(statement)]


def _subject_groups(session: Session, cases: list[ColumnElement[bool]], dialect: str) -> list[SubjectGroup]:
    """Per subject, joined to the directory: repeat subjects, the people behind the disproportionality measures
    and the findings by ethnicity. The subject key is the staff number's blind index, else the name's. Two
    groupings, each in the order of ix_reports_subject_outcome (so each streams through the index, no hash table
    of ~700,000 subjects): by staff number, then by name where no number was given. A member of the directory is
    one subject at most."""
    finalised, upheld = d.finalised(), d.upheld()

    def per_subject(key: Any, *where: ColumnElement[bool]) -> Any:
        staff_index = (
            Report.subject_staff_index
            if key is Report.subject_staff_index
            else literal(None, Report.subject_staff_index.type)
        )
        return (
            select(
                staff_index.label("staff_index"),
                func.count().label("cases"),
                func.count().filter(Report.sanction == "dismissal").label("dismissed"),
                func.count().filter(Report.reg13.is_(True)).label("reg13"),
                func.count().filter(finalised).label("finalised"),
                func.count().filter(upheld).label("upheld"),
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

    def people(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    # Grouped by plain columns (a few hundred groups), so that PostgreSQL's estimate picks a hash aggregate.
    statement = (
        select(
            member.ethnicity,
            member.probationer,
            member.command,
            func.count(),
            people(subject.c.cases >= 2),
            people(and_(subject.c.cases >= 2, subject.c.dismissed > 0)),
            func.sum(subject.c.cases),
            people(subject.c.reg13 > 0),
            func.sum(subject.c.finalised),
            func.sum(subject.c.upheld),
            people(subject.c.finalised > 0),
            people(subject.c.upheld > 0),
        )
        .select_from(subject)
        .outerjoin(member, member.staff_number_index == subject.c.staff_index)
        .group_by(member.ethnicity, member.probationer, member.command)
    )
    return [SubjectGroup(*row[:3], *(_int(value) for value in row[3:])) for row in session.execute(statement)]


@dataclass
class SubjectTotals:
    """The per-subject sums, folded from SubjectGroup rows (with a command: members of it only)."""

    subjects: int = 0
    repeat: int = 0
    repeat_dismissed: int = 0
    linked_cases: int = 0
    people: dict[str, int] = field(default_factory=dict)
    reg13_people: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, list[int]] = field(default_factory=dict)  # finalised, upheld, people, people upheld

    def add(self, group: SubjectGroup, command: str | None) -> None:
        self.subjects += group.people
        self.repeat += group.with_2_or_more
        self.repeat_dismissed += group.with_2_or_more_dismissed
        if group.ethnicity is None:  # not in the directory (or known by name only)
            return
        self.linked_cases += group.cases
        if command is not None and group.member_command != command:
            return
        name = group.ethnicity
        self.people[name] = self.people.get(name, 0) + group.people
        if group.probationer:
            self.reg13_people[name] = self.reg13_people.get(name, 0) + group.with_reg13
        found = self.outcomes.setdefault(name, [0, 0, 0, 0])
        for position, value in enumerate((group.finalised, group.upheld, group.people_finalised, group.people_upheld)):
            found[position] += value


def _headcounts(session: Session, command: str | None) -> tuple[dict[str, int], dict[str, int]]:
    """The directory's headcounts and probationer headcounts by ethnicity group."""
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
    return headcounts, probationers


def compute(
    session: Session,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    command: str | None = None,
    today: date | None = None,
    use_rollups: bool = True,
    with_trends: bool = True,
) -> dict[str, Any]:
    """The oversight figures as one JSON-ready dict (docs/SPEC.md schema plus the extras above); `with_trends=False`
    leaves out the keys of portal.oversight.trends, which read every case of the period (the dashboard's first page).
    All time without a command, the sums come from the running totals (portal.oversight.rollups; rebuilt first if
    they are not trusted, which writes in the caller's transaction), else from the cases. `use_rollups=False`
    always reads the cases: the same figures, which the tests compare."""
    today = today or utcnow().date()
    dialect = session.connection().dialect.name
    open_cutoff = datetime.combine(today - timedelta(days=OPEN_OVER_DAYS), time.min)
    if dialect == "postgresql":
        # Room for the hash tables of the per-subject pass (the directory, the name-only subjects) in memory,
        # and no JIT: compiling these statements cost more (0.1 s) than it saves on a few passes.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        session.execute(text("SET LOCAL jit = off"))
    totals = CaseTotals()
    people = SubjectTotals()
    cases = d.received_in(date_from, date_to, command)
    if rolled := use_rollups and date_from is None and date_to is None and command is None:
        rollups.ensure(session)
        for group in rollups.case_groups(session):
            totals.add(group)
        # What the running totals cannot hold: it moves with today, or is one index look-up.
        totals.open_old = rollups.open_over(session, open_cutoff)
        totals.earliest, totals.latest = rollups.received_range(session)
        histogram = rollups.day_rows(session)
        subject_groups = rollups.subject_groups(session)
    else:
        for group in _case_groups(session, cases, open_cutoff):
            totals.add(group)
        histogram = _day_histogram(session, cases, dialect)
        subject_groups = _subject_groups(session, cases, dialect)
    for subject in subject_groups:
        people.add(subject, command)
    headcounts, probationers = _headcounts(session, command)
    period_from = date_from or (totals.earliest.date() if totals.earliest is not None else today)
    period_to = date_to or max(today, totals.latest.date() if totals.latest is not None else today)
    gross_rate = _rate(totals.gross_dismissed, totals.gross)
    period = (period_from, period_to)
    new_keys = trends.compute(session, cases, dialect, period, command, headcounts, rolled) if with_trends else {}
    return {
        "period": {
            "from": period_from.isoformat(),
            "to": period_to.isoformat(),
            "all_time": date_from is None and date_to is None,
        },
        "today": today.isoformat(),
        "command": command,
        "cases": totals.cases,
        "states": totals.states,
        "cases_by_command": totals.by_command,
        "cases_by_source": totals.by_source,
        "timeliness": _timeliness(totals, histogram),
        "findings": _findings(totals),
        "repeat_subjects": trends.repeat_subjects(people.subjects, people.repeat, people.repeat_dismissed),
        "disproportionality": {
            "baseline_group": BASELINE_GROUP,
            "allegations": _groups(people.people, headcounts, "people_with_allegations", "headcount"),
            "reg13": _groups(people.reg13_people, probationers, "people", "probationer_headcount"),
            "cases_linked_to_workforce": people.linked_cases,
            "cases_not_linked": totals.cases - people.linked_cases,
        },
        "findings_by_ethnicity": _findings_by_ethnicity(people.outcomes),
        "regulation_13": dict(totals.reg13),
        "gross_misconduct": {
            "assessed": totals.gross,
            "dismissed": totals.gross_dismissed,
            "dismissal_rate": gross_rate,
        },
        **new_keys,
    }


def _timeliness(totals: CaseTotals, histogram: list[tuple[int, int]]) -> dict[str, Any]:
    """Mean, exact median, the share over two years and the buckets all follow from the days histogram."""
    dated_count = sum(count for _, count in histogram)
    day_sum = sum(value * count for value, count in histogram)
    over_two_years = sum(count for value, count in histogram if value > OVER_TWO_YEARS_DAYS)
    buckets = dict.fromkeys((label for label, _ in BUCKETS), 0)
    for value, count in histogram:
        label = next(label for label, high in BUCKETS if high is None or value <= high)
        buckets[label] += count
    return {
        "finalised": totals.finalised,
        "finalised_with_dates": dated_count,
        "mean_days_to_finalise": _rate(day_sum, dated_count),
        "median_days_to_finalise": float(_median_of_histogram(histogram)),
        "share_finalised_over_2_years": _rate(over_two_years, dated_count),
        "open": totals.cases - totals.finalised,
        "open_over_1_year": totals.open_old,
        "days_to_finalise_buckets": buckets,
    }


def _findings(totals: CaseTotals) -> dict[str, Any]:
    by_category: dict[str, dict[str, Any]] = {}
    empty = {"cases": 0, "finalised": 0, **dict.fromkeys(FINDINGS, 0)}
    for code in list(CATEGORIES) + sorted(set(totals.by_category) - set(CATEGORIES)):
        counts = totals.by_category.get(code, empty)
        done = counts["finalised"]
        by_category[code] = {
            "cases": counts["cases"],
            "finalised": done,
            "case_to_answer_rate": _rate(counts["case-to-answer"], done),
            "no_case_to_answer_rate": _rate(counts["no-case-to-answer"], done),
            "not_investigated_rate": _rate(counts["not-investigated"], done),
        }
    done = totals.finalised
    return {
        "all": {
            "finalised": done,
            "with_finding": totals.with_finding,
            "case_to_answer_rate": _rate(totals.findings["case-to-answer"], done),
            "no_case_to_answer_rate": _rate(totals.findings["no-case-to-answer"], done),
            "not_investigated_rate": _rate(totals.findings["not-investigated"], done),
        },
        "by_category": by_category,
    }


def _findings_by_ethnicity(outcomes: dict[str, list[int]]) -> dict[str, dict[str, int]]:
    names = ("finalised", "case_to_answer", "people", "people_with_case_to_answer")
    return {
        group: dict(zip(names, outcomes.get(group, [0, 0, 0, 0]), strict=True))
        for group in list(ETHNICITY_GROUPS) + sorted(set(outcomes) - set(ETHNICITY_GROUPS))
    }


__all__ = ["BASELINE_GROUP", "BUCKETS", "compute", "relative_rate_interval"]
