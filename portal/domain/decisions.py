"""Decisions that hold up (issue 18): outcomes the reporter understands, a second look at "no case to answer", and
the severity assessment's structured factors beside what similar cases reached.

- **Outcome with a message.** A finding is recorded only with the unit's own words to the reporter; the message
  they read is portal.core.workflow.outcome_message (a plain-English sentence for the finding and the sanction, the
  unit's words, what they may do next), sealed as any message of the thread is (casework.update_reporter, author
  "outcome"), so the status page shows it under "What was decided".
- **Second look.** In the categories the setting names (portal.domain.settings.second_look_categories), a "no case
  to answer" or "no further action" waits (`OutcomeDecision`, pending) with its message sealed, until a supervisor
  who did not make it, and whom portal.access lets act on the case, agrees (the outcome takes effect and the
  message is published) or sends it back with reasons (an internal note the handler reads). The views audit both.
- **Factors and similar cases.** `record_factors` keeps culpability, harm and the aggravating and mitigating
  factors as codes; `similar_outcomes` counts, from clear metadata in SQL (ix_reports_oversight, led by the
  category, holds every column it reads), the severities and sanctions of the category's cases finalised in the
  last three years, with small counts suppressed as the dashboard suppresses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import access, sealing
from portal.core import workflow
from portal.core.codes import SANCTIONS, SEVERITIES
from portal.core.richtext import sanitize
from portal.domain import casework
from portal.domain.casework import CaseworkError
from portal.domain.intake import seal_message
from portal.oversight import definitions
from portal.oversight.tables import SUPPRESS_BELOW, SUPPRESSED, Hidden
from portal.storage.decision_models import AGREED, PENDING, SENT_BACK, OutcomeDecision, SeverityFactors
from portal.storage.models import CaseNote, Officer, Report, utcnow

OUTCOME_AUTHOR = "outcome"  # the author code of the message that says what was decided
SIMILAR_YEARS = 3

NO_WORDS = "Write to the reporter: say in your own words what was decided and why."
WAITING = "This case's outcome is already waiting for a second look by a supervisor."
NOTHING_WAITING = "Nothing on this case is waiting for a second look."
NOT_SUPERVISOR = "Only a supervisor can give the second look."
OWN_DECISION = "You made this decision: a different supervisor must give the second look."
CONFLICTED = "You cannot give the second look on this case."
NO_REASONS = "Say why you are sending the decision back: the handler reads your reasons."
NO_CULPABILITY = "Choose the culpability."
NO_HARM = "Choose the harm."


class SecondLookRefused(CaseworkError):
    """This officer may not agree to, or send back, this decision; the message is for them."""


# ---------------------------------------------------------------- recording an outcome


def record_finding(
    session: Session,
    report: Report,
    dek: bytes,
    officer_id: int,
    finding: str,
    sanction: str,
    words: str,
    *,
    second_look: tuple[str, ...],
    update_every_days: int,
    now: datetime | None = None,
) -> OutcomeDecision | None:
    """Record the outcome with its message to the reporter. Returns the pending decision when the outcome waits for
    a second look (the case does not move), None when it took effect (the case is resolved, the message sent).
    Raises CaseworkError when it cannot be recorded, with a message for the handler."""
    now = now or utcnow()
    cleaned = str(sanitize(words or ""))
    problems = outcome_problems(session, report, finding, sanction, cleaned)
    if problems:
        raise OutcomeProblems(problems)
    body = workflow.outcome_message(finding, sanction, cleaned)
    if workflow.needs_second_look(report.category, finding, report.severity, second_look):
        message = seal_message(report, dek, OUTCOME_AUTHOR, body, at=now)  # sealed as a message; sent if agreed
        decision = OutcomeDecision(
            report_id=report.id,
            category=report.category,
            finding_proposed=finding,
            sanction_proposed=sanction,
            severity_assessed=report.severity,
            decided_by=officer_id,
            decided_at=now,
            status=PENDING,
            message_id=message.id,
            message_sealed=message.body_sealed,
        )
        session.add(decision)
        session.flush()
        return decision
    _take_effect(session, report, dek, finding, sanction, body, officer_id, update_every_days, now)
    return None


class OutcomeProblems(CaseworkError):
    """Why an outcome cannot be recorded: a message for the handler by the form's field ("finding", "words")."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(" ".join(problems.values()))
        self.problems = problems


