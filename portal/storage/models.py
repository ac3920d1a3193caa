"""The database model (SQLAlchemy 2.0, typed). Content columns hold only ciphertext (portal.core.crypto).

What is in clear is what docs/DESIGN.md allows: references, codes, timestamps, counts, blind indexes,
wrapped keys and public keys. Columns ending in `_sealed` are AES-256-GCM under the report's data key.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


def _sqlite_from_hint(_compiler: SQLiteCompiler, _table: Any, text: str) -> str:
    return text


# SQLAlchemy compiles `select(...).with_hint(Report, "INDEXED BY ix_...", "sqlite")` to nothing for SQLite (its
# base compiler drops FROM hints); SQLite's syntax is the hint right after the table name, as MySQL's is, so
# give it the text. Used where SQLite, without planner statistics, would walk the wrong index (portal.oversight.stats,
# portal.oversight.queries); an INDEXED BY that cannot be honoured fails loudly, so the tests would see it.
SQLiteCompiler.get_from_hint_text = _sqlite_from_hint  # type: ignore[method-assign]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    return uuid.uuid4().hex


class Command(db.Model):
    """A command (BCU or specialist command). The list is data an operator can change."""

    __tablename__ = "commands"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Queue(db.Model):
    """A handling unit's queue: DPS, or the PSU of one command. Holds the queue's X25519 public key."""

    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    command_code: Mapped[str | None] = mapped_column(ForeignKey("commands.code"))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The queue private key sealed to the recovery public key; grants to officers come with accounts.
    private_key_for_recovery: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The generation of the key pair above: it goes up by one each time a member is removed (portal.keyrotation).
    key_generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class QueueKeyGeneration(db.Model):
    """An earlier key pair of a queue, kept for the recovery key: every generation stays recoverable."""

    __tablename__ = "queue_key_generations"
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    private_key_for_recovery: Mapped[bytes] = mapped_column(LargeBinary)
    retired_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RoutingRule(db.Model):
    """One ordered routing rule, stored as data (portal.core.routing interprets it)."""

    __tablename__ = "routing_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    target: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(300))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class ReferenceCounter(db.Model):
    """The last case sequence number issued in a year: CR-YYYY-NNNNNN."""

    __tablename__ = "reference_counters"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


OVERSIGHT_COLUMNS = (
    "category",
    "state",
    "subject_command",
    "source",
    "finding",
    "severity",
    "sanction",
    "reg13",
    "finalised_at",
    "received_at",
    "held",
)
OPEN_WORK_COLUMNS = (
    "queue_id",
    "assigned_officer_id",
    "state",
    "held",
    "received_at",
    "subject_command",
    "acknowledged_at",
    "acknowledge_due_at",
    "next_update_due_at",
    "finalised_at",  # NULL in every entry, but SQLite reads the row for a column only the WHERE names
)
SUBJECT_OUTCOME_COLUMNS = (
    "subject_staff_index",
    "subject_name_index",
    "held",
    "received_at",
    "subject_command",
    "state",
    "finalised_at",
    "finding",
    "sanction",
    "reg13",
)


class Report(db.Model):
    """A concern raised by a reporter: one case. Content is sealed; routing and clocks are in clear."""

    __tablename__ = "reports"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    mode: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))  # indexed first in ix_reports_oversight
    state: Mapped[str] = mapped_column(String(16), default="received", index=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), index=True)
    routing_reasons: Mapped[list] = mapped_column(JSON, default=list)
    iopc_flags: Mapped[list] = mapped_column(JSON, default=list)
    iopc_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    fear_of_reprisal: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="portal")

    # Subject metadata allowed in clear (docs/DESIGN.md), and blind indexes for linking.
    subject_command: Mapped[str | None] = mapped_column(String(8), index=True)
    subject_rank_band: Mapped[str | None] = mapped_column(String(20))
    subject_ethnicity: Mapped[str | None] = mapped_column(String(16))
    subject_probationer: Mapped[bool | None] = mapped_column(Boolean)
    # Looked up through ix_reports_subject_outcome, which starts with it.
    subject_staff_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    subject_name_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    earlier_concerns: Mapped[int] = mapped_column(Integer, default=0)
    # Early-intervention flag (portal.domain.patterns): the pattern rules that matched at intake, in clear.
    pattern_flags: Mapped[list] = mapped_column(JSON, default=list)
    # Held until corroborated: sealed to DPS but in no queue until a matching concern arrives.
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    held_until: Mapped[datetime | None] = mapped_column(DateTime)
    released_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Legacy reference of an imported case, and the subject's team where the directory knows it.
    legacy_reference: Mapped[str | None] = mapped_column(String(40), unique=True)

    # Clocks.
    acknowledge_due_at: Mapped[datetime] = mapped_column(DateTime)
    next_update_due_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime)
    finalised_at: Mapped[datetime | None] = mapped_column(DateTime)

    # Handling.
    assigned_officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"), index=True)
    reporter_wants_email: Mapped[bool] = mapped_column(Boolean, default=False)
    breach_notified_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The clocks of portal.domain.clocks, kept on write: since when the reporter's message waits for the unit's
    # answer (NULL: nothing waits), and when the case entered its current stage (NULL: at receipt or, past it, at
    # acknowledgement). Indexes and the clocks' own tables: portal.storage.clock_models.
    awaiting_reply_since: Mapped[datetime | None] = mapped_column(DateTime)
    stage_entered_at: Mapped[datetime | None] = mapped_column(DateTime)
    # When the current stage's target falls due (NULL: no target, or finalised), under the targets in force: kept on
    # write and recomputed when the targets change by portal.domain.clocks, so "over target" is one comparison.
    stage_due_at: Mapped[datetime | None] = mapped_column(DateTime)

    # Outcome codes (set by triage).
    severity: Mapped[str | None] = mapped_column(String(40))
    finding: Mapped[str | None] = mapped_column(String(40))
    sanction: Mapped[str | None] = mapped_column(String(40))
    reg13: Mapped[bool] = mapped_column(Boolean, default=False)
    severity_rationale_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    # The report's data key, only ever stored wrapped.
    receipt_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    # Keyed hash of the form's one-time submission token: a re-sent form is recognised, not duplicated.
    submission_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    dek_for_queue: Mapped[bytes] = mapped_column(LargeBinary)
    # Which generation of the queue's key pair dek_for_queue is sealed to (portal.keyrotation re-wraps old ones).
    queue_key_generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    dek_for_receipt: Mapped[bytes | None] = mapped_column(LargeBinary)
    dek_for_recovery: Mapped[bytes] = mapped_column(LargeBinary)

    # Sealed content.
    summary_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    details_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    subject_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    subject_staff_number_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    occurred_on_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    location_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    witnesses_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    reporter_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    reporter_contact_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    queue: Mapped[Queue] = relationship(lazy="joined")

    __table_args__ = (
        # Queue pages: every filter and order is served by an index that starts with the queue.
        Index("ix_reports_queue_state_received", "queue_id", "state", "received_at"),
        Index("ix_reports_queue_received", "queue_id", "received_at"),
        Index("ix_reports_queue_due", "queue_id", "next_update_due_at"),
        # Oversight figures (portal.oversight.stats) read only clear columns. These two indexes hold every column they
        # read, so each aggregate walks a narrow index (~100 MB at 1M cases) instead of the wide rows with
        # their ciphertext (~1.3 GB): an index-only scan on PostgreSQL, a covering index on SQLite. The same
        # key columns on both databases (SQLite has no INCLUDE), led by the codes the figures are grouped by, so
        # that SQLite, which has no hash aggregate, reads the groups in order instead of sorting 1M rows.
        Index("ix_reports_oversight", *OVERSIGHT_COLUMNS),
        # Per subject (repeat subjects, disproportionality, findings by ethnicity), in subject order; it also
        # serves every look-up of earlier concerns by staff number.
        Index("ix_reports_subject_outcome", *SUBJECT_OUTCOME_COLUMNS),
        # Partial: only held reports. A plain index on `held` would tempt SQLite's planner away from the
        # staff-number index in look-ups that say "and not held" (1 s instead of 3 ms at 1M cases).
        Index("ix_reports_held_until", "held_until", sqlite_where=text("held"), postgresql_where=text("held")),
        # The open cases (a fifth or so of all), with every column the workload and Regulation 19 figures read:
        # those are live, read at every view of the dashboard, and must not walk a million closed cases.
        Index(
            "ix_reports_open_work",
            *OPEN_WORK_COLUMNS,
            sqlite_where=text("finalised_at IS NULL"),
            postgresql_where=text("finalised_at IS NULL"),
        ),
    )


class CaseEvent(db.Model):
    """A step in a case's timeline, in clear: what kind of step and when, never what was said."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str | None] = mapped_column(String(16))


