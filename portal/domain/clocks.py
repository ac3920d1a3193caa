"""Every clock of a case in one place: for a case and a moment, which targets apply, how much time is left, and who
is escalated at which step. The queue page, the case page, the dashboard, `send-reminders` (portal.domain.escalation)
and the reporter's status page all ask this module; the settings are portal.domain.settings.ClockTargets.

The clocks:

- contact: the reporter's next update (acknowledgement first), portal.core.workflow.next_contact_due; late as
  portal.oversight.definitions.overdue says (the one definition of overdue).
- reply: a reporter's message the unit has not answered (`reports.awaiting_reply_since`, kept on write by the
  flush hook below: a reporter's message starts it, the unit's next message ends it), due `reply_days` after.
- stage: the target of the current stage, from when the case entered it (`reports.stage_entered_at`, kept by
  portal.domain.casework.change_state; before that column, receipt or acknowledgement): received, acknowledge
  within `acknowledge_days`; acknowledged or being assessed, the assessment decided within `assessment_days`;
  under investigation, by severity. Referred cases wait on another body and have no stage target. Its due moment
  is kept on each case (`reports.stage_due_at`, NULL once finalised or without a target) by the hooks at the end of
  this module, on every write and when the targets change, so that the queue's "over target" reads an index.
- review: the reporter's request that the handling be reviewed, due `review_days` after it was made.
- reg19: the Regulation 19 written notice, 12 months after receipt and every 6 months after, for cases under
  investigation, until a notice for that date is recorded.

A clock is late strictly after its due moment (as "overdue" is). A late clock escalates in steps, told once each:
step 1 the assigned officer (the queue's supervisors when nobody is assigned), step 2 the queue's supervisors,
step 3 the head of DPS, each `escalation_days[i]` days after the breach.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, and_, case, event, func, inspect, literal_column, null, or_, select, update
from sqlalchemy.orm import ORMExecuteState, Session

from portal.core import workflow
from portal.core.codes import SEVERITIES
from portal.domain.intake import ACKNOWLEDGE_SETTING
from portal.domain.settings import (
    ASSESSMENT_SETTING,
    ESCALATION_STEPS,
    INVESTIGATION_DEFAULTS,
    INVESTIGATION_SETTING,
    ClockTargets,
    clock_targets,
)
from portal.oversight import definitions
from portal.storage import outbox
from portal.storage.audit_anchors import current_app_or_none
from portal.storage.clock_models import Reg19Notice, ReviewRequest
from portal.storage.models import Message, Officer, Report, Setting, utcnow

REPLY_WAITING = "reply-waiting"  # the outbox kind of "a reporter's reply is waiting"
ESCALATION = "escalation"  # the outbox kind of an escalation step

CLOCK_LABELS = {
    "contact": "Next update to the reporter",
    "reply": "Answer the reporter's message",
    "stage": "Target for this stage",
    "review": "Answer the reporter's review request",
    "reg19": "Regulation 19 notice",
}
STAGE_TARGET_WORDS = {
    "received": "acknowledge",
    "acknowledged": "decide the assessment",
    "assessment": "decide the assessment",
    "investigation": "finish the investigation",
}
REG19_STATES = ("investigation",)


@dataclass(frozen=True)
class Clock:
    name: str  # contact, reply, stage, review, reg19
    due_at: datetime
    now: datetime

    @property
    def label(self) -> str:
        return CLOCK_LABELS[self.name]

    @property
    def late(self) -> bool:
        return self.due_at < self.now

    @property
    def days_left(self) -> int:
        """Whole days left (negative: days late)."""
        return (self.due_at - self.now).days


# ---------------------------------------------------------------- in SQL (queue lists, counts, send-reminders)


def stage_since() -> ColumnElement[Any]:
    """When the case entered its current stage."""
    before_ack = Report.state == "received"
    return func.coalesce(
        Report.stage_entered_at,
        case((before_ack, Report.received_at), else_=func.coalesce(Report.acknowledged_at, Report.received_at)),
    )


def stage_days(targets: ClockTargets, state: str, severity: str | None) -> int | None:
    """The target of a stage, in days from its start; None: no target (referred, or final)."""
    if state == "received":
        return targets.acknowledge_days
    if state in ("acknowledged", "assessment"):
        return targets.assessment_days
    if state == "investigation":
        return targets.investigation(severity)
    return None


def over_target(targets: ClockTargets, now: datetime) -> ColumnElement[bool]:
    """Open and past the target of its current stage (strictly before now), for any targets: worked out from the
    stage's start (send-reminders' pre-selection). The queue page asks past_stage_due, the same under the targets in
    force, served by an index."""
    since = stage_since()
    cuts = [
        and_(Report.state == "received", since < now - timedelta(days=targets.acknowledge_days)),
        and_(Report.state.in_(("acknowledged", "assessment")), since < now - timedelta(days=targets.assessment_days)),
    ]
    for severity in INVESTIGATION_DEFAULTS:
        cuts.append(
            and_(
                Report.state == "investigation",
                Report.severity == severity,
                since < now - timedelta(days=targets.investigation(severity)),
            )
        )
    others = and_(
        Report.state == "investigation",
        or_(Report.severity.is_(None), Report.severity.not_in(tuple(INVESTIGATION_DEFAULTS))),
        since < now - timedelta(days=targets.investigation(None)),
    )
    return and_(definitions.is_open(), or_(*cuts, others))


def past_stage_due(now: datetime) -> ColumnElement[bool]:
    """over_target under the targets in force, read from `reports.stage_due_at` (kept by this module): in an open
    state and due strictly before now. The open cases that have a target are indexed in order of receipt with their
    due moment (portal.storage.clock_models), so the queue page reads only the rows it shows.

    stage_due_at is NULL once a case is finalised (stage_due), so "due before now" alone means open; the state is
    checked too, as a guard, but not definitions.is_open() in full: PostgreSQL's planner takes its two conditions
    and this one as independent, estimates ~150 of 13,700 over-target rows in a 100,000-case queue, and sorts every
    one of them (36 ms) instead of reading the first 51 in order from the index (0.4 ms; bench/RESULTS.md)."""
    return and_(definitions.in_open_state(), Report.stage_due_at < now)


def stage_due_sql(targets: ClockTargets, dialect: str) -> ColumnElement[Any]:
    """stage_due() in SQL, for the bulk recompute: one branch per open state (and per severity where its days
    differ), each day count taken from stage_days itself; NULL when finalised or without a target."""
    since = stage_since()
    severities = sorted(set(SEVERITIES) | set(targets.investigation_days))
    branches: list[tuple[ColumnElement[bool], Any]] = [(definitions.finalised(), null())]
    for state in (state for state in workflow.STATES if not definitions.state_is_final(state)):
        days = stage_days(targets, state, None)
        for severity in severities:
            own = stage_days(targets, state, severity)
            if own != days:
                branches.append(
                    (and_(Report.state == state, Report.severity == severity), _plus_days(since, own, dialect))
                )
        branches.append((Report.state == state, _plus_days(since, days, dialect)))
    return case(*branches, else_=null())


def _plus_days(moment: ColumnElement[Any], days: int | None, dialect: str) -> Any:
    """`moment` plus whole days, in the column's own form (SQLite: the text SQLAlchemy writes, microseconds kept)."""
    if days is None:
        return null()
    if dialect == "postgresql":
        return moment + literal_column(f"interval '{int(days)} days'")
    return func.datetime(func.substr(moment, 1, 19), f"+{int(days)} days").op("||")(func.substr(moment, 20))