def outcome_problems(session: Session, report: Report, finding: str, sanction: str, words_html: str) -> dict[str, str]:
    """Everything wrong with recording this outcome, by field, all at once (empty when it can be recorded)."""
    problems = {}
    try:
        casework.check_outcome(report, finding, sanction)
    except CaseworkError as exc:
        problems["finding"] = str(exc)
    if pending(session, report) is not None:
        problems["finding"] = WAITING
    if not re.sub(r"<[^>]*>|&nbsp;", "", words_html).strip():
        problems["words"] = NO_WORDS
    return problems


def _take_effect(
    session: Session,
    report: Report,
    dek: bytes,
    finding: str,
    sanction: str,
    body: str,
    officer_id: int | None,
    update_every_days: int,
    now: datetime,
) -> None:
    casework.record_outcome(session, report, finding, sanction, now)
    casework.update_reporter(
        session,
        report,
        dek,
        body,
        update_every_days=update_every_days,
        officer_id=officer_id,
        now=now,
        author=OUTCOME_AUTHOR,
    )


def message_stages(session: Session, report: Report) -> tuple[str, ...]:
    """The stages a message to the reporter may move the case to: never "resolved" (the outcome, with its own
    message, resolves a case), and not "closed" while an outcome waits for its second look (closing would settle the
    case without it)."""
    waiting = pending(session, report) is not None
    return tuple(
        state
        for state in workflow.TRANSITIONS[report.state]
        if state != "resolved" and not (waiting and state == "closed")
    )


def check_message_stage(session: Session, report: Report, new_state: str | None) -> None:
    if new_state and new_state != report.state and new_state not in message_stages(session, report):
        raise CaseworkError(
            "Record the outcome under Decisions: it resolves the case and tells the reporter what was decided."
            if new_state == "resolved"
            else "An outcome is waiting for a second look: the case cannot move to that stage until it is given."
        )


# ---------------------------------------------------------------- the second look


def pending(session: Session, report: Report) -> OutcomeDecision | None:
    return session.scalar(
        select(OutcomeDecision).where(OutcomeDecision.report_id == report.id, OutcomeDecision.status == PENDING)
    )


def _reviewable(session: Session, report: Report, who: access.Identity) -> OutcomeDecision:
    decision = pending(session, report)
    if decision is None:
        raise CaseworkError(NOTHING_WAITING)
    if who.role != "supervisor":
        raise SecondLookRefused(NOT_SUPERVISOR)
    if who.officer_id == decision.decided_by:
        raise SecondLookRefused(OWN_DECISION)
    if not access.may_act(session, who, report):  # a member of the case's queue, with no conflict of interest
        raise SecondLookRefused(CONFLICTED)
    return decision


def may_review(session: Session, report: Report, who: access.Identity) -> bool:
    """Would `agree` and `send_back` accept this officer now?"""
    try:
        _reviewable(session, report, who)
    except CaseworkError:
        return False
    return True


def _message_text(dek: bytes, decision: OutcomeDecision) -> str:
    sealed = _Sealed(decision.message_id, decision.message_sealed)
    return sealing.open_text(dek, sealed, "body", table="messages") or ""


@dataclass(frozen=True)
class _Sealed:
    """The waiting message as portal.sealing sees a message row: its id and its sealed body."""

    id: str
    body_sealed: bytes


