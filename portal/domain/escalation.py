"""Escalation before chasing: what `send-reminders` does with every late clock (portal.domain.clocks), and the mails
of the clocks that the outbox worker sends.

A late clock (a stage over its target, the reporter's update or acknowledgement overdue, a reporter's message not
answered in time, a review request not answered, a Regulation 19 notice not given) is escalated in steps: step 1
the assigned officer (the queue's supervisors when nobody is assigned), step 2 the queue's supervisors, step 3 the
head of DPS (the officers ClockTargets.head_of_dps names; none named: the supervisors of DPS). Each step is told
once (a row of `escalation_notices` per person), by a mail of the outbox that holds the reference, the queue and a
link only, and each step is an entry of the audit trail. Nobody is told of a case they have a conflict on.

Before a Regulation 19 notice falls due, the assigned officer and the queue's supervisors get one reminder.

A bounded number of queries whatever the number of cases: the late cases, their open review requests, their
recorded Regulation 19 notices, the steps already told, the people (members of their queues, the head of DPS) with
their conflicts, and one INSERT each of the notices, the mails and the audit entries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from portal import access
from portal.domain import clocks, notify
from portal.domain.settings import ClockTargets, clock_targets
from portal.oversight import definitions
from portal.storage import audit, outbox
from portal.storage.clock_models import EscalationNotice, Reg19Notice, ReviewRequest
from portal.storage.models import CaseEvent, Officer, Queue, QueueMembership, Report, utcnow

log = logging.getLogger("portal.notify")

REMIND = "reg19-remind"  # the clock name of the reminder before a Regulation 19 notice falls due
REVIEW_ASKED = "review-asked"  # the clock name of a review request, told at once to supervisors and the head of DPS
REVIEW_EVENT = "review-requested"  # its step on both timelines
OTHER_LABELS = {REMIND: "Regulation 19 notice due soon", REVIEW_ASKED: "The reporter asked for a review"}
SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class _Case:
    id: str
    reference: str
    queue_id: int
    queue_code: str
    state: str
    severity: str | None
    held: bool
    received_at: datetime
    acknowledged_at: datetime | None
    acknowledge_due_at: datetime
    next_update_due_at: datetime
    stage_entered_at: datetime | None
    awaiting_reply_since: datetime | None
    assigned_officer_id: int | None
    subject_staff_index: bytes | None
    subject_name_index: bytes | None


@dataclass(frozen=True)
class Due:
    """One step of one breach owed to be told."""

    case: _Case
    clock: str
    due_at: datetime
    step: int


def _late_condition(targets: ClockTargets, now: datetime) -> Any:
    """The cases with a late clock, or a Regulation 19 notice near (in SQL; worked out exactly in Python)."""
    reviews = select(ReviewRequest.report_id).where(ReviewRequest.answered_at.is_(None), ReviewRequest.due_at < now)
    reg19_near = and_(
        Report.state.in_(clocks.REG19_STATES),
        Report.received_at < now - timedelta(days=365) + timedelta(days=targets.reg19_remind_days),
    )
    return and_(
        definitions.in_open_state(),
        Report.held.is_(False),
        or_(
            definitions.overdue(now),
            clocks.over_target(targets, now),
            clocks.reply_overdue(targets, now),
            Report.id.in_(reviews),
            reg19_near,
        ),
    )


def owed(session: Session, targets: ClockTargets, now: datetime) -> list[Due]:
    """Every step of every breach that is due by now and not told yet (four queries)."""
    condition = _late_condition(targets, now)
    rows = session.execute(
        select(
            Report.id,
            Report.reference,
            Report.queue_id,
            Queue.code,
            Report.state,
            Report.severity,
            Report.held,
            Report.received_at,
            Report.acknowledged_at,
            Report.acknowledge_due_at,
            Report.next_update_due_at,
            Report.stage_entered_at,
            Report.awaiting_reply_since,
            Report.assigned_officer_id,
            Report.subject_staff_index,
            Report.subject_name_index,
        )
        .join(Queue, Queue.id == Report.queue_id)
        .where(condition)
    ).all()
    if not rows:
        return []
    late_ids = select(Report.id).where(condition)
    reviews = dict(
        session.execute(
            select(ReviewRequest.report_id, func.min(ReviewRequest.due_at))
            .where(ReviewRequest.answered_at.is_(None), ReviewRequest.report_id.in_(late_ids))
            .group_by(ReviewRequest.report_id)
        ).all()
    )
    given: dict[str, set[datetime]] = {}
    for report_id, due_at in session.execute(
        select(Reg19Notice.report_id, Reg19Notice.due_at).where(Reg19Notice.report_id.in_(late_ids))
    ):
        given.setdefault(report_id, set()).add(due_at)
    told = set(
        session.execute(
            select(EscalationNotice.report_id, EscalationNotice.clock, EscalationNotice.due_at, EscalationNotice.step)
            .where(EscalationNotice.report_id.in_(late_ids))
            .distinct()
        ).all()
    )
    found = []
    for row in rows:
        case = _Case(*row)
        for clock in clocks.clocks_of(
            case, targets, now, review_due=reviews.get(case.id), reg19_given=given.get(case.id, set())
        ):
            steps = range(1, clocks.escalation_step(clock.due_at, now, targets) + 1)
            if clock.name == "reg19" and not clock.late and clock.due_at - now <= timedelta(targets.reg19_remind_days):
                steps, name = range(1, 2), REMIND
            else:
                name = clock.name
            fresh = [s for s in steps if (case.id, name, clock.due_at, s) not in told]
            found.extend(Due(case, name, clock.due_at, s) for s in fresh)
    return found


@dataclass(frozen=True)
class _People:
    members: list[notify.Member]  # of the cases' queues: supervisors and the assigned officers
    heads: list[tuple[int, str, access.Identity]]  # the head of DPS: (officer id, email, identity)
    blocked: set[tuple[str, int]]


def _people(session: Session, config: Mapping[str, Any], targets: ClockTargets, due: Sequence[Due]) -> _People:
    key = notify.blind_index_key(config)
    cases = {d.case.id: d.case for d in due}
    assigned = {c.assigned_officer_id for c in cases.values() if c.assigned_officer_id is not None}
    wanted = Officer.role == SUPERVISOR
    if assigned:
        wanted = or_(wanted, Officer.id.in_(assigned))
    members = notify.mailable_members(session, key, {c.queue_id for c in cases.values()}, wanted)
    head_query = select(Officer).where(Officer.disabled.is_(False), Officer.notify_by_email.is_(True))
    if targets.head_of_dps:
        head_query = head_query.where(func.lower(Officer.email).in_(targets.head_of_dps))
    else:
        dps = [m for m in notify.mailable_members(session, key, _dps(session), Officer.role == SUPERVISOR)]
        head_query = head_query.where(Officer.id.in_({m.officer_id for m in dps} or {-1}))
    officers = list(session.scalars(head_query.order_by(Officer.id)))
    identities = access.identities(session, officers, key)
    heads = [(o.id, o.email, who) for o, who in zip(officers, identities, strict=True)]
    by_queue: dict[int, list[access.Identity]] = {}
    for member in members:
        by_queue.setdefault(member.queue_id, []).append(member.identity)
    for queue_id in {c.queue_id for c in cases.values()}:
        by_queue.setdefault(queue_id, []).extend(who for _id, _email, who in heads)
    subjects = [access.Subject(c.id, c.queue_id, c.subject_staff_index, c.subject_name_index) for c in cases.values()]
    return _People(members, heads, access.blocked_pairs(session, subjects, by_queue))


def _dps(session: Session) -> set[int]:
    return set(session.scalars(select(Queue.id).where(Queue.code == "DPS")))


def recipients(due: Due, people: _People) -> list[tuple[int, str]]:
    """Who is told at this step: (officer id, email), never anyone with a conflict on the case."""
    case = due.case
    queue = [m for m in people.members if m.queue_id == case.queue_id and (case.id, m.officer_id) not in people.blocked]
    supervisors = [(m.officer_id, m.email) for m in queue if m.role == SUPERVISOR]
    officer = [(m.officer_id, m.email) for m in queue if m.officer_id == case.assigned_officer_id]
    if due.clock == REMIND:
        found = officer + supervisors
    elif due.step == 1:
        found = officer or supervisors
    elif due.step == 2:
        found = supervisors
    else:
        found = [(i, e) for i, e, _who in people.heads if (case.id, i) not in people.blocked]
    unique: dict[int, str] = {}
    for officer_id, email in found:
        unique.setdefault(officer_id, email)
    return list(unique.items())


def run(session: Session, config: Mapping[str, Any], now: datetime | None = None) -> int:
    """Tell every step of every breach that is due and not told yet, in the caller's transaction. Returns the number
    of mails queued (the outbox worker sends them)."""
    now = now or utcnow()
    targets = clock_targets(session, config)
    return _tell(session, config, targets, owed(session, targets, now), now)


def _tell(session: Session, config: Mapping[str, Any], targets: ClockTargets, due: list[Due], now: datetime) -> int:
    """Record, mail and audit each step of `due` (one INSERT of each)."""
    if not due:
        return 0
    people = _people(session, config, targets, due)
    notices, mails, entries = [], [], []
    untold: dict[tuple[str, int], int] = {}
    for item in due:
        told = recipients(item, people)
        if not told:  # nobody to tell (no supervisor, nobody assigned): tried again on the next run
            untold[(item.case.queue_code, item.step)] = untold.get((item.case.queue_code, item.step), 0) + 1
            continue
        notices.extend(
            {"report_id": item.case.id, "clock": item.clock, "due_at": item.due_at, "step": item.step,
             "officer_id": officer_id, "at": now}
            for officer_id, _email in told
        )  # fmt: skip
        params = {"queue": item.case.queue_code, "clock": item.clock, "step": item.step}
        mails.append(
            {"kind": clocks.ESCALATION, "reference": item.case.reference, "report_id": item.case.id,
             "recipients": [email for _id, email in told], "params": params}
        )  # fmt: skip
        detail = {"clock": item.clock, "step": item.step, "officers": [officer_id for officer_id, _email in told]}
        entries.append(audit.Pending("escalated", None, item.case.id, item.case.queue_code, detail))
    for (queue_code, step), count in sorted(untold.items()):
        log.warning("escalation not sent, nobody to tell: queue=%s step=%s cases=%s", queue_code, step, count)
    if notices:
        session.execute(EscalationNotice.__table__.insert(), notices)
        outbox.add_all(session, mails)  # due at once: `now` may be a run's notional time
        audit.record_many(session, entries, at=now)
    return len(mails)


def _case_of(report: Report) -> _Case:
    values = {name: getattr(report, name) for name in _Case.__dataclass_fields__ if name != "queue_code"}
    return _Case(**values, queue_code=report.queue.code)


def request_review(session: Session, config: Mapping[str, Any], report: Report, now: datetime | None = None) -> bool:
    """The reporter asks for the handling to be reviewed: the queue's supervisors and the head of DPS are told at
    once (an escalation, audited), and the request has its own clock (ClockTargets.review_days), answered by the
    unit's next message. On both timelines. False, and nothing done, while an earlier request is unanswered."""
    now = now or utcnow()
    if open_review(session, report) is not None:
        return False
    targets = clock_targets(session, config)
    request = ReviewRequest(report_id=report.id, requested_at=now, due_at=now + timedelta(days=targets.review_days))
    session.add(request)
    session.add(CaseEvent(report_id=report.id, at=now, kind=REVIEW_EVENT))
    audit.record(session, "review-requested", report_id=report.id, queue_code=report.queue.code)
    case = _case_of(report)
    _tell(session, config, targets, [Due(case, REVIEW_ASKED, request.due_at, step) for step in (2, 3)], now)
    return True