def recompute_stage_due(session: Session, targets: ClockTargets, *where: ColumnElement[bool]) -> None:
    """Work out `reports.stage_due_at` again in one UPDATE, on every case or those `where` selects: when the targets
    change (the administrator's clocks page), after a bulk load, in migration 0022's backfill. Only rows whose value
    changes are written; finalised cases already hold NULL and are left alone."""
    due = stage_due_sql(targets, session.get_bind().dialect.name)
    session.execute(
        update(Report)
        .where(or_(definitions.is_open(), Report.stage_due_at.is_not(None)), *where)
        .where(Report.stage_due_at.is_distinct_from(due))
        .values(stage_due_at=due)
        .execution_options(synchronize_session=False)
    )
    for item in list(session.identity_map.values()):
        if isinstance(item, Report):
            session.expire(item, ["stage_due_at"])


def awaiting_reply() -> ColumnElement[bool]:
    """The reporter has written since the unit last wrote (an open case)."""
    return and_(Report.awaiting_reply_since.is_not(None), definitions.in_open_state())


def reply_overdue(targets: ClockTargets, now: datetime) -> ColumnElement[bool]:
    return and_(awaiting_reply(), Report.awaiting_reply_since < now - timedelta(days=targets.reply_days))


def awaiting_counts(session: Session, queue_ids: set[int], *conditions: ColumnElement[bool]) -> dict[int, int]:
    """How many cases of each queue wait for the unit's answer (ix_reports_queue_awaiting)."""
    if not queue_ids:
        return {}
    rows = session.execute(
        select(Report.queue_id, func.count())
        .where(Report.queue_id.in_(queue_ids), Report.held.is_(False), awaiting_reply(), *conditions)
        .group_by(Report.queue_id)
    )
    return {queue_id: count for queue_id, count in rows}