def agree(
    session: Session,
    report: Report,
    dek: bytes,
    who: access.Identity,
    *,
    update_every_days: int,
    now: datetime | None = None,
) -> OutcomeDecision:
    """A second supervisor agrees: the outcome takes effect and the reporter gets its message."""
    now = now or utcnow()
    decision = _reviewable(session, report, who)
    body = _message_text(dek, decision)
    finding, sanction = decision.finding_proposed, decision.sanction_proposed
    _take_effect(session, report, dek, finding, sanction, body, decision.decided_by, update_every_days, now)
    decision.status, decision.reviewed_by, decision.reviewed_at = AGREED, who.officer_id, now
    return decision


def send_back(
    session: Session, report: Report, dek: bytes, who: access.Identity, reasons: str, now: datetime | None = None
) -> OutcomeDecision:
    """A second supervisor sends the decision back: nothing takes effect; their reasons become an internal note."""
    now = now or utcnow()
    decision = _reviewable(session, report, who)
    if not reasons or not reasons.strip():
        raise CaseworkError(NO_REASONS)
    note = casework.add_note(session, report, dek, who.officer_id, f"Decision sent back at the second look: {reasons}")
    note.created_at = now
    session.flush()
    decision.status, decision.reviewed_by, decision.reviewed_at = SENT_BACK, who.officer_id, now
    decision.reasons_note_id = note.id
    return decision


@dataclass(frozen=True)
class SecondLookView:
    """The latest second look of a case, for its page: what was proposed, the message, who, and any reasons."""

    decision: OutcomeDecision
    message: str
    decided_by: str
    reviewed_by: str | None
    reasons: str | None


def latest(session: Session, report: Report, dek: bytes) -> SecondLookView | None:
    """The case's latest decision that needed a second look, opened for its page (None if it never needed one)."""
    decision = session.scalar(
        select(OutcomeDecision)
        .where(OutcomeDecision.report_id == report.id)
        .order_by(OutcomeDecision.decided_at.desc(), OutcomeDecision.id.desc())
        .limit(1)
    )
    if decision is None:
        return None
    names = dict(
        session.execute(
            select(Officer.id, Officer.name).where(Officer.id.in_({decision.decided_by, decision.reviewed_by} - {None}))
        ).all()
    )
    reasons = None
    if decision.reasons_note_id:
        note = session.get(CaseNote, decision.reasons_note_id)
        reasons = sealing.open_text(dek, note, "body") if note is not None else None
    return SecondLookView(
        decision=decision,
        message=_message_text(dek, decision),
        decided_by=names.get(decision.decided_by, "a former officer"),
        reviewed_by=names.get(decision.reviewed_by) if decision.reviewed_by else None,
        reasons=reasons,
    )


@dataclass(frozen=True)
class Waiting:
    reference: str
    category: str
    finding: str
    decided_at: datetime
    decided_by: str


def waiting_for(session: Session, who: access.Identity, member_queue_ids: set[int], limit: int = 200) -> list[Waiting]:
    """The decisions this supervisor may give the second look: pending, in their queues, not their own, and on
    cases they have no conflict on (portal.access's condition). Clear metadata only: nothing is opened."""
    if who.role != "supervisor" or not member_queue_ids:
        return []
    rows = session.execute(
        select(
            Report.reference,
            OutcomeDecision.category,
            OutcomeDecision.finding_proposed,
            OutcomeDecision.decided_at,
            Officer.name,
        )
        .join(Report, Report.id == OutcomeDecision.report_id)
        .outerjoin(Officer, Officer.id == OutcomeDecision.decided_by)
        .where(
            OutcomeDecision.status == PENDING,
            Report.queue_id.in_(member_queue_ids),
            OutcomeDecision.decided_by.is_distinct_from(who.officer_id),
            access.not_conflicted(who),
        )
        .order_by(OutcomeDecision.decided_at)
        .limit(limit)
    ).all()
    return [
        Waiting(r.reference, r.category, r.finding_proposed, r.decided_at, r.name or "a former officer") for r in rows
    ]