class Message(db.Model):
    """A message in a case's thread, between the reporter and the handling unit."""

    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    author: Mapped[str] = mapped_column(String(16))  # "reporter" or "unit"
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    body_sealed: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_messages_report_created", "report_id", "created_at"),)


class Attachment(db.Model):
    """A file given as evidence, sealed whole. Its type is checked by content and kept in clear."""

    __tablename__ = "attachments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    filename_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    content_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class ReporterAccess(db.Model):
    """A reporter's unlocked access: the data key sealed under a key that lives only in their cookie."""

    __tablename__ = "reporter_access"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    dek_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class WorkforceMember(db.Model):
    """One person in the workforce directory, keyed by the blind index of their staff number.

    Only what oversight needs is in clear (command, rank band, ethnicity group, probationer flag, joining
    date); names and numbers are kept only as blind indexes, so the table names nobody.
    """

    __tablename__ = "workforce"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_number_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    name_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    command: Mapped[str] = mapped_column(String(8), index=True)
    rank_band: Mapped[str] = mapped_column(String(20))
    ethnicity: Mapped[str] = mapped_column(String(16), index=True)
    probationer: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_on: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Officer(db.Model):
    """A staff account: triage officer, supervisor or administrator.

    One Argon2id derivation of the password gives both the login verifier and the key that seals the
    officer's X25519 private key; the TOTP secret is sealed to the officer's public key.
    """

    __tablename__ = "officers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # triage, supervisor, admin
    command_code: Mapped[str | None] = mapped_column(String(8))
    # The blind index of the officer's staff number, sealed under a key derived from the blind-index key
    # (portal.core.crypto.seal_officer_index): the database alone cannot join officers to the subjects of reports.
    staff_index_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    password_salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    password_verifier: Mapped[bytes] = mapped_column(LargeBinary(32))
    kdf_params: Mapped[dict] = mapped_column(JSON)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    private_key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_counter: Mapped[int] = mapped_column(Integer, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_by_email: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The password was set by someone else (a new account, a reset): the officer chooses their own before
    # anything else once signed in (portal.web.staff.auth.staff_required).
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)


