"""What the handling unit does to a case: stage changes and updates to the reporter.

Callers hold the case's data key already (unlocked through their queue key); this module seals and
records, and keeps the clocks: every update to the reporter resets "next update due".
"""

from __future__ import annotations

from datetime import datetime

from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import sealing
from portal.core import workflow
from portal.core.codes import FINDINGS, SANCTIONS, SEVERITIES
from portal.core.richtext import sanitize
from portal.core.routing import SERIOUS_CATEGORIES
from portal.domain import clocks, notify
from portal.domain.intake import seal_message
from portal.sealing import queue_keys
from portal.storage.models import CaseEvent, CaseNote, Queue, Report, RoutingRule, new_id, utcnow


def update_reporter(
    session: Session,
    report: Report,
    dek: bytes,
    message_html: str,
    *,
    update_every_days: int,
    new_state: str | None = None,
    officer_id: int | None = None,
    now: datetime | None = None,
    author: str = "unit",
) -> None:
    """Send the reporter a message (sanitised), optionally moving the case to a new stage. `author`: "unit", or
    "outcome" for the message that says what was decided (portal.domain.decisions)."""
    now = now or utcnow()
    if new_state and new_state != report.state:
        change_state(session, report, new_state, now)
    message = seal_message(report, dek, author, str(sanitize(message_html)), at=now)
    message.officer_id = officer_id
    session.add(message)
    session.add(CaseEvent(report_id=report.id, at=now, kind="unit-messaged"))
    report.next_update_due_at = workflow.after_update(now, update_every_days)


class CaseworkError(ValueError):
    """A decision the workflow does not allow; the message is for the officer."""


def change_state(session: Session, report: Report, new_state: str, now: datetime | None = None) -> None:
    """Move the case to a new stage (no message to the reporter)."""
    now = now or utcnow()
    _check_transition(report, new_state)
    report.state = new_state
    clocks.entered_stage(report, now)
    if new_state == "acknowledged":
        report.acknowledged_at = now
    if new_state in workflow.FINAL_STATES and report.finalised_at is None:
        report.finalised_at = now
    kind = "acknowledged" if new_state == "acknowledged" else "state-changed"
    session.add(CaseEvent(report_id=report.id, at=now, kind=kind, state=new_state))


def add_note(session: Session, report: Report, dek: bytes, officer_id: int, body: str) -> CaseNote:
    """An internal note: sealed like everything else, never shown to the reporter."""
    note = CaseNote(id=new_id(), report_id=report.id, officer_id=officer_id)
    sealing.seal(dek, note, "body", body)
    session.add(note)
    return note


def record_assessment(report: Report, dek: bytes, severity: str, rationale: str) -> None:
    if severity not in SEVERITIES:
        raise CaseworkError("Choose a severity.")
    if not rationale.strip():
        raise CaseworkError("Give the reasons for the severity assessment.")
    report.severity = severity
    sealing.seal(dek, report, "severity_rationale", rationale.strip())


def record_outcome(session: Session, report: Report, finding: str, sanction: str, now: datetime | None = None) -> None:
    """Finding and sanction at resolution; the case moves to 'resolved'."""
    check_outcome(report, finding, sanction)
    report.finding = finding
    report.sanction = sanction
    change_state(session, report, "resolved", now)


def check_outcome(report: Report, finding: str, sanction: str) -> None:
    """Raises CaseworkError unless the finding and sanction may be recorded on the case as it stands."""
    if finding not in FINDINGS:
        raise CaseworkError("Choose a finding.")
    if sanction not in SANCTIONS:
        raise CaseworkError("Choose a sanction, or 'None'.")
    if sanction != "none" and finding != "case-to-answer":
        raise CaseworkError("A sanction needs a finding of 'case to answer'.")
    if report.severity is None:
        raise CaseworkError("Record the severity assessment before the outcome.")
    _check_transition(report, "resolved")


def _check_transition(report: Report, new_state: str) -> None:
    try:
        workflow.check_transition(report.state, new_state)
    except workflow.TransitionError as exc:
        raise CaseworkError(
            f"A case that is {workflow.REPORTER_WORDING[report.state][0].lower()} cannot move to that stage."
        ) from exc


# Why a case moves, in the words the reporter reads: "Your report is now with <unit>, because <reason>."
REROUTE_REASONS = {
    "local": "the matter is best handled by the professional standards unit for the command where the person you "
    "reported works",
    "central": "the matter is serious and is handled centrally by the Directorate of Professional Standards",
    "impartial": "the unit that had it could not handle it impartially",
    "specialist": "it needs a unit that specialises in this kind of matter",
}
DPS = "DPS"


def reporter_reason(queue_name: str, reason_code: str) -> str:
    return f"Your report is now with {queue_name}, because {REROUTE_REASONS[reason_code]}."


def central_categories(session: Session) -> set[str]:
    """The categories routing keeps central: those the enabled rules send to DPS by category (the defaults' serious
    categories until rules are stored)."""
    rules = session.scalars(select(RoutingRule).where(RoutingRule.kind == "category-in")).all()
    if not rules:
        return set(SERIOUS_CATEGORIES)
    return {
        c for rule in rules if rule.enabled and rule.target == DPS for c in (rule.params or {}).get("categories", [])
    }


def needs_approval(session: Session, report: Report, new_queue: Queue) -> bool:
    """A case of a category routing keeps central leaves DPS only with a supervisor's approval."""
    return report.queue.code == DPS and new_queue.code != DPS and report.category in central_categories(session)


def reroute(
    session: Session,
    report: Report,
    dek: bytes,
    new_queue: Queue,
    now: datetime | None = None,
    *,
    reason_code: str | None = None,
    officer_id: int | None = None,
    update_every_days: int = 28,
) -> bool:
    """Pass the case to another queue: the data key is re-wrapped to that queue; content is untouched. When DPS
    passes it on, DPS keeps its data key wrapped to itself (it still reads, and so supervises, the case). With a
    reason, the reporter is told where it is now and why (a message of the thread). Returns whether DPS kept it.

    The new queue is owed the new-case mail, as for a report just in: its outbox row commits with the move."""
    if new_queue.id == report.queue_id:
        raise CaseworkError("The case is already in that queue.")
    if reason_code is not None and reason_code not in REROUTE_REASONS:
        raise CaseworkError("Choose the reason the reporter will read.")
    now = now or utcnow()
    source = report.queue
    kept = source.code == DPS
    if kept:
        queue_keys.keep_data_key(session, report.id, dek, source)
    queue_keys.forget_kept_key(session, report.id, new_queue.id)
    report.dek_for_queue = sealing.wrap_to(new_queue.public_key, dek, report.id)
    report.queue_key_generation = new_queue.key_generation
    report.queue_id = new_queue.id
    report.queue = new_queue
    report.assigned_officer_id = None
    notify.queue_new_case(session, report, now)
    session.add(CaseEvent(report_id=report.id, at=now, kind="rerouted"))
    if reason_code is not None:
        words = f"<p>{escape(reporter_reason(new_queue.name, reason_code))}</p>"
        update_reporter(
            session, report, dek, words, update_every_days=update_every_days, officer_id=officer_id, now=now
        )
    return kept


def open_notes(session: Session, report: Report, dek: bytes) -> list[tuple[CaseNote, str]]:
    notes = session.scalars(select(CaseNote).where(CaseNote.report_id == report.id).order_by(CaseNote.created_at))
    return [(n, sealing.open_text(dek, n, "body") or "") for n in notes]
