"""The audit trail: append-only, hash-chained, and checkable.

Every entry's hash is SHA-256 over the previous entry's hash followed by a canonical JSON encoding of the
entry's own fields, so changing, removing, reordering or inserting a row breaks the chain at that row.
The hash of the newest entry (the *head*) is also kept in the `settings` row named `audit.head`, which
is updated in the same transaction as each append: deleting entries from the end of the chain leaves
the head pointing at an entry that is gone, and `verify_chain` reports it.

What an entry holds: who (officer id), what (an action code from `ACTIONS`), which case (report id) or
queue (queue code), when, and `detail`, a small JSON object of **codes and ids only**, never content.
Keys that name content ("summary", "message", "name", "ip", ...; see `FORBIDDEN_DETAIL_KEYS`) are
refused, and strings are kept short, so that what a reporter or an officer wrote, or who a reporter is,
cannot be copied into the trail by accident. The audit trail is stored in clear and read by supervisors.

Appends are serialised with a write lock on the head row, taken *before* the head is read, so concurrent
writers queue behind one another and cannot fork the chain: `SELECT ... FOR UPDATE` on PostgreSQL; on
SQLite a write to the row first, which takes the database's write lock. The lock is held until the
caller's transaction ends, so keep transactions that call `record` short. `record` never commits: the
entry becomes part of the caller's transaction and is kept or rolled back with it.

All entries must be written through `record`. A database writer can still recompute the whole chain
(it is not keyed); to catch that, note the head (`VerifyResult.head`, printed by `flask portal
verify-audit`) somewhere the database's administrators cannot write, and compare later.

This module takes a SQLAlchemy session and plain values; it knows nothing of Flask requests.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import AuditEntry, Setting, utcnow

# The action codes the product records, and what each means in plain English.
ACTIONS: dict[str, str] = {
    "login": "Signed in",
    "login-failed": "Failed to sign in",
    "logout": "Signed out",
    "2fa-enrolled": "Set up two-factor authentication",
    "2fa-reset": "Two-factor authentication reset",
    "password-changed": "Changed password",
    "account-created": "Created a staff account",
    "account-disabled": "Disabled a staff account",
    "account-enabled": "Re-enabled a staff account",
    "view-case": "Opened a case",
    "download-attachment": "Downloaded an attachment",
    "reveal-identity": "Revealed the reporter's identity",
    "transition": "Moved a case to another stage",
    "message-to-reporter": "Sent the reporter a message",
    "note": "Added an internal note",
    "assign": "Assigned a case",
    "grant-queue": "Granted access to a queue",
    "reroute": "Re-routed a case to another queue",
    "export": "Exported data",
    "import": "Imported data",
    "settings-changed": "Changed a setting",
    "routing-rules-changed": "Changed the routing rules",
    "recovery-used": "Used the recovery key",
}

HEAD_SETTING = "audit.head"  # settings row holding the hex hash of the newest entry; not an operator setting
GENESIS_HASH = bytes(32)  # the previous_hash of the first entry

# Keys `detail` may not use: they name content or identity, which never belongs in the trail. A key is
# refused if it is one of these, or ends in "_" and one of these ("subject_name", "client_ip"), or ends
# in "_sealed". Compared case-insensitively, with "-", "." and spaces read as "_".
FORBIDDEN_DETAIL_KEYS = frozenset(
    {
        "summary",
        "details",
        "message",
        "body",
        "text",
        "name",
        "contact",
        "ip",
        "user_agent",
        "email",
        "password",
        "receipt",
        "phone",
        "address",
        "filename",
        "staff_number",
        "location",
        "witnesses",
        "rationale",
        "comment",
    }
)
MAX_DETAIL_STRING = 200  # characters in any one string of `detail` (codes, ids, hashes)
MAX_DETAIL_BYTES = 16 * 1024  # the whole of `detail`, canonically encoded
VERIFY_BATCH = 1000

_KEY_SEPARATORS = re.compile(r"[-. ]")
_REPORT_ID_MAX = AuditEntry.__table__.c.report_id.type.length
_QUEUE_CODE_MAX = AuditEntry.__table__.c.queue_code.type.length


class AuditChainError(RuntimeError):
    """The chain cannot be appended to safely (its head is missing while entries exist)."""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int  # entries whose hash and link were found right (all of them when ok)
    first_broken_id: int | None  # the first entry found wrong; None when ok or the fault is not one entry's
    reason: str
    head: str = ""  # hex hash of the newest entry when ok: note it offline to catch a rewritten chain


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def entry_hash(
    previous_hash: bytes,
    *,
    at: datetime,
    officer_id: int | None,
    action: str,
    report_id: str | None,
    queue_code: str | None,
    detail: Any,
) -> bytes:
    """SHA-256(previous_hash || canonical JSON of the entry's fields). `detail` is hashed as given."""
    fields = {
        "at": at.isoformat(timespec="microseconds"),
        "officer_id": officer_id,
        "action": action,
        "report_id": report_id,
        "queue_code": queue_code,
        "detail": detail,
    }
    return hashlib.sha256(bytes(previous_hash) + _canonical(fields)).digest()


def _check_key(key: object) -> None:
    if not isinstance(key, str):
        raise ValueError(f"audit detail keys must be strings, not {type(key).__name__}")
    normal = _KEY_SEPARATORS.sub("_", key.lower())
    if (
        normal in FORBIDDEN_DETAIL_KEYS
        or normal.endswith("_sealed")
        or any(normal.endswith("_" + word) for word in FORBIDDEN_DETAIL_KEYS)
    ):
        raise ValueError(f"audit detail key {key!r} names content: the audit trail holds codes and ids only")


def _check_value(value: object, path: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_key(key)
            _check_value(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]")
    elif isinstance(value, str):
        if len(value) > MAX_DETAIL_STRING:
            raise ValueError(f"audit detail {path} is longer than {MAX_DETAIL_STRING} characters: codes and ids only")
    elif value is not None and not isinstance(value, bool | int | float):
        raise ValueError(f"audit detail {path} is a {type(value).__name__}: only plain JSON values are allowed")


def _clean_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """`detail` checked and normalised to exactly what the database will give back (tuples become lists)."""
    if detail is None:
        return {}
    if not isinstance(detail, Mapping):
        raise ValueError("audit detail must be a mapping of codes and ids")
    _check_value(detail, "detail")
    try:
        encoded = _canonical(detail)
    except ValueError as error:  # NaN or infinity
        raise ValueError(f"audit detail is not plain JSON: {error}") from error
    if len(encoded) > MAX_DETAIL_BYTES:
        raise ValueError(f"audit detail is larger than {MAX_DETAIL_BYTES} bytes")
    return json.loads(encoded)


def _naive_utc(at: datetime) -> datetime:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at


def _lock_head(session: Session) -> bytes:
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
                "portal.audit; run `flask portal verify-audit` and investigate before recording more"
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


def record(
    session: Session,
    action: str,
    *,
    officer_id: int | None = None,
    report_id: str | None = None,
    queue_code: str | None = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry to the audit trail inside the caller's transaction (the caller commits).

    `detail` holds codes and ids only (see the module's docstring); anything else raises ValueError, as
    does an action not in `ACTIONS`. Waits for any other transaction that is appending to finish.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if officer_id is not None and (isinstance(officer_id, bool) or not isinstance(officer_id, int)):
        raise ValueError("officer_id must be an integer")
    if report_id is not None and (not isinstance(report_id, str) or len(report_id) > _REPORT_ID_MAX):
        raise ValueError(f"report_id must be a string of at most {_REPORT_ID_MAX} characters")
    if queue_code is not None and (not isinstance(queue_code, str) or len(queue_code) > _QUEUE_CODE_MAX):
        raise ValueError(f"queue_code must be a string of at most {_QUEUE_CODE_MAX} characters")
    clean = _clean_detail(detail)
    when = _naive_utc(at or utcnow())

    previous = _lock_head(session)
    digest = entry_hash(
        previous,
        at=when,
        officer_id=officer_id,
        action=action,
        report_id=report_id,
        queue_code=queue_code,
        detail=clean,
    )
    entry = AuditEntry(
        at=when,
        officer_id=officer_id,
        action=action,
        report_id=report_id,
        queue_code=queue_code,
        detail=clean,
        previous_hash=previous,
        entry_hash=digest,
    )
    session.add(entry)
    table = Setting.__table__
    session.execute(update(table).where(table.c.name == HEAD_SETTING).values(value=digest.hex()))
    session.flush()
    return entry


def verify_chain(session: Session, *, batch_size: int = VERIFY_BATCH) -> VerifyResult:
    """Recompute every entry's hash in id order, check each link and that the head is the last entry.

    Reads plain rows in keyset batches, so a long trail is never held in memory, and never trusts
    entries the session may already hold.
    """
    table = AuditEntry.__table__
    columns = (
        table.c.id,
        table.c.at,
        table.c.officer_id,
        table.c.action,
        table.c.report_id,
        table.c.queue_code,
        table.c.detail,
        table.c.previous_hash,
        table.c.entry_hash,
    )
    expected_previous = GENESIS_HASH
    last_id: int | None = None
    checked = 0
    while True:
        query = select(*columns).order_by(table.c.id).limit(batch_size)
        if last_id is not None:
            query = query.where(table.c.id > last_id)
        rows = session.execute(query).all()
        for row in rows:
            if bytes(row.previous_hash) != expected_previous:
                return VerifyResult(
                    False,
                    checked,
                    row.id,
                    "its previous hash is not the hash of the entry before it: an entry before it was "
                    "removed, inserted or reordered",
                )
            try:
                recomputed = entry_hash(
                    expected_previous,
                    at=row.at,
                    officer_id=row.officer_id,
                    action=row.action,
                    report_id=row.report_id,
                    queue_code=row.queue_code,
                    detail=row.detail,
                )
            except (TypeError, ValueError, AttributeError):
                recomputed = b""
            if bytes(row.entry_hash) != recomputed:
                return VerifyResult(False, checked, row.id, "its contents do not match its hash: it was altered")
            expected_previous = recomputed
            last_id = row.id
            checked += 1
        if len(rows) == batch_size:
            continue
        # The end as far as we can see. The head is written in the same transaction as its entry, so if
        # it names an entry we have not seen yet, that entry was appended meanwhile: read on.
        head_value = session.execute(select(Setting.__table__.c.value).where(Setting.__table__.c.name == HEAD_SETTING))
        head = head_value.scalar_one_or_none()
        if head == expected_previous.hex() or (head is None and last_id is None):
            return VerifyResult(True, checked, None, "intact", head=expected_previous.hex())
        more = select(table.c.id).where(table.c.id > last_id) if last_id is not None else select(table.c.id)
        if session.execute(more.limit(1)).first() is not None:
            continue
        if head is None:
            return VerifyResult(False, checked, None, f"the {HEAD_SETTING!r} setting is missing")
        if last_id is None:
            return VerifyResult(False, checked, None, "there are no entries, but the head names one: all were removed")
        return VerifyResult(
            False,
            checked,
            last_id,
            "the recorded head is not this entry's hash: entries after it were removed, or it was added "
            "outside the audit trail",
        )


def entries(
    session: Session,
    *,
    report_id: str | None = None,
    officer_id: int | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Entries newest first, optionally filtered. For the next page pass the last entry's id as `before_id`."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(min(limit, 1000))
    if report_id is not None:
        query = query.where(AuditEntry.report_id == report_id)
    if officer_id is not None:
        query = query.where(AuditEntry.officer_id == officer_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(session.scalars(query))


__all__ = [
    "ACTIONS",
    "AuditChainError",
    "FORBIDDEN_DETAIL_KEYS",
    "GENESIS_HASH",
    "HEAD_SETTING",
    "VerifyResult",
    "entries",
    "entry_hash",
    "record",
    "verify_chain",
]
