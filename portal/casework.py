"""What the handling unit does to a case: stage changes and updates to the reporter.

Callers hold the case's data key already (unlocked through their queue key); this module seals and
records, and keeps the clocks: every update to the reporter resets "next update due".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from . import workflow
from .intake import seal_message
from .models import CaseEvent, Report, utcnow
from .richtext import sanitize


def update_reporter(
    session: Session,
    report: Report,
    dek: bytes,
    message_html: str,
    *,
    update_every_days: int,
    new_state: str | None = None,
    now: datetime | None = None,
) -> None:
    """Send the reporter a message (sanitised), optionally moving the case to a new stage."""
    now = now or utcnow()
    if new_state and new_state != report.state:
        workflow.check_transition(report.state, new_state)
        report.state = new_state
        if new_state == "acknowledged":
            report.acknowledged_at = now
        if new_state in workflow.FINAL_STATES and report.finalised_at is None:
            report.finalised_at = now
        kind = "acknowledged" if new_state == "acknowledged" else "state-changed"
        session.add(CaseEvent(report_id=report.id, at=now, kind=kind, state=new_state))
    session.add(seal_message(report, dek, "unit", str(sanitize(message_html)), at=now))
    session.add(CaseEvent(report_id=report.id, at=now, kind="unit-messaged"))
    report.next_update_due_at = workflow.after_update(now, update_every_days)
