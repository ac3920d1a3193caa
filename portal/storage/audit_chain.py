"""The audit trail's chain: each entry's keyed hash over the one before it, the head kept in `settings`, the
append lock, and reading the trail back to verify it. portal.storage.audit records the entries and says why the
chain is keyed and anchored; this module only does the arithmetic and the locking, given the key."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.storage.audit_anchors import VERIFY_BATCH
from portal.storage.models import AuditEntry, Setting

HEAD_SETTING = "audit.head"  # settings row holding the hex hash of the newest entry; not an operator setting
GENESIS_HASH = bytes(32)  # the previous_hash of the first entry


class AuditChainError(RuntimeError):
    """The chain cannot be appended to safely (its head is missing while entries exist, or there is no
    audit key to chain with), or cannot be re-chained (it is broken)."""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int  # entries whose hash and link were found right (all of them when ok)
    first_broken_id: int | None  # the first entry found wrong; None when ok or the fault is not one entry's
    reason: str
    head: str = ""  # hex hash of the newest entry when ok: note it offline to catch a rewritten chain
    head_id: int | None = None  # the newest entry's id when ok and there are entries
    keyed: bool = True  # False when checked without an audit key (plain SHA-256: a rewrite is not caught)


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def entry_hash(
    previous_hash: bytes,
    *,
    key: bytes | None,
    at: datetime,
    officer_id: int | None,
    action: str,
    report_id: str | None,
    queue_code: str | None,
    detail: Any,
) -> bytes:
    """HMAC-SHA256(key, previous_hash || canonical JSON of the entry's fields); `detail` is hashed as given.

    `key=None` gives the plain SHA-256 of the same bytes: the unkeyed chain of a deployment that has no
    audit key yet (and of the trail before `flask portal init` re-chained it).
    """
    fields = {
        "at": at.isoformat(timespec="microseconds"),
        "officer_id": officer_id,
        "action": action,
        "report_id": report_id,
        "queue_code": queue_code,
        "detail": detail,
    }
    message = bytes(previous_hash) + canonical(fields)
    if key is None:
        return hashlib.sha256(message).digest()
    return hmac.new(bytes(key), message, hashlib.sha256).digest()


# ---------------------------------------------------------------- the head and its lock


def lock_head(session: Session) -> bytes:
    """Take the append lock and return the current head. Held until the caller's transaction ends."""
    table = Setting.__table__
    where = table.c.name == HEAD_SETTING
    read_locked = select(table.c.value).where(where).with_for_update()  # FOR UPDATE is a no-op on SQLite
    dialect = session.connection().dialect.name
    if dialect == "sqlite":
        # A write first: the connection takes SQLite's write lock (other writers wait on busy_timeout)
        # before anything is read, so the head read next is the newest and nobody can move it.
        session.execute(update(table).where(where).values(name=table.c.name))
    value = session.execute(read_locked).scalar_one_or_none()
    if value is None:
        # No head yet. Create it; a transaction creating it at the same time makes us wait, then we use
        # its head. Only the creator checks the trail is really empty (entries without a head were
        # written or kept outside this module).
        if _insert_genesis_head(session, dialect) and (
            session.execute(select(AuditEntry.__table__.c.id).limit(1)).first() is not None
        ):
            raise AuditChainError(
                f"the audit trail has entries but no {HEAD_SETTING!r} setting: it was altered outside "
                "portal.storage.audit; run `flask portal verify-audit` and investigate before recording more"
            )
        value = session.execute(read_locked).scalar_one()
    try:
        head = bytes.fromhex(value)
    except ValueError:
        head = b""
    if len(head) != 32:
        raise AuditChainError(f"the {HEAD_SETTING!r} setting is not a SHA-256 hash")
    return head


def _insert_genesis_head(session: Session, dialect: str) -> bool:
    """Insert the head row unless it exists (waiting for a concurrent creator); True if this inserted it."""
    values = {"name": HEAD_SETTING, "value": GENESIS_HASH.hex()}
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - the portal runs on SQLite and PostgreSQL
        from sqlalchemy import insert

        session.execute(insert(Setting.__table__).values(**values))
        return True
    statement = insert(Setting.__table__).values(**values).on_conflict_do_nothing(index_elements=["name"])
    return session.execute(statement.execution_options(preserve_rowcount=True)).rowcount == 1


# ---------------------------------------------------------------- reading the trail back


_ROW_COLUMNS = ("id", "at", "officer_id", "action", "report_id", "queue_code", "detail", "previous_hash", "entry_hash")


def rows_once(session: Session, batch_size: int, after_id: int | None) -> list[Any]:
    """One keyset batch of plain rows after `after_id` (never the session's copies of the entries)."""
    table = AuditEntry.__table__
    query = select(*[table.c[name] for name in _ROW_COLUMNS]).order_by(table.c.id).limit(batch_size)
    if after_id is not None:
        query = query.where(table.c.id > after_id)
    return list(session.execute(query).all())


def rows(session: Session, batch_size: int, after_id: int | None = None) -> Iterable[Any]:
    """Plain rows in id order, read in keyset batches so that a long trail is never held in memory."""
    while True:
        rows = rows_once(session, batch_size, after_id)
        yield from rows
        if len(rows) < batch_size:
            return
        after_id = rows[-1].id


def row_hash(row: Any, previous: bytes, key: bytes | None) -> bytes:
    try:
        return entry_hash(
            previous,
            key=key,
            at=row.at,
            officer_id=row.officer_id,
            action=row.action,
            report_id=row.report_id,
            queue_code=row.queue_code,
            detail=row.detail,
        )
    except (TypeError, ValueError, AttributeError):
        return b""


def verify(session: Session, chain_key: bytes | None, *, batch_size: int = VERIFY_BATCH) -> VerifyResult:
    """Recompute every entry's hash in id order, check each link and that the head is the last entry.

    Under `chain_key` (the audit key); with None the plain SHA-256 chain is checked and the result says
    `keyed=False`. Reads plain rows in keyset batches, so a long trail is never held in memory, and never trusts
    entries the session may already hold.
    """
    keyed = chain_key is not None
    altered = (
        "its contents do not match its keyed hash: it was altered, or its hash was made without the audit key"
        if keyed
        else "its contents do not match its hash: it was altered"
    )
    table = AuditEntry.__table__
    expected_previous = GENESIS_HASH
    last_id: int | None = None
    checked = 0
    while True:
        for row in rows(session, batch_size, last_id):
            if bytes(row.previous_hash) != expected_previous:
                return VerifyResult(
                    False,
                    checked,
                    row.id,
                    "its previous hash is not the hash of the entry before it: an entry before it was "
                    "removed, inserted or reordered",
                    keyed=keyed,
                )
            recomputed = row_hash(row, expected_previous, chain_key)
            if not hmac.compare_digest(bytes(row.entry_hash), recomputed):
                return VerifyResult(False, checked, row.id, altered, keyed=keyed)
            expected_previous = recomputed
            last_id = row.id
            checked += 1
        # The end as far as we can see. The head is written in the same transaction as its entry, so if
        # it names an entry we have not seen yet, that entry was appended meanwhile: read on.
        head_value = session.execute(select(Setting.__table__.c.value).where(Setting.__table__.c.name == HEAD_SETTING))
        head = head_value.scalar_one_or_none()
        if head == expected_previous.hex() or (head is None and last_id is None):
            head_hex = expected_previous.hex()
            return VerifyResult(True, checked, None, "intact", head=head_hex, head_id=last_id, keyed=keyed)
        more = select(table.c.id).where(table.c.id > last_id) if last_id is not None else select(table.c.id)
        if session.execute(more.limit(1)).first() is not None:
            continue
        if head is None:
            return VerifyResult(False, checked, None, f"the {HEAD_SETTING!r} setting is missing", keyed=keyed)
        if last_id is None:
            return VerifyResult(
                False, checked, None, "there are no entries, but the head names one: all were removed", keyed=keyed
            )
        return VerifyResult(
            False,
            checked,
            last_id,
            "the recorded head is not this entry's hash: entries after it were removed, or it was added "
            "outside the audit trail",
            keyed=keyed,
        )