class RecoveryCode(db.Model):
    """A one-time 2FA recovery code, kept only as a keyed hash."""

    __tablename__ = "recovery_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class QueueMembership(db.Model):
    """An officer's access to a queue: the queue private key sealed to the officer's public key."""

    __tablename__ = "queue_memberships"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id", ondelete="CASCADE"))
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), index=True)
    queue_private_key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    granted_by_officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    granted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The generation of the queue key this row holds. A member keeps a row per generation that still has
    # cases sealed to it; the current generation's row is what makes them a member.
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __table_args__ = (UniqueConstraint("officer_id", "queue_id", "generation"),)


class CaseConflict(db.Model):
    """A recorded conflict decision on one case: an officer's declaration ("I know this person or I am
    involved"), or a supervisor's word that a name match is a namesake ("cleared"). Who and which are only in
    `tag` (crypto.conflict_tag, keyed): no row joins an officer to a case, and probable name matches, worked
    out afresh each time from the indexes, are not stored at all. portal.access reads them."""

    __tablename__ = "case_conflicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    tag: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("report_id", "tag"),)


class StaffSession(db.Model):
    """A signed-in officer. The unlocked private key is kept only sealed under a key in their cookie."""

    __tablename__ = "staff_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(16))  # "password" (2FA still due) or "active"
    private_key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CaseNote(db.Model):
    """An internal note on a case: never shown to the reporter."""

    __tablename__ = "case_notes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    body_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class AuditEntry(db.Model):
    """One append-only entry of the audit trail, chained by hash to the one before."""

    __tablename__ = "audit_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    report_id: Mapped[str | None] = mapped_column(String(32), index=True)
    queue_code: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    previous_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)