# ---------------------------------------------------------------- in Python (one case's page)


def stage_started(report: Any) -> datetime:
    """stage_since() for a row already loaded."""
    if report.stage_entered_at is not None:
        return report.stage_entered_at
    if report.state == "received":
        return report.received_at
    return report.acknowledged_at or report.received_at


def stage_due(report: Any, targets: ClockTargets) -> datetime | None:
    """When the current stage's target falls due: what `reports.stage_due_at` holds (None: finalised, or a stage
    with no target)."""
    if report.finalised_at is not None or definitions.state_is_final(report.state):
        return None
    days = stage_days(targets, report.state, report.severity)
    return None if days is None else stage_started(report) + timedelta(days=days)


def stage_clock(report: Any, targets: ClockTargets, now: datetime) -> Clock | None:
    days = stage_days(targets, report.state, report.severity)
    if days is None or definitions.state_is_final(report.state):
        return None
    return Clock("stage", stage_started(report) + timedelta(days=days), now)


def reg19_due(report: Any, notices_for: set[datetime]) -> datetime | None:
    """The Regulation 19 notice the case owes: the first due date (12 months after receipt, then every 6 months)
    with no notice recorded for it; None for a case not under investigation."""
    if report.state not in REG19_STATES:
        return None
    months = 12
    while workflow.add_months(report.received_at, months) in notices_for:
        months += 6
    return workflow.add_months(report.received_at, months)


def contact_due(report: Any) -> datetime | None:
    """When the reporter will next hear from the unit (None once final): the date their status page gives."""
    return workflow.next_contact_due(
        report.state, report.acknowledged_at, report.acknowledge_due_at, report.next_update_due_at
    )


def clocks_of(
    report: Any,
    targets: ClockTargets,
    now: datetime,
    *,
    review_due: datetime | None = None,
    reg19_given: set[datetime] | None = None,
) -> list[Clock]:
    """Every clock that applies to the case now, soonest first."""
    if definitions.state_is_final(report.state) or report.held:
        return []
    found = []
    contact = contact_due(report)
    if contact is not None:
        found.append(Clock("contact", contact, now))
    if report.awaiting_reply_since is not None:
        found.append(Clock("reply", report.awaiting_reply_since + timedelta(days=targets.reply_days), now))
    stage = stage_clock(report, targets, now)
    if stage is not None:
        found.append(stage)
    if review_due is not None:
        found.append(Clock("review", review_due, now))
    reg19 = reg19_due(report, reg19_given or set())
    if reg19 is not None:
        found.append(Clock("reg19", reg19, now))
    return sorted(found, key=lambda clock: clock.due_at)


