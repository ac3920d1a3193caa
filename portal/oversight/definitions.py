"""What the oversight figures and the clocks count, each defined once.

Every figure of portal.oversight (stats, queries, tables, rollups) and every clock of portal.domain (queues,
notify) takes these meanings from here, as SQLAlchemy conditions; the running totals' triggers (migration 0009)
and SQLite's expression index (migration 0008) spell the same meanings in SQL, and tests/oversight/
test_definitions.py fails if their SQL and these definitions ever disagree (migrations are history, so they are
checked against this module rather than generated from it).

- A case: a report that is not held until corroborated (held reports count nowhere).
- Finalised: a finalised date is set (imported `finalised_on`; stamped by the portal at resolve or close) or
  the state is final (resolved, closed). Open: every other case.
- Upheld: finalised with the finding "case to answer".
- The steps of the end-to-end measure of fairness, each among upheld cases (a finding of gross misconduct, and
  the sanctions, follow a case to answer): gross misconduct found (upheld, severity gross misconduct); a
  sanction of a written warning or more (upheld; written warning, final written warning or dismissal);
  dismissed (upheld; sanction dismissal).
- The quarter of a case: the calendar quarter (January-March is Q1) of its UTC date received, as one integer,
  year * 4 + quarter - 1 (so consecutive quarters are consecutive integers); `quarter_label` names it
  "2025-Q1". Trends place every case in the quarter it was received, as a period does.
- Days to finalise: the finalised date minus the received date, in whole days (dates, not times). SQLite
  has no date type: the Julian day number of a timestamp is floor(julianday + 0.5), taken on the timestamp cut
  to milliseconds (julianday rounds to the millisecond, and 23:59:59.9995 would round into the next day).
  PostgreSQL subtracts the two dates. Both are spelled as constant SQL text: SQLite uses the index on this
  expression (ix_reports_days_to_finalise) only when a query spells it exactly as the index does.
- Overdue: a case in an open state whose acknowledgement is due and not made, or whose next update to the
  reporter is due, strictly before now. A clock "due at 14:00 on 3 March" is met by an update made at 14:00:
  the case is late from the instant after, which is how a triage officer reads "due by" on the case page, how
  the reporter reads "next update due by", and what the breach email says (one answer for the queue badge, the
  overdue filter, the dashboard's workload and the breach emails).

One layer keeps the all-time figures fast: the running totals (portal.oversight.rollups, migration 0009), kept by
triggers on every write. The snapshot of whole figures that migration 0006 kept beside them is gone (migration
0014): the totals alone answer the dashboard's first view after a change in well under a second at a million
cases, with no stale figures to explain, while a snapshot saves nothing on the all-time view and only a few
seconds on filtered views that a force's real volume (tens of thousands of cases) computes live in a moment.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Integer, and_, literal_column, or_
from sqlalchemy.sql.elements import ColumnElement

from portal.core import workflow
from portal.storage.models import Report

FINAL_STATES = workflow.FINAL_STATES
OPEN_STATES = tuple(state for state in workflow.STATES if state not in FINAL_STATES)
UPHELD_FINDING = "case-to-answer"
BASELINE_GROUP = "White"  # the ethnicity group every relative rate compares with
GROSS_MISCONDUCT = "gross-misconduct"
DISMISSAL = "dismissal"
WRITTEN_WARNING_OR_MORE = ("written-warning", "final-written-warning", DISMISSAL)

# The SQL spellings, with `{r}` for the row the columns belong to ("reports." in a query, "" in an index,
# "NEW." or "r." in a trigger). The triggers of migration 0009 and the index of migration 0008 hold them.
FINAL_STATES_SQL = "(" + ", ".join(f"'{state}'" for state in FINAL_STATES) + ")"
FINALISED_SQL = "{r}finalised_at IS NOT NULL OR {r}state IN " + FINAL_STATES_SQL
_SQLITE_DAY = "CAST(julianday(substr({r}{column}, 1, 23)) + 0.5 AS INTEGER)"
DAYS_SQL = {
    "sqlite": _SQLITE_DAY.replace("{column}", "finalised_at") + " - " + _SQLITE_DAY.replace("{column}", "received_at"),
    "postgresql": "{r}finalised_at::date - {r}received_at::date",
}


def days_sql(dialect: str, row: str = "") -> str:
    """Days to finalise as SQL text for `dialect`, on the columns of `row` ("NEW.", "reports.", or "")."""
    return DAYS_SQL[dialect].format(r=row)


def finalised_sql(row: str = "") -> str:
    """Finalised as SQL text, on the columns of `row`."""
    return FINALISED_SQL.format(r=row)


def is_case() -> ColumnElement[bool]:
    """Counted as a case: not held. "IS NOT true" rather than "IS false" (the same for this NOT NULL column):
    without ANALYZE statistics SQLite's planner would otherwise walk an index on `held`."""
    return Report.held.is_not(True)