def open_review(session: Session, report: Report) -> ReviewRequest | None:
    return session.scalar(
        select(ReviewRequest)
        .where(ReviewRequest.report_id == report.id, ReviewRequest.answered_at.is_(None))
        .order_by(ReviewRequest.id.desc())
        .limit(1)
    )


# ---------------------------------------------------------------- the mails (sent by the outbox worker)


def escalation_mail(config: Mapping[str, Any], reference: str, params: Mapping[str, Any], to: list[str]) -> notify.Mail:
    clock, step, queue = str(params.get("clock")), int(params.get("step") or 1), str(params.get("queue", "?"))
    link = notify.case_link(config, reference)
    if clock == REMIND:
        subject = f"Regulation 19 notice due soon: case {reference} in queue {queue}"
        said = "A Regulation 19 written notice falls due soon on this case. Record it on the case page once given."
    elif clock == REVIEW_ASKED:
        subject = f"Review asked for: case {reference} in queue {queue}"
        said = (
            f"The reporter of case {reference} has asked for its handling to be reviewed. Answer them through the "
            "case's messages: the request escalates if it is not answered in time."
        )
    else:
        what = clocks.CLOCK_LABELS.get(clock, "A target").lower()
        subject = f"Escalated (step {step}): case {reference} in queue {queue}"
        said = f"Case {reference} is late: {what}. You are told as {clocks.step_name(min(step, 3))}."
    body = f"{said}\n\nOpen it (sign-in needed):\n{link}\n\nBy design this email holds no details of the case.\n"
    return notify.Mail(to=to, subject=subject, body=body, kind=clocks.ESCALATION)