def case_clocks(session: Session, report: Report, targets: ClockTargets, now: datetime | None = None) -> list[Clock]:
    """clocks_of for one case, with its open review request and its recorded Regulation 19 notices (two look-ups)."""
    now = now or utcnow()
    review = session.scalar(
        select(func.min(ReviewRequest.due_at)).where(
            ReviewRequest.report_id == report.id, ReviewRequest.answered_at.is_(None)
        )
    )
    given = set(session.scalars(select(Reg19Notice.due_at).where(Reg19Notice.report_id == report.id)))
    return clocks_of(report, targets, now, review_due=review, reg19_given=given)


REG19_GIVEN_TO = {
    "officer": "The officer under investigation",
    "representative": "The officer's representative",
}


class ClockError(ValueError):
    """A record the clocks cannot take; the message is for the officer."""


def record_reg19(
    session: Session, report: Report, given_on: date | None, given_to: str, officer_id: int, now: datetime | None = None
) -> Reg19Notice:
    """Record that the Regulation 19 notice now owed was given (the caller audits and commits)."""
    now = now or utcnow()
    given = set(session.scalars(select(Reg19Notice.due_at).where(Reg19Notice.report_id == report.id)))
    due = reg19_due(report, given)
    if due is None:
        raise ClockError("A Regulation 19 notice is owed only while the case is under investigation.")
    if given_to not in REG19_GIVEN_TO:
        raise ClockError("Choose to whom the notice was given.")
    if given_on is None or given_on > now.date() or given_on < report.received_at.date():
        raise ClockError("Give a date from the day the case was received to today.")
    notice = Reg19Notice(
        report_id=report.id, due_at=due, given_on=given_on, given_to=given_to, recorded_by=officer_id, recorded_at=now
    )
    session.add(notice)
    return notice


def reg19_notices(session: Session, report: Report) -> list[tuple[Reg19Notice, str | None]]:
    """The notices recorded on the case, oldest first, with the name of who recorded each."""
    return [
        (notice, name)
        for notice, name in session.execute(
            select(Reg19Notice, Officer.name)
            .outerjoin(Officer, Officer.id == Reg19Notice.recorded_by)
            .where(Reg19Notice.report_id == report.id)
            .order_by(Reg19Notice.due_at)
        ).all()
    ]


def escalation_step(due_at: datetime, now: datetime, targets: ClockTargets) -> int:
    """How many escalation steps a clock due at `due_at` has reached by `now` (0: not late)."""
    if not due_at < now:
        return 0
    late = now - due_at
    return sum(1 for days in targets.escalation_days if late >= timedelta(days=days))


def step_name(step: int) -> str:
    return ESCALATION_STEPS[step - 1]


def time_in_stage(report: Any, now: datetime) -> timedelta:
    return now - stage_started(report)


def stage_view(report: Any, targets: ClockTargets, now: datetime) -> tuple[int, Clock | None]:
    """Whole days in the current stage, and the stage's clock (None: no target), for a queue row or a case page."""
    return time_in_stage(report, now).days, stage_clock(report, targets, now)


# ---------------------------------------------------------------- kept on write


def entered_stage(report: Report, now: datetime) -> None:
    """The case has just entered a new stage (portal.domain.casework.change_state)."""
    report.stage_entered_at = now


# A write to any of these recomputes `reports.stage_due_at` (stage_due reads them all).
STAGE_DUE_INPUTS = ("state", "severity", "stage_entered_at", "acknowledged_at", "received_at", "finalised_at")


def current_targets(session: Session) -> ClockTargets:
    """The targets in force: the settings rows, with the app's configuration where there is an app."""
    app = current_app_or_none()
    return clock_targets(session, app.config if app is not None else {})


def _keep_stage_due(session: Session, _context: Any, _instances: Any) -> None:
    """Before a flush: a new case, or one whose state, severity or stage dates changed (acknowledge, assess,
    investigate, refer, resolve, close, a date set by hand), gets its stage's due moment under the targets in force."""
    changed = []
    for item in session.new:
        if isinstance(item, Report):
            _fill_defaults(item)
            received_due = _received_due(item)
            if received_due is not None:  # intake's new case: no look-up of the targets in its transaction
                item.stage_due_at = received_due
            else:
                changed.append(item)
    for item in session.dirty:
        if isinstance(item, Report) and any(
            inspect(item).attrs[name].history.has_changes() for name in STAGE_DUE_INPUTS
        ):
            changed.append(item)
    if not changed:
        return
    with session.no_autoflush:
        targets = current_targets(session)
    for report in changed:
        report.stage_due_at = stage_due(report, targets)


