"""What a triage officer's queues hold: counts, overdue clocks, filtered and paged case lists.

Overdue is portal.oversight.definitions.overdue: the one definition the dashboard and the breach emails use.

All of it reads clear metadata with SQL; nothing here decrypts. Cases the officer has a conflict of interest
on (portal.access decides) are left out of every count and list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, nulls_last, select
from sqlalchemy.orm import Session, lazyload

from portal.access import Identity, not_conflicted
from portal.core import workflow
from portal.domain import clocks
from portal.oversight.definitions import in_open_state, overdue, state_is_final
from portal.sealing.queue_keys import current_membership
from portal.storage.models import Officer, Queue, QueueMembership, Report, utcnow


@dataclass
class QueueSummary:
    queue: Queue
    by_state: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    flagged: int = 0

    @property
    def open(self) -> int:
        return sum(n for s, n in self.by_state.items() if not state_is_final(s))


def officer_queues(session: Session, officer: Officer) -> list[Queue]:
    return list(
        session.scalars(
            select(Queue)
            .join(QueueMembership, QueueMembership.queue_id == Queue.id)
            .where(QueueMembership.officer_id == officer.id, current_membership())
            .order_by(Queue.code != "DPS", Queue.code)
        )
    )


def my_queues(session: Session, officer: Officer, who: Identity, now: datetime | None = None) -> list[QueueSummary]:
    """Counts by state and overdue clocks for each of the officer's queues, in one grouped query."""
    now = now or utcnow()
    queues = officer_queues(session, officer)
    summaries = {q.id: QueueSummary(q) for q in queues}
    if not queues:
        return []
    rows = session.execute(
        select(
            Report.queue_id,
            Report.state,
            func.count(),
            func.sum(case((overdue(now), 1), else_=0)),
            func.sum(case((and_(Report.iopc_flagged, in_open_state()), 1), else_=0)),
        )
        .where(Report.queue_id.in_(summaries), Report.held.is_(False), not_conflicted(who))
        .group_by(Report.queue_id, Report.state)
    )
    for queue_id, state, count, late, flagged in rows:
        summary = summaries[queue_id]
        summary.by_state[state] = count
        summary.overdue += int(late or 0)
        summary.flagged += int(flagged or 0)
    return list(summaries.values())


AWAITING_HINT = "INDEXED BY ix_reports_queue_awaiting_received"  # (queue_id, received_at, state), waiting cases only
OPEN_HINT = "INDEXED BY ix_reports_queue_open_received"  # (queue_id, received_at), cases with no finalised date
SORTS = {
    "oldest": (Report.received_at.asc(), Report.id.asc()),
    "newest": (Report.received_at.desc(), Report.id.desc()),
    "due": (Report.next_update_due_at.asc(), Report.id.asc()),
    # Replies waiting first, the longest wait first (ix_reports_queue_awaiting; NULLs last, as PostgreSQL keeps them).
    "awaiting": (nulls_last(Report.awaiting_reply_since.asc()), Report.received_at.asc()),
}


@dataclass(frozen=True)
class QueueFilters:
    state: str = ""
    category: str = ""
    overdue: bool = False
    mine: bool = False
    flagged: bool = False
    sort: str = "oldest"
    awaiting: bool = False  # the reporter waits for the unit's answer (portal.domain.clocks)
    over_target: bool = False  # past the target of its stage (portal.domain.clocks)


@dataclass(frozen=True)
class QueueRow:
    report: Report
    assigned_name: str | None
    overdue: bool


def list_queue(
    session: Session,
    queue: Queue,
    who: Identity,
    filters: QueueFilters,
    page: int,
    page_size: int,
    now: datetime | None = None,
) -> tuple[list[QueueRow], bool]:
    """One page of the queue and whether another follows. No total count: its cost grows with the queue. "Over
    target" reads the stage's due moment kept under the targets in force (portal.domain.clocks.past_stage_due)."""
    now = now or utcnow()
    query = (
        select(Report, Officer.name, overdue(now))
        .outerjoin(Officer, Officer.id == Report.assigned_officer_id)
        .where(Report.queue_id == queue.id, Report.held.is_(False), not_conflicted(who))
        # Every row is of `queue`, which the session holds: no join to the queues table for each row.
        .options(lazyload(Report.queue))
    )
    if filters.state in workflow.STATES:
        query = query.where(Report.state == filters.state)
    if filters.category:
        query = query.where(Report.category == filters.category)
    hint = None
    if filters.overdue:
        # definitions.overdue says "no finalised date": the partial index of open cases serves it on both databases
        query = query.where(overdue(now))
        hint = OPEN_HINT
    if filters.mine:
        query = query.where(Report.assigned_officer_id == who.officer_id)
    if filters.flagged:
        query = query.where(Report.iopc_flagged.is_(True))
    if filters.awaiting:
        # SQLite, without statistics, would walk the whole queue in order of receipt for the few cases that wait;
        # the partial index of waiting cases holds them alone, in that order (86 ms -> under 1 ms at 100,000 cases).
        query = query.where(clocks.awaiting_reply())
        hint = AWAITING_HINT  # the fewer rows
    if filters.over_target:
        query = query.where(clocks.past_stage_due(now))
    if hint is not None:
        query = query.with_hint(Report, hint, "sqlite")
    query = query.order_by(*SORTS.get(filters.sort, SORTS["oldest"]))
    page = max(page, 1)
    rows = session.execute(query.offset((page - 1) * page_size).limit(page_size + 1)).all()
    result = [QueueRow(report, name, bool(late)) for report, name, late in rows[:page_size]]
    return result, len(rows) > page_size
