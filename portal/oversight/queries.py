"""The dashboard's figures beyond `stats.compute()`: Regulation 19 reports due and workload per queue and per
officer, each one grouped query; and case to answer by ethnicity and Regulation 13 outcomes, shaped from
figures `stats.compute()` already worked out in its passes.

Every function reads clear metadata only (codes, dates, counts): nothing here needs a key, so a supervisor
who is a member of no queue sees the same figures. The queries take the same `InsightFilters` as the
dashboard: cases received in the period, about staff of the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Date, case, cast, func, select
from sqlalchemy.orm import Session

from portal.core import workflow
from portal.core.codes import ETHNICITY_GROUPS
from portal.oversight import definitions as d
from portal.oversight.rates import relative_rate_interval
from portal.oversight.stats import BASELINE_GROUP
from portal.storage.models import Officer, Queue, Report

# SQLite without planner statistics prefers an index that saves a sort (by officer, by date received) and then
# reads every case's row; the open cases' covering index is a fifth of the size and reads no row.
OPEN_WORK_HINT = "INDEXED BY ix_reports_open_work"


@dataclass(frozen=True)
class InsightFilters:
    """Which cases the figures are over: received from `date_from` to `date_to` (inclusive), about staff of
    `command`. None means no limit."""

    date_from: date | None = None
    date_to: date | None = None
    command: str | None = None


def case_filters(filters: InsightFilters) -> list[ColumnElement[bool]]:
    """The WHERE conditions every figure shares (portal.oversight.definitions.received_in)."""
    return d.received_in(filters.date_from, filters.date_to, filters.command or None)


# Regulation 19 (Police (Conduct) Regulations 2020): a progress report 12 months after the case began,
# then every 6 months. Only cases open at least 11 months can have one due in the next 30 days.
def regulation_19_due_soon(session: Session, filters: InsightFilters, today: date, within_days: int = 30) -> int:
    """Open cases whose next Regulation 19 progress report falls due from today to `within_days` ahead."""
    start = datetime.combine(today, time.min)
    end = start + timedelta(days=within_days + 1)
    candidates_before = workflow.add_months(end, -11)
    received_on = _received_date(session)
    by_day = session.execute(
        select(received_on, func.count())
        .where(*case_filters(filters), d.is_open(), Report.received_at < candidates_before)
        .group_by(received_on)
        .with_hint(Report, OPEN_WORK_HINT, "sqlite")
    )
    # The clock itself is workflow's (one definition of when a report is due); SQL narrows the candidates and
    # counts them by the day received. The time of day cannot change the answer: every due date keeps the
    # time received, and the window runs from midnight to midnight.
    total = 0
    for received, count in by_day:
        day = received if isinstance(received, date) else date.fromisoformat(received)
        if start <= workflow.regulation_19_due(datetime.combine(day, time.min), start) < end:
            total += count
    return total


def _received_date(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return cast(Report.received_at, Date)
    return func.date(Report.received_at)


@dataclass(frozen=True)
class GroupOutcome:
    """'Case to answer' among the finalised cases about a group's members, against the baseline group.

    `people` and `people_with_case_to_answer` count distinct members: they decide suppression.
    """

    group: str
    finalised: int
    case_to_answer: int
    people: int
    people_with_case_to_answer: int
    rate: float
    relative_rate: float | None
    interval: tuple[float, float] | None


def case_to_answer_by_ethnicity(figures: dict[str, Any]) -> dict[str, GroupOutcome]:
    """Finalised cases and 'case to answer' findings by the subject's ethnicity group (finding 7: Black and
    Asian staff were more likely to have an allegation substantiated), from `stats.compute()`'s
    `findings_by_ethnicity` (worked out in its per-subject pass). As in portal.oversight.stats, a case's subject is the
    workforce member with its staff number's blind index, so cases about someone not in the directory are
    left out; with a command, only members of that command count."""
    counts = {
        group: (v["finalised"], v["case_to_answer"], v["people"], v["people_with_case_to_answer"])
        for group, v in figures["findings_by_ethnicity"].items()
    }
    base_total, base_upheld = counts.get(BASELINE_GROUP, (0, 0, 0, 0))[:2]
    base_rate = base_upheld / base_total if base_total else 0.0
    result = {}
    for group in list(ETHNICITY_GROUPS) + sorted(set(counts) - set(ETHNICITY_GROUPS)):
        total, yes, people, people_yes = counts.get(group, (0, 0, 0, 0))
        rate = yes / total if total else 0.0
        result[group] = GroupOutcome(
            group=group,
            finalised=total,
            case_to_answer=yes,
            people=people,
            people_with_case_to_answer=people_yes,
            rate=rate,
            relative_rate=rate / base_rate if base_rate else None,
            interval=None if group == BASELINE_GROUP else relative_rate_interval(yes, total, base_upheld, base_total),
        )
    return result


@dataclass(frozen=True)
class Regulation13Outcomes:
    cases: int
    finalised: int
    dismissed: int

    @property
    def dismissal_rate(self) -> float:
        return self.dismissed / self.finalised if self.finalised else 0.0


def regulation_13_outcomes(figures: dict[str, Any]) -> Regulation13Outcomes:
    """Regulation 13 cases, how many are finalised and how many of those ended in dismissal (finding 8), from
    `stats.compute()`'s `regulation_13`."""
    reg13 = figures["regulation_13"]
    return Regulation13Outcomes(reg13["cases"], reg13["finalised"], reg13["dismissed"])