def has_finalised_date() -> ColumnElement[bool]:
    return Report.finalised_at.is_not(None)


def finalised() -> ColumnElement[bool]:
    """A finalised date, or a final state."""
    return or_(has_finalised_date(), Report.state.in_(FINAL_STATES))


def is_open() -> ColumnElement[bool]:
    """Not finalised: no finalised date (the partial index of open cases, `finalised_at IS NULL`, serves it) and
    not in a final state."""
    return and_(Report.finalised_at.is_(None), Report.state.not_in(FINAL_STATES))


def state_is_final(state: str) -> bool:
    """A case in this state is finalised, whatever its dates (for counts already grouped by state)."""
    return state in FINAL_STATES


def upheld() -> ColumnElement[bool]:
    """Finalised with a case to answer."""
    return and_(finalised(), Report.finding == UPHELD_FINDING)


def gross_misconduct_found() -> ColumnElement[bool]:
    """Upheld, with the severity gross misconduct."""
    return and_(upheld(), Report.severity == GROSS_MISCONDUCT)


def written_warning_or_more() -> ColumnElement[bool]:
    """Upheld, with a sanction of a written warning, a final written warning or dismissal."""
    return and_(upheld(), Report.sanction.in_(WRITTEN_WARNING_OR_MORE))


def dismissed() -> ColumnElement[bool]:
    """Upheld, with the sanction dismissal."""
    return and_(upheld(), Report.sanction == DISMISSAL)


# The quarter received as one integer, year * 4 + (month - 1) / 3, in each dialect's SQL. SQLite keeps a
# timestamp as text ("2025-03-31 23:59:59.000000"): the year and month are its first characters.
QUARTER_SQL = {
    "sqlite": "(CAST(substr({r}received_at, 1, 4) AS INTEGER) * 4"
    " + (CAST(substr({r}received_at, 6, 2) AS INTEGER) - 1) / 3)",
    "postgresql": "(CAST(EXTRACT(YEAR FROM {r}received_at) AS INTEGER) * 4"
    " + (CAST(EXTRACT(MONTH FROM {r}received_at) AS INTEGER) - 1) / 3)",
}


def quarter_received(dialect: str) -> ColumnElement[int]:
    """The quarter a case was received in, as year * 4 + quarter - 1, in SQL."""
    return literal_column(QUARTER_SQL[dialect].format(r="reports."), Integer)


def quarter_of(day: date) -> int:
    """The quarter of a date, as quarter_received numbers it."""
    return day.year * 4 + (day.month - 1) // 3


def quarter_label(quarter: int) -> str:
    """2025 * 4 + 0 -> "2025-Q1"."""
    return f"{quarter // 4}-Q{quarter % 4 + 1}"


def quarter_bounds(quarter: int) -> tuple[date, date]:
    """The first and last day of a quarter."""
    year, first_month = quarter // 4, (quarter % 4) * 3 + 1
    start = date(year, first_month, 1)
    end = date(year + 1, 1, 1) if first_month == 10 else date(year, first_month + 3, 1)
    return start, end - timedelta(days=1)


def received_in(
    date_from: date | None = None, date_to: date | None = None, command: str | None = None
) -> list[ColumnElement[bool]]:
    """The cases a figure is over: received from `date_from` to `date_to` (UTC dates, both inclusive), about
    staff of `command`; None is no limit."""
    conditions = [is_case()]
    if date_from is not None:
        conditions.append(Report.received_at >= datetime.combine(date_from, time.min))
    if date_to is not None:
        conditions.append(Report.received_at < datetime.combine(date_to + timedelta(days=1), time.min))
    if command is not None:
        conditions.append(Report.subject_command == command)
    return conditions