def reply_mail(config: Mapping[str, Any], reference: str, to: list[str]) -> notify.Mail:
    return notify.Mail(
        to=to,
        subject=f"A reply is waiting on case {reference}",
        body=(
            f"The reporter has written on case {reference} and waits for the unit's answer.\n\n"
            f"Open it (sign-in needed):\n{notify.case_link(config, reference)}\n\n"
            "By design this email holds no details of the case.\n"
        ),
        kind=clocks.REPLY_WAITING,
    )


def compose(session: Session, config: Mapping[str, Any], rows: Sequence[Any]) -> dict[int, notify.Mail | None]:
    """The mails of the clocks' outbox rows (None: not to be sent). A reply waiting goes to whoever is assigned to
    the case when it is sent (the queue's members when nobody is), unless the unit has answered meanwhile."""
    found: dict[int, notify.Mail | None] = {}
    waiting = [row for row in rows if row.kind == clocks.REPLY_WAITING]
    for row in rows:
        if row.kind == clocks.ESCALATION:
            found[row.id] = escalation_mail(config, row.reference, row.params or {}, list(row.recipients or []))
    if not waiting:
        return found
    cases = {
        c.id: c
        for c in session.execute(
            select(
                Report.id, Report.queue_id, Report.assigned_officer_id, Report.awaiting_reply_since,
                Report.subject_staff_index, Report.subject_name_index,
            ).where(Report.id.in_({row.report_id for row in waiting}))
        )
    }  # fmt: skip
    live = [cases[row.report_id] for row in waiting if row.report_id in cases]
    members = notify.mailable_members(session, notify.blind_index_key(config), {c.queue_id for c in live})
    subjects = [access.Subject(c.id, c.queue_id, c.subject_staff_index, c.subject_name_index) for c in live]
    blocked = notify.blocked_of(session, subjects, members)
    for row in waiting:
        case = cases.get(row.report_id)
        if case is None or case.awaiting_reply_since is None:
            found[row.id] = None
            continue
        queue = [m for m in members if m.queue_id == case.queue_id and (case.id, m.officer_id) not in blocked]
        to = [m.email for m in queue if m.officer_id == case.assigned_officer_id] or [m.email for m in queue]
        found[row.id] = reply_mail(config, row.reference, to) if to else None
    return found