@dataclass(frozen=True)
class QueueLoad:
    code: str
    name: str
    open: int
    overdue: int
    unassigned: int


@dataclass(frozen=True)
class OpenWork:
    """Open cases counted by (queue, assigned officer): how many, how many overdue, how many unassigned. The
    queue and officer tables both add it up, so the open cases are read once for the two."""

    counts: dict[tuple[int, int | None], tuple[int, int, int]]

    def by_queue(self) -> dict[Any, tuple[int, int, int]]:
        return self._summed(0)

    def by_officer(self) -> dict[Any, tuple[int, int, int]]:
        return self._summed(1)

    def _summed(self, position: int) -> dict[Any, tuple[int, int, int]]:
        totals: dict[Any, tuple[int, int, int]] = {}
        for key, (n, late, free) in self.counts.items():
            before = totals.get(key[position], (0, 0, 0))
            totals[key[position]] = (before[0] + n, before[1] + late, before[2] + free)
        return totals


def open_work(session: Session, filters: InsightFilters, now: datetime) -> OpenWork:
    """One grouped pass over the open cases, by queue then officer: the order of the partial index of open cases
    (ix_reports_open_work, which holds every column this reads), so both databases stream it without a sort
    rather than read every case ever received. A few rows per queue, however many cases."""
    rows = session.execute(
        select(
            Report.queue_id,
            Report.assigned_officer_id,
            func.count(),
            func.sum(case((d.overdue(now), 1), else_=0)),
            func.sum(case((Report.assigned_officer_id.is_(None), 1), else_=0)),
        )
        .where(d.is_open(), *case_filters(filters))
        .group_by(Report.queue_id, Report.assigned_officer_id)
        .with_hint(Report, OPEN_WORK_HINT, "sqlite")
    ).all()
    return OpenWork(
        {(queue, officer): (int(n), int(late or 0), int(free or 0)) for queue, officer, n, late, free in rows}
    )


def queue_workload(
    session: Session, filters: InsightFilters, now: datetime, open_cases: OpenWork | None = None
) -> list[QueueLoad]:
    """Every queue (DPS first, then the PSUs) with its open, overdue and unassigned cases."""
    counts = (open_cases or open_work(session, filters, now)).by_queue()
    queues = session.execute(select(Queue.id, Queue.code, Queue.name).order_by(Queue.code != "DPS", Queue.code))
    return [QueueLoad(code, name, *counts.get(queue_id, (0, 0, 0))) for queue_id, code, name in queues]


@dataclass(frozen=True)
class OfficerLoad:
    officer_id: int
    name: str
    role: str
    disabled: bool
    assigned_open: int
    overdue: int


def officer_workload(
    session: Session, filters: InsightFilters, now: datetime, open_cases: OpenWork | None = None
) -> list[OfficerLoad]:
    """Open cases assigned to each triage officer and supervisor (and to anyone else who holds some, such as
    a disabled account), busiest first."""
    counts = (open_cases or open_work(session, filters, now)).by_officer()
    loads = []
    for officer_id, name, role, disabled in session.execute(
        select(Officer.id, Officer.name, Officer.role, Officer.disabled)
    ):
        assigned, late, _free = counts.get(officer_id, (0, 0, 0))
        if assigned > 0 or (role in ("triage", "supervisor") and not disabled):
            loads.append(OfficerLoad(officer_id, name, role, bool(disabled), assigned, late))
    return sorted(loads, key=lambda load: (-load.assigned_open, load.name, load.officer_id))
