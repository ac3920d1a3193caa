"""What the handling unit does to a case: stage changes and updates to the reporter.

Callers hold the case's data key already (unlocked through their queue key); this module seals and
records, and keeps the clocks: every update to the reporter resets "next update due".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import sealing, workflow
from .intake import seal_message
from .models import CaseEvent, CaseNote, Queue, Report, new_id, utcnow
from .richtext import sanitize


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
) -> None:
    """Send the reporter a message (sanitised), optionally moving the case to a new stage."""
    now = now or utcnow()
    if new_state and new_state != report.state:
        change_state(session, report, new_state, now)
    message = seal_message(report, dek, "unit", str(sanitize(message_html)), at=now)
    message.officer_id = officer_id
    session.add(message)
    session.add(CaseEvent(report_id=report.id, at=now, kind="unit-messaged"))
    report.next_update_due_at = workflow.after_update(now, update_every_days)


SEVERITIES = {
    "nfa": "No further action",
    "practice-requiring-improvement": "Practice requiring improvement",
    "misconduct": "Misconduct",
    "gross-misconduct": "Gross misconduct",
}
FINDINGS = {
    "case-to-answer": "Case to answer",
    "no-case-to-answer": "No case to answer",
    "not-investigated": "Not investigated",
}
SANCTIONS = {
    "none": "None",
    "reflective-practice": "Reflective practice",
    "management-advice": "Management advice",
    "written-warning": "Written warning",
    "final-written-warning": "Final written warning",
    "dismissal": "Dismissal",
}


class CaseworkError(ValueError):
    """A decision the workflow does not allow; the message is for the officer."""


def change_state(session: Session, report: Report, new_state: str, now: datetime | None = None) -> None:
    """Move the case to a new stage (no message to the reporter)."""
    now = now or utcnow()
    try:
        workflow.check_transition(report.state, new_state)
    except workflow.TransitionError as exc:
        raise CaseworkError(
            f"A case that is {workflow.REPORTER_WORDING[report.state][0].lower()} cannot move to that stage."
        ) from exc
    report.state = new_state
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
    if finding not in FINDINGS:
        raise CaseworkError("Choose a finding.")
    if sanction not in SANCTIONS:
        raise CaseworkError("Choose a sanction, or 'None'.")
    if sanction != "none" and finding != "case-to-answer":
        raise CaseworkError("A sanction needs a finding of 'case to answer'.")
    if report.severity is None:
        raise CaseworkError("Record the severity assessment before the outcome.")
    report.finding = finding
    report.sanction = sanction
    change_state(session, report, "resolved", now)


def reroute(session: Session, report: Report, dek: bytes, new_queue: Queue, now: datetime | None = None) -> None:
    """Pass the case to another queue: the data key is re-wrapped to that queue; content is untouched.

    The new queue is owed the new-case mail, as for a report just in (portal.notify.notify_new_case after
    the commit, or send-reminders if that fails)."""
    if new_queue.id == report.queue_id:
        raise CaseworkError("The case is already in that queue.")
    report.dek_for_queue = sealing.wrap_to(new_queue.public_key, dek, report.id)
    report.queue_key_generation = new_queue.key_generation
    report.queue_id = new_queue.id
    report.queue = new_queue
    report.assigned_officer_id = None
    report.new_case_owed = True
    session.add(CaseEvent(report_id=report.id, at=now or utcnow(), kind="rerouted"))


def open_notes(session: Session, report: Report, dek: bytes) -> list[tuple[CaseNote, str]]:
    notes = session.scalars(select(CaseNote).where(CaseNote.report_id == report.id).order_by(CaseNote.created_at))
    return [(n, sealing.open_text(dek, n, "body") or "") for n in notes]