# ---------------------------------------------------------------- what is escalated to me


@dataclass(frozen=True)
class Escalated:
    reference: str
    queue_code: str
    state: str
    clock: str
    step: int
    due_at: datetime
    at: datetime

    @property
    def label(self) -> str:
        return clocks.CLOCK_LABELS.get(self.clock) or OTHER_LABELS.get(self.clock, self.clock)


def escalated_to(session: Session, officer_id: int, limit: int = 200) -> list[Escalated]:
    """The open cases escalated to this officer, newest first (ix_escalation_notices_officer_at)."""
    rows = session.execute(
        select(
            Report.reference,
            Queue.code,
            Report.state,
            EscalationNotice.clock,
            EscalationNotice.step,
            EscalationNotice.due_at,
            EscalationNotice.at,
        )
        .join(Report, Report.id == EscalationNotice.report_id)
        .join(Queue, Queue.id == Report.queue_id)
        .where(EscalationNotice.officer_id == officer_id, definitions.in_open_state())
        .order_by(EscalationNotice.at.desc(), EscalationNotice.id.desc())
        .limit(limit)
    ).all()
    return [Escalated(*row) for row in rows]


MAIL_KINDS = (clocks.REPLY_WAITING, clocks.ESCALATION)


@dataclass(frozen=True)
class ReporterClock:
    """What the reporter's status page says of time: whether the date they were given has passed, whether the unit's
    supervisors have been told of it yet (send-reminders tells them of every breach within minutes: `told` is true
    once it has), and their review request, if open."""

    late: bool
    due: datetime | None
    review: ReviewRequest | None
    told: bool = False
    head_told: bool = False  # told, and the queue has a supervisor (else the assigned officer or the queue was)


def reporter_clock(session: Session, report: Report, now: datetime | None = None) -> ReporterClock:
    now = now or utcnow()
    if report.held:
        return ReporterClock(False, None, None)
    due = clocks.contact_due(report)
    late = due is not None and due < now
    told = late and report.breach_notified_at is not None and report.breach_notified_at >= due
    head_told = told and _has_supervisor(session, report.queue_id)
    return ReporterClock(late, due, open_review(session, report), told, head_told)


def _has_supervisor(session: Session, queue_id: int) -> bool:
    """Whether the queue has a supervisor whom the breach mail reaches (enabled, mail on)."""
    return bool(
        session.scalar(
            select(QueueMembership.id)
            .join(Officer, Officer.id == QueueMembership.officer_id)
            .where(QueueMembership.queue_id == queue_id, Officer.role == SUPERVISOR, *notify.mailable())
            .limit(1)
        )
    )
