"""The outbox's table access: add a mail in the caller's transaction, claim due ones, settle them.

Claiming is one guarded UPDATE, committed at once by the caller: it takes rows that are due and not held by a
live lease (`claimed_until` in the future), and writes this worker's claim token and lease. On PostgreSQL the
rows are picked by a sub-select `FOR UPDATE SKIP LOCKED`, so two workers claiming at the same moment take
different rows without waiting for each other; on SQLite the UPDATE runs under the database's write lock, and
the guard in its WHERE makes a second claimer find nothing left. A claim is a lease, not a lock held open: the
transaction ends before any mail is sent, and a worker that dies mid-send leaves a lease that runs out.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from portal.storage.models import OutboxMail, utcnow

LEASE = timedelta(minutes=5)  # far longer than a batch takes (each connection times out in MAIL_TIMEOUT)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)


def add(session: Session, kind: str, *, now: datetime | None = None, **values: Any) -> OutboxMail:
    """A mail to send, in the caller's transaction: it exists if and only if the change that causes it commits."""
    row = OutboxMail(kind=kind, created_at=now or utcnow(), next_attempt_at=now or utcnow(), attempts=0, **values)
    session.add(row)
    return row


def add_all(session: Session, rows: Sequence[dict[str, Any]], now: datetime | None = None) -> None:
    """Several mails in one INSERT (the breach notices of a run)."""
    now = now or utcnow()
    if rows:
        session.execute(
            OutboxMail.__table__.insert(),
            [{"created_at": now, "next_attempt_at": now, "attempts": 0, **row} for row in rows],
        )


def _claimable(now: datetime) -> Any:
    return (OutboxMail.next_attempt_at <= now) & or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until < now)


def claim(session: Session, now: datetime | None = None, limit: int = 50, lease: timedelta = LEASE) -> list[Any]:
    """Claim up to `limit` due mails, oldest first, as plain rows (the table's columns, no ORM objects to expire
    at the commit). The caller commits at once, before sending anything."""
    now = now or utcnow()
    token = secrets.token_hex(16)
    picked = (
        select(OutboxMail.id)
        .where(_claimable(now))
        .order_by(OutboxMail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has no row locks and ignores it
    )
    session.execute(
        update(OutboxMail)
        .where(OutboxMail.id.in_(picked.scalar_subquery()), _claimable(now))
        .values(claim=token, claimed_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    table = OutboxMail.__table__
    return list(session.execute(select(table).where(table.c.claim == token).order_by(table.c.id)).all())


def settle(session: Session, ids: Sequence[int]) -> None:
    """Sent, or never to be sent (nobody to tell, given up): the row goes, and any sealed address with it."""
    if ids:
        session.execute(
            delete(OutboxMail).where(OutboxMail.id.in_(list(ids))).execution_options(synchronize_session=False)
        )


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: 30 s, 1 min, 2 min... at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_WAIT)


def retry_later(session: Session, rows: Sequence[Any], now: datetime | None = None) -> None:
    """The mail server did not take them (claimed rows): try again after the backoff, claimed by nobody meanwhile."""
    now = now or utcnow()
    if rows:
        session.execute(
            update(OutboxMail),
            [
                {
                    "id": row.id,
                    "attempts": row.attempts + 1,
                    "next_attempt_at": now + backoff(row.attempts + 1),
                    "claim": None,
                    "claimed_until": None,
                }
                for row in rows
            ],
        )


def release(session: Session, ids: Sequence[int]) -> None:
    """Claimed but not tried (the worker is stopping): free for the next worker at once."""
    if ids:
        session.execute(
            update(OutboxMail)
            .where(OutboxMail.id.in_(list(ids)))
            .values(claim=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )


def pending(session: Session) -> int:
    """How many mails wait in the outbox, due or not."""
    return session.scalar(select(func.count()).select_from(OutboxMail)) or 0