class Setting(db.Model):
    """An operator setting (clock lengths and the like), as text."""

    __tablename__ = "settings"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


# The columns of `reports` the oversight figures read (oversight.stats, and web.insights through it). A change to
# any of them, or any insert, delete or change of `workforce`, moves the running totals (triggers, migration 0009).
FIGURES_COLUMNS = (*OVERSIGHT_COLUMNS, "subject_staff_index", "subject_name_index")


class FiguresRollupState(db.Model):
    """Whether the running totals below are to be trusted (one row, id 1). False after a bulk load or a migration
    on a database with cases: the triggers then do nothing, and portal.oversight.rollups rebuilds the totals first."""

    __tablename__ = "figures_rollup_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    valid: Mapped[bool] = mapped_column(Boolean)


LEDGER_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite's rowid is 64-bit already


class FiguresCaseCount(db.Model):
    """A ledger of case counts by the codes the figures group by (migration 0009's triggers add to it)."""

    __tablename__ = "figures_case_counts"
    id: Mapped[int] = mapped_column(LEDGER_ID, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    subject_command: Mapped[str | None] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(16))
    finding: Mapped[str | None] = mapped_column(String(40))
    dated: Mapped[bool] = mapped_column(Boolean)  # finalised_at is set
    gross: Mapped[bool] = mapped_column(Boolean)  # severity gross-misconduct
    dismissal: Mapped[bool] = mapped_column(Boolean)  # sanction dismissal
    reg13: Mapped[bool] = mapped_column(Boolean)
    n: Mapped[int] = mapped_column(Integer)


class FiguresDayCount(db.Model):
    """A ledger of finalised cases by days to finalise."""

    __tablename__ = "figures_day_counts"
    id: Mapped[int] = mapped_column(LEDGER_ID, primary_key=True, autoincrement=True)
    days: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)


class FiguresSubject(db.Model):
    """One person cases are about (kind "s": blind index of the staff number; "n": of the name, when no number
    was given), with their tallies over all cases, and what the workforce directory says of them now."""

    __tablename__ = "figures_subjects"
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    cases: Mapped[int] = mapped_column(Integer)
    dismissed: Mapped[int] = mapped_column(Integer)  # cases sanctioned dismissal
    reg13: Mapped[int] = mapped_column(Integer)
    finalised: Mapped[int] = mapped_column(Integer)
    upheld: Mapped[int] = mapped_column(Integer)  # finalised with a case to answer
    ethnicity: Mapped[str | None] = mapped_column(String(16))  # NULL: not in the directory
    probationer: Mapped[bool | None] = mapped_column(Boolean)
    member_command: Mapped[str | None] = mapped_column(String(8))
    # Readers take these rows added up by the directory's facts from figures_subject_groups (migration 0023).


__all__ = [
    "db",
    "Command",
    "Queue",
    "RoutingRule",
    "ReferenceCounter",
    "Report",
    "CaseEvent",
    "Message",
    "Attachment",
    "ReporterAccess",
    "Officer",
    "RecoveryCode",
    "QueueMembership",
    "QueueKeyGeneration",
    "CaseConflict",
    "StaffSession",
    "CaseNote",
    "AuditEntry",
    "Setting",
    "WorkforceMember",
    "FiguresRollupState",
    "FiguresCaseCount",
    "FiguresDayCount",
    "FiguresSubject",
    "OutboxMail",
    "ReceiptStash",
    "WorkforceStaging",
]

# The outbox, the receipts kept for a lost response and the directory's staging area: a module of their own (this
# one would pass 600 lines), imported here, after `db`, so that every table is in `db.metadata`.
from portal.storage import clock_models  # noqa: E402,F401  (the clocks' tables and indexes)
from portal.storage.outbox_models import OutboxMail, ReceiptStash, WorkforceStaging  # noqa: E402