def sent_back_by_category(
    session: Session, date_from: date | None = None, date_to: date | None = None
) -> dict[str, int]:
    """How many decisions were sent back at the second look, by the case's category, over a period of UTC dates
    (both inclusive; None is no limit). One grouped query on ix_outcome_decisions_status; for the dashboard."""
    query = select(OutcomeDecision.category, func.count()).where(OutcomeDecision.status == SENT_BACK)
    if date_from is not None:
        query = query.where(OutcomeDecision.reviewed_at >= datetime.combine(date_from, time.min))
    if date_to is not None:
        query = query.where(OutcomeDecision.reviewed_at < datetime.combine(date_to + timedelta(days=1), time.min))
    rows = session.execute(query.group_by(OutcomeDecision.category)).all()
    return {category: int(count) for category, count in rows}


# ---------------------------------------------------------------- the severity assessment's factors


def check_factors(culpability: str, harm: str, aggravating: list[str], mitigating: list[str]) -> None:
    if culpability not in workflow.CULPABILITY:
        raise CaseworkError(NO_CULPABILITY)
    if harm not in workflow.HARM:
        raise CaseworkError(NO_HARM)
    if not set(aggravating) <= set(workflow.AGGRAVATING) or not set(mitigating) <= set(workflow.MITIGATING):
        raise CaseworkError("Choose factors from the lists.")


def record_factors(
    session: Session,
    report: Report,
    officer_id: int,
    culpability: str,
    harm: str,
    aggravating: list[str],
    mitigating: list[str],
    now: datetime | None = None,
) -> SeverityFactors:
    """Keep the assessment's factors (codes, in the lists' order), replacing any recorded before."""
    check_factors(culpability, harm, aggravating, mitigating)
    row = session.get(SeverityFactors, report.id) or SeverityFactors(report_id=report.id)
    row.culpability, row.harm = culpability, harm
    row.aggravating = [code for code in workflow.AGGRAVATING if code in aggravating]
    row.mitigating = [code for code in workflow.MITIGATING if code in mitigating]
    row.officer_id, row.recorded_at = officer_id, now or utcnow()
    session.add(row)
    return row


def factors_of(session: Session, report: Report) -> SeverityFactors | None:
    return session.get(SeverityFactors, report.id)


@dataclass(frozen=True)
class SimilarOutcomes:
    """How often each severity and each sanction was reached in one category's cases finalised since `since`."""

    category: str
    since: datetime
    cases: int | Hidden
    severities: list[tuple[str, int | Hidden]]
    sanctions: list[tuple[str, int | Hidden]]


def _shown(count: int) -> int | Hidden:
    """The dashboard's rule (portal.oversight.tables): a count under 10 is not shown."""
    return SUPPRESSED if count < SUPPRESS_BELOW else count


def similar_outcomes(session: Session, category: str, now: datetime | None = None) -> SimilarOutcomes:
    """Counts of severities and sanctions in the category over the last three years: two grouped queries on clear
    columns, each an index-only walk of ix_reports_oversight's entries for the one category."""
    since = (now or utcnow()) - timedelta(days=365 * SIMILAR_YEARS)
    where = [Report.category == category, definitions.is_case(), Report.finalised_at >= since]
    counts: dict[str, dict[Any, int]] = {}
    for name, column in (("severity", Report.severity), ("sanction", Report.sanction)):
        rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
        counts[name] = {code: int(n) for code, n in rows}
    total = sum(counts["severity"].values())
    return SimilarOutcomes(
        category=category,
        since=since,
        cases=_shown(total),
        severities=[(label, _shown(counts["severity"].get(code, 0))) for code, label in SEVERITIES.items()],
        sanctions=[(label, _shown(counts["sanction"].get(code, 0))) for code, label in SANCTIONS.items()],
    )