def _fill_defaults(report: Report) -> None:
    """A new row's column defaults that stage_due reads, which the INSERT would otherwise apply after the flush hook."""
    if report.state is None:
        report.state = Report.__table__.c.state.default.arg
    if report.received_at is None:
        report.received_at = utcnow()


def _received_due(report: Report) -> datetime | None:
    """A new case just received, its stage timed from receipt: the target of the stage is its acknowledgement due
    date, which intake has just worked out from the same setting (workflow.intake_clocks: receipt plus the days to
    acknowledge) in the same transaction. None for any other new case (an import, a case made at a later stage)."""
    if report.state != "received" or report.stage_entered_at is not None or report.finalised_at is not None:
        return None
    return report.acknowledge_due_at


event.listen(Session, "before_flush", _keep_stage_due)


def _fill_bulk_insert(state: ORMExecuteState) -> None:
    """An ORM-enabled INSERT of many `reports` rows as dictionaries (portal.domain.importers), which no flush sees:
    each row's stage due moment is filled in before it runs, under the targets in force (one look-up a batch)."""
    if not state.is_insert or state.bind_mapper is None or state.bind_mapper.class_ is not Report:
        return
    rows = state.parameters
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        return
    targets = current_targets(state.session)
    for row in rows:
        given = {name: row.get(name) for name in STAGE_DUE_INPUTS}
        given["state"] = given["state"] or Report.__table__.c.state.default.arg
        if given["received_at"] is not None:  # else the INSERT's own default, and no target worked out here
            row["stage_due_at"] = stage_due(SimpleNamespace(**given), targets)


event.listen(Session, "do_orm_execute", _fill_bulk_insert)

# The settings a stage's days are read from (portal.domain.settings.clock_targets): a change to one recomputes every
# open case's due moment, whoever writes it (the administrator's clocks page, a script).
STAGE_DAYS_SETTINGS = (ACKNOWLEDGE_SETTING, ASSESSMENT_SETTING)
_TARGETS_CHANGED = "portal.clocks.stage_targets_changed"


def _notice_targets(session: Session, _context: Any, _instances: Any) -> None:
    for item in (*session.new, *session.dirty, *session.deleted):
        if isinstance(item, Setting) and (
            item.name in STAGE_DAYS_SETTINGS or (item.name or "").startswith(INVESTIGATION_SETTING)
        ):
            session.info[_TARGETS_CHANGED] = True
            return


def _recompute_after_targets(session: Session, _context: Any) -> None:
    if session.info.pop(_TARGETS_CHANGED, False):
        recompute_stage_due(session, current_targets(session))


event.listen(Session, "before_flush", _notice_targets)
event.listen(Session, "after_flush_postexec", _recompute_after_targets)


def _notice_messages(session: Session, _context: Any, _instances: Any) -> None:
    """Before a flush: a reporter's new message starts the reply clock (and owes the mail that a reply waits); the
    unit's new message (an update, an outcome) ends it, and answers any open review request."""
    for item in list(session.new):
        if not isinstance(item, Message):
            continue
        with session.no_autoflush:
            report = session.get(Report, item.report_id)
            if report is None:
                continue
            at = item.created_at or utcnow()
            if item.author == "reporter":
                if report.awaiting_reply_since is None:
                    report.awaiting_reply_since = at
                    where = {"report_id": report.id, "queue_id": report.queue_id, "reference": report.reference}
                    outbox.add(session, REPLY_WAITING, **where)
            else:
                report.awaiting_reply_since = None
                for request in session.scalars(
                    select(ReviewRequest).where(
                        ReviewRequest.report_id == report.id, ReviewRequest.answered_at.is_(None)
                    )
                ):
                    request.answered_at = at


event.listen(Session, "before_flush", _notice_messages)
