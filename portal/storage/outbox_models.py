"""Tables of the work done beside a request: the mail outbox, the receipts kept for a lost response, and the
workforce directory's staging area. Imported by portal.storage.models, so they are part of `db.metadata`.

What each holds is what its job needs and no more (docs/DESIGN.md, "what stays in clear"): an outbox row
holds staff addresses, a case reference and a queue (never a word of a report); the one reporter address it may
hold (an update waiting) is sealed under a key derived from the server's secrets and deleted once sent. A
receipt kept for a lost response is wrapped under a key derived from the form's submission token, which only
the reporter's browser holds. Staging rows are blind indexes and codes, like the directory itself.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.storage.models import db, utcnow


class OutboxMail(db.Model):
    """One email to send, written in the transaction of the change that causes it (portal.domain.notify) and sent
    by `flask portal worker` (portal.domain.outbox), which deletes it once the mail server has accepted it.

    A worker claims a row by writing its claim token and a lease (`claimed_until`); a worker that dies mid-send
    leaves a lease that runs out, and the row is claimed again. A failure puts `next_attempt_at` off (backoff).
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # new-case, breach, conflict, reporter-update
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # new-case: the case and the queue whose members are told (worked out when it is sent, so that a member
    # who has left by then, or who declared a conflict, is not told); the reference for the other kinds.
    report_id: Mapped[str | None] = mapped_column(String(36))
    queue_id: Mapped[int | None] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(String(20))
    # Staff addresses (breach, conflict), and the few words the mail is made of: queue code, declared or not.
    recipients: Mapped[list[str] | None] = mapped_column(JSON)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # reporter-update: the reporter's address, sealed (portal.domain.notify.seal_address).
    address_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claim: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_outbox_next_attempt_at", "next_attempt_at"),)


class ReceiptStash(db.Model):
    """A new case's receipt, kept for at most 30 minutes so that a reporter whose response was lost sees it again
    when the same form (the same one-time submission token) is sent again (portal.domain.intake.recover_receipt).

    `lookup` is a keyed hash of the token; `wrapped` is the receipt under a key derived (HKDF) from the token and
    the server's pepper: neither the database, nor the database with the instance folder, opens it.
    """

    __tablename__ = "receipt_stashes"
    lookup: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class WorkforceStaging(db.Model):
    """A workforce file being loaded (portal.domain.importers.import_workforce): its rows are written here in
    short transactions, then swapped into `workforce` in one, so that intake never waits for an import."""

    __tablename__ = "workforce_staging"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[str] = mapped_column(String(32), index=True)
    staged_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    staff_number_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    name_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    command: Mapped[str] = mapped_column(String(8))
    rank_band: Mapped[str] = mapped_column(String(20))
    ethnicity: Mapped[str] = mapped_column(String(16))
    probationer: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_on: Mapped[date | None] = mapped_column(Date)
