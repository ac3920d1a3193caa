"""Tables and indexes of the clocks (portal.domain.clocks, portal.domain.escalation). Imported by
portal.storage.models, so they are part of `db.metadata`.

Clear metadata only: which case, which clock, which step, who was told, when; a Regulation 19 notice's date and to
whom by role (a code), never a name or a word of the report.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.storage.models import Report, db, utcnow

# The queue page's "awaiting reply" filter, count and sort: the cases of a queue whose reporter waits, in order.
# The queue page's "reply waiting" filter and count, and its "replies waiting first" order, which this index serves
# as it stands on PostgreSQL (ascending, NULLs last), with the oldest first among the rest.
Index("ix_reports_queue_awaiting", Report.queue_id, Report.awaiting_reply_since, Report.received_at)
# The "over stage target" filter: the open cases that have a stage target, in order of receipt, with the due moment
# in the index, so that `stage_due_at < now` is checked on the index entry and only the rows shown are read. Two
# orders of the same columns, one for each planner: SQLite takes an index led by the queue (the other would lose to
# ix_reports_queue_received and read every case of the queue); PostgreSQL costs an index led by the queue as random
# reads and prefers walking ix_reports_received_at across every queue (70 ms at 100,000 cases) unless the open
# cases' index also starts with received_at (0.4 ms).
_HAS_TARGET = Report.stage_due_at.is_not(None)
Index(
    "ix_reports_queue_stage_due",
    Report.queue_id,
    Report.received_at,
    Report.stage_due_at,
    sqlite_where=_HAS_TARGET,
    postgresql_where=_HAS_TARGET,
)
Index(
    "ix_reports_stage_due_received",
    Report.received_at,
    Report.queue_id,
    Report.stage_due_at,
    sqlite_where=_HAS_TARGET,
    postgresql_where=_HAS_TARGET,
)
# The "reply waiting" filter in order of receipt: only the cases whose reporter waits, with the state checked on the
# index entry (without it, SQLite walks ix_reports_queue_received and PostgreSQL intersects the whole state index).
_AWAITING = Report.awaiting_reply_since.is_not(None)
Index(
    "ix_reports_queue_awaiting_received",
    Report.queue_id,
    Report.received_at,
    Report.state,
    sqlite_where=_AWAITING,
    postgresql_where=_AWAITING,
)

# The "overdue" filter (and any list of a queue's open cases) in order of receipt: only the cases with no finalised
# date, so that the filter reads the open cases it shows, not every closed case the queue ever held before them
# (48,199 rows skipped for 51 shown at 100,000 cases; 70-90 ms, growing with the history).
_OPEN = text("finalised_at IS NULL")  # as ix_reports_open_work says it (portal.storage.models)
Index("ix_reports_queue_open_received", Report.queue_id, Report.received_at, sqlite_where=_OPEN, postgresql_where=_OPEN)


class EscalationNotice(db.Model):
    """One person told at one step of one breach of a case's clock: each is told once per step.

    A breach is named by its clock and the moment it fell due (`due_at`): a later breach of the same clock (a new
    stage, an answered reply waiting again) is a new one, escalated from its first step.
    """

    __tablename__ = "escalation_notices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    clock: Mapped[str] = mapped_column(String(16))  # stage, contact, reply, review, reg19
    due_at: Mapped[datetime] = mapped_column(DateTime)
    step: Mapped[int] = mapped_column(Integer)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("report_id", "clock", "due_at", "step", "officer_id", name="uq_escalation_notices_once"),
        # "Escalated to me": an officer's notices, newest first.
        Index("ix_escalation_notices_officer_at", "officer_id", "at"),
    )


class ReviewRequest(db.Model):
    """The reporter's "Ask for the handling to be reviewed": an escalation with its own clock, answered through
    the message thread (the unit's next message answers it)."""

    __tablename__ = "review_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)


class Reg19Notice(db.Model):
    """A Regulation 19 written notice given: for which due date, on which day, to whom (a code), recorded by whom."""

    __tablename__ = "reg19_notices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    given_on: Mapped[date] = mapped_column(Date)
    given_to: Mapped[str] = mapped_column(String(24))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class KeptKey(db.Model):
    """A case's data key kept wrapped to a queue that passed it on (DPS, to a PSU), so that the central unit can
    still read, and so supervise, what it passed down (portal.sealing.keep_for, portal.access.may_read). Wrapped to
    one generation of that queue's key pair, bound to the report as the queue's own wrap is."""

    __tablename__ = "kept_keys"
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    dek_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    kept_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


__all__ = ["EscalationNotice", "KeptKey", "Reg19Notice", "ReviewRequest"]
