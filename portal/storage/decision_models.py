"""The tables of decisions on a case (migration 0015_decisions): the second look at an outcome, and the structured
factors of a severity assessment. Side tables keyed by report, beside `reports` (portal.storage.models).

Clear columns are codes, ids and times, as docs/DESIGN.md allows. The one piece of content, the message to the
reporter that waits with an outcome for its second look, is sealed exactly as a message of the thread is
(portal.domain.intake.seal_message: `messages.body`, bound to the id in `message_id`), so it opens only with the
case's data key; when a supervisor agrees it is opened and sent as the thread's message (casework.update_reporter).
Importing this module registers the tables on the models' metadata: portal.web.triage imports it (so every app
has them, and alembic's comparison of the schema with the models sees them), and portal.domain.decisions does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.codes import FINDINGS, SANCTIONS, SEVERITIES
from portal.core.workflow import CULPABILITY, HARM
from portal.storage.models import db, utcnow

# What became of an outcome that needed a second look.
PENDING = "pending"
AGREED = "agreed"
SENT_BACK = "sent-back"
SECOND_LOOK_STATUSES = (PENDING, AGREED, SENT_BACK)


def _among(column: str, codes: Iterable[str]) -> str:
    """A CHECK condition: the column holds one of the codes (NULL passes, as in migration 0013)."""
    return f"{column} IN ({', '.join(repr(code) for code in codes)})"


class OutcomeDecision(db.Model):
    """An outcome recorded by a handler that takes effect only when a second supervisor agrees: pending until
    then; agreed (the outcome was applied and the message published) or sent back with reasons (an internal note).
    One row per attempt: a case sent back and decided again has two."""

    __tablename__ = "outcome_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(32))  # the case's, for counts by category without the wide rows
    # The outcome proposed, and the severity assessed when it was (the names are not `finding`, `sanction` and
    # `severity`: those are the report's own codes, constrained by migration 0013; these by 0015).
    finding_proposed: Mapped[str] = mapped_column(String(40))
    sanction_proposed: Mapped[str] = mapped_column(String(40))
    severity_assessed: Mapped[str | None] = mapped_column(String(40))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    decided_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The message to the reporter, sealed as messages.body bound to `message_id` (not in the thread until agreed).
    message_id: Mapped[str] = mapped_column(String(32))
    message_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # The internal note holding the reasons it was sent back.
    reasons_note_id: Mapped[str | None] = mapped_column(ForeignKey("case_notes.id", ondelete="SET NULL"))

    __table_args__ = (
        # The supervisors' list of pending decisions, and the counts of decisions sent back by category over a
        # period: both walk this index alone.
        Index("ix_outcome_decisions_status", "status", "reviewed_at", "category"),
        CheckConstraint(_among("finding_proposed", FINDINGS), name="finding_proposed"),
        CheckConstraint(_among("sanction_proposed", SANCTIONS), name="sanction_proposed"),
        CheckConstraint(_among("severity_assessed", SEVERITIES), name="severity_assessed"),
        CheckConstraint(_among("status", SECOND_LOOK_STATUSES), name="status"),
    )


class SeverityFactors(db.Model):
    """The structured factors of a case's severity assessment (portal.core.workflow's lists): codes only, beside the
    sealed rationale in `reports`."""

    __tablename__ = "severity_factors"
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True)
    culpability: Mapped[str] = mapped_column(String(16))
    harm: Mapped[str] = mapped_column(String(16))
    aggravating: Mapped[list] = mapped_column(JSON, default=list)
    mitigating: Mapped[list] = mapped_column(JSON, default=list)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(_among("culpability", CULPABILITY), name="culpability"),
        CheckConstraint(_among("harm", HARM), name="harm"),
    )


__all__ = ["OutcomeDecision", "SeverityFactors", "PENDING", "AGREED", "SENT_BACK", "SECOND_LOOK_STATUSES"]