# Time between two moments of a case's timeline (a stage's start and end), in days with their fraction, as SQL text on
# two column expressions (portal.domain.stage_times: time in stage by queue).
SPAN_DAYS_SQL = {
    "sqlite": "(julianday({end}) - julianday({start}))",
    "postgresql": "(EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0)",
}


def span_days_sql(dialect: str, start: str, end: str) -> str:
    """Days from `start` to `end` (SQL expressions), with the fraction, for `dialect` (SQLite's for any other)."""
    return SPAN_DAYS_SQL.get(dialect, SPAN_DAYS_SQL["sqlite"]).format(start=start, end=end)


def days_to_finalise(dialect: str) -> ColumnElement[int]:
    """Finalised date minus received date, in whole days, in SQL (NULL without a finalised date)."""
    return literal_column(f"({days_sql(dialect, 'reports.')})", Integer)


def acknowledgement_overdue(now: datetime) -> ColumnElement[bool]:
    """Not acknowledged, and the acknowledgement was due before now."""
    return and_(Report.acknowledged_at.is_(None), Report.acknowledge_due_at < now)


def update_overdue(now: datetime) -> ColumnElement[bool]:
    """The next update to the reporter was due before now."""
    return Report.next_update_due_at < now


def in_open_state() -> ColumnElement[bool]:
    """A positive IN on the open states (not NOT IN the final ones), so that the state's indexes serve."""
    return Report.state.in_(OPEN_STATES)


def open_for_clocks() -> ColumnElement[bool]:
    """is_open() spelled for the clocks: both halves of "open" (a case with a finalised date is finalised whatever its
    state says), the state as a positive IN so that the state's indexes serve, and the date's half so that the partial
    indexes of open cases (`finalised_at IS NULL`) serve a list of them (portal.domain.queues)."""
    return and_(in_open_state(), ~has_finalised_date())


def overdue(now: datetime) -> ColumnElement[bool]:
    """Open (open_for_clocks), and past the acknowledgement or the next-update date. Without the date's half a list
    of overdue cases would walk every case the queue ever closed."""
    return and_(open_for_clocks(), or_(acknowledgement_overdue(now), update_overdue(now)))


class CaseGroup(NamedTuple):
    """Cases counted by the codes the figures split by, with the yes/no facts as counts: one row of stats'
    grouped pass over the cases, or of the running totals (portal.oversight.rollups.case_groups)."""

    category: str
    state: str
    subject_command: str | None
    source: str
    finding: str | None
    cases: int
    dated: int  # with a finalised date
    open_old: int  # open and received before the "open over a year" cut-off (0 from the running totals)
    gross: int
    gross_dismissed: int
    reg13: int
    reg13_dismissed: int
    reg13_dated: int
    reg13_dated_dismissed: int
    first_received: Any  # None from the running totals
    last_received: Any

    @property
    def finalised(self) -> int:
        """Finalised cases of the group: all of them in a final state, else those with a finalised date."""
        return self.cases if state_is_final(self.state) else self.dated


class SubjectGroup(NamedTuple):
    """People cases are about, grouped by what the directory says of them (None: not in the directory)."""

    ethnicity: str | None
    probationer: bool | None
    member_command: str | None
    people: int
    with_2_or_more: int
    with_2_or_more_dismissed: int
    cases: int
    with_reg13: int
    finalised: int
    upheld: int
    people_finalised: int
    people_upheld: int


__all__ = [
    "BASELINE_GROUP",
    "DAYS_SQL",
    "FINALISED_SQL",
    "FINAL_STATES",
    "FINAL_STATES_SQL",
    "OPEN_STATES",
    "CaseGroup",
    "SubjectGroup",
    "DISMISSAL",
    "GROSS_MISCONDUCT",
    "QUARTER_SQL",
    "WRITTEN_WARNING_OR_MORE",
    "acknowledgement_overdue",
    "days_sql",
    "days_to_finalise",
    "dismissed",
    "finalised",
    "finalised_sql",
    "gross_misconduct_found",
    "has_finalised_date",
    "in_open_state",
    "is_case",
    "is_open",
    "overdue",
    "quarter_bounds",
    "quarter_label",
    "quarter_of",
    "quarter_received",
    "received_in",
    "state_is_final",
    "update_overdue",
    "upheld",
    "written_warning_or_more",
]
