"""The audit trail: append-only, chained under a key the database does not hold, anchored outside it.

Every entry's hash is HMAC-SHA256, under the server's *audit key*, over the previous entry's hash
followed by a canonical JSON encoding of the entry's own fields, so changing, removing, reordering or
inserting a row breaks the chain at that row. The hash of the newest entry (the *head*) is also kept in
the `settings` row named `audit.head`, updated in the same transaction as each append: deleting entries
from the end of the chain leaves the head pointing at an entry that is gone, and `verify_chain` reports it.

Why keyed and anchored. A plain hash chain only catches an edit: whoever can write to the database can
delete rows and recompute every hash and the head, and the chain verifies again. The audit key lives with
the server's secrets (`PORTAL_AUDIT_KEY`, `PORTAL_AUDIT_KEY_FILE` or instance/instance_secrets.json; see
instance_secrets), never in the database, so a database writer cannot make a hash that verifies. And after
each commit that added entries, one line per entry (`audit-anchor <id> <time> <head>`) is appended to an
anchor file outside the database (`PORTAL_AUDIT_ANCHOR`, default instance/audit-anchor.log; O_APPEND,
mode 0600) and logged to the `portal.storage.audit.anchor` logger, for shipping to syslog or a log store that
database administrators cannot rewrite. `check_anchors` (`flask portal verify-audit --anchor FILE`)
compares every anchored head with the trail, which catches a rewrite even by someone who has the key.

Where the key comes from: `record`, `verify_chain` and `rekey` take `key=` explicitly, else the session's
`info["portal.audit_key"]`, else the Flask app's secrets when there is an app context. A deployment
whose secrets have no audit key yet (an upgrade before `flask portal init` has run) keeps chaining with
plain SHA-256 as before, logs a warning, anchors nothing, and `verify-audit` says the trail is not keyed;
`flask portal init` adds the key and re-chains the trail once (`rekey`). Nothing is derived to fill in
for a missing key. Outside an app context, with no key given, `record` refuses rather than guess.

What an entry holds: who (officer id), what (an action code from `ACTIONS`), which case (report id) or
queue (queue code), when, and `detail`, a small JSON object of **codes and ids only**, never content.
Keys that name content ("summary", "message", "name", "ip", ...; see `FORBIDDEN_DETAIL_KEYS`) are
refused, and strings are kept short, so that what a reporter or an officer wrote, or who a reporter is,
cannot be copied into the trail by accident. The audit trail is stored in clear and read by supervisors.

Appends are serialised with a write lock on the head row, taken *before* the head is read, so concurrent
writers queue behind one another and cannot fork the chain: `SELECT ... FOR UPDATE` on PostgreSQL; on
SQLite a write to the row first, which takes the database's write lock. The lock is held until the
caller's transaction ends, so keep transactions that call `record` short. `record` never commits: the
entry becomes part of the caller's transaction and is kept or rolled back with it (and is anchored only
once that transaction commits; an entry rolled back, also with a savepoint, is never anchored).

All entries must be written through `record`. The anchors, written after each commit and checked by
`verify-audit --anchor`, are portal.storage.audit_anchors (their names are re-exported here).

This module takes a SQLAlchemy session and plain values; it knows nothing of Flask requests (it reads
the app's secrets and configuration only when it is not given a key or an anchor path).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, scoped_session

from portal.storage import audit_anchors, audit_chain
from portal.storage.audit_anchors import (
    ANCHOR_FILENAME,
    ANCHOR_INFO,
    ANCHOR_PREFIX,
    VERIFY_BATCH,
    Anchor,
    AnchorFileError,
    AnchorResult,
    anchor_line,
    anchor_path,
    check_anchors,
    current_app_or_none,
    naive_utc,
    read_anchors,
    write_anchor,
)
from portal.storage.audit_chain import (
    GENESIS_HASH,
    HEAD_SETTING,
    AuditChainError,
    VerifyResult,
    canonical,
    entry_hash,
    lock_head,
)
from portal.storage.models import AuditEntry, Setting, utcnow

# The action codes the product records, and what each means in plain English: the one list of them. Each means one
# thing (tests/storage/test_audit_actions.py checks that every call in portal/ names one of these).
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
    "assessment-recorded": "Recorded a case's severity assessment",
    "outcome-recorded": "Recorded a case's outcome, which resolves it",
    "outcome-proposed": "Proposed an outcome that takes effect only when a second supervisor agrees",
    "outcome-sent-back": "Sent a proposed outcome back to its handler, with reasons",
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
    "audit-rekeyed": "Re-chained the audit trail under the audit key",
    "view-summary": "Saw a case's summary on a queue page",
    "conflict-declared": "Declared a conflict of interest on a case",
    "conflict-cleared": "Cleared a name match as a namesake",
    "revoke-queue": "Removed an officer from a queue",
    "queue-key-rotated": "Rotated a queue's key pair",
    "queue-key-rewrapped": "Re-wrapped a queue's cases to its current key",
    "escalated": "Escalated a late case to the next step (send-reminders)",
    "review-requested": "The reporter asked for the handling to be reviewed",
    "reg19-notice-recorded": "Recorded a Regulation 19 notice as given",
    "view-subject": "Opened a person's history of concerns",
}

KEY_INFO = "portal.audit_key"  # Session.info key: the audit key for that session (bytes)

log = logging.getLogger("portal.audit")

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

_KEY_SEPARATORS = re.compile(r"[-. ]")
_REPORT_ID_MAX = AuditEntry.__table__.c.report_id.type.length
_QUEUE_CODE_MAX = AuditEntry.__table__.c.queue_code.type.length


# ---------------------------------------------------------------- the key

_FROM_CONTEXT: Any = object()  # "not given": look in the session's info, then the Flask app
_warned_unkeyed = False


def _plain_session(session: Session) -> Session:
    return session() if isinstance(session, scoped_session) else session  # type: ignore[operator]


def _reload_secrets(app: Any) -> Any:
    """A worker started before `flask portal init` added the audit key picks it up here, so that nothing
    is appended without the key once the trail has been re-chained under it."""
    from portal.storage import instance_secrets

    try:
        loaded = instance_secrets.load(app.instance_path)
    except Exception:  # unreadable now: keep going as before, the warning below says why
        return None
    if loaded is not None and loaded.audit_key is not None:
        app.extensions["portal_secrets"] = loaded
        if "PORTAL_SECRETS" in app.config:  # the same secrets, handed to domain modules with the config
            app.config["PORTAL_SECRETS"] = loaded
        return loaded.audit_key
    return None


def audit_key(session: Session, key: bytes | None = _FROM_CONTEXT) -> bytes | None:
    """The key to chain with: `key` if given, else the session's, else the app's (None: not keyed yet)."""
    if key is not _FROM_CONTEXT:
        return key
    info = session.info
    if KEY_INFO in info:
        return info[KEY_INFO]
    app = current_app_or_none()
    if app is None:
        raise AuditChainError(
            f"no audit key: outside a Flask app context pass key= or set the session's info[{KEY_INFO!r}]"
        )
    server = app.extensions.get("portal_secrets")
    found = server.audit_key if server is not None else None
    if found is None and server is not None:
        found = _reload_secrets(app)
    if found is None:
        global _warned_unkeyed
        if not _warned_unkeyed:
            _warned_unkeyed = True
            log.warning(
                "the audit trail is not keyed: this deployment has no audit key yet, so a rewrite of "
                "the whole chain would not be detected; run `flask portal init` to add one"
            )
    return found


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
        encoded = canonical(detail)
    except ValueError as error:  # NaN or infinity
        raise ValueError(f"audit detail is not plain JSON: {error}") from error
    if len(encoded) > MAX_DETAIL_BYTES:
        raise ValueError(f"audit detail is larger than {MAX_DETAIL_BYTES} bytes")
    return json.loads(encoded)


@dataclass(frozen=True)
class Pending:
    """One entry to append with `record_many`: the same fields as `record`'s."""

    action: str
    officer_id: int | None = None
    report_id: str | None = None
    queue_code: str | None = None
    detail: Mapping[str, Any] | None = None


def _checked(entry: Pending) -> dict[str, Any]:
    """`entry` validated (see `record`); its detail cleaned."""
    if entry.action not in ACTIONS:
        raise ValueError(f"unknown audit action {entry.action!r}")
    officer_id, report_id, queue_code = entry.officer_id, entry.report_id, entry.queue_code
    if officer_id is not None and (isinstance(officer_id, bool) or not isinstance(officer_id, int)):
        raise ValueError("officer_id must be an integer")
    if report_id is not None and (not isinstance(report_id, str) or len(report_id) > _REPORT_ID_MAX):
        raise ValueError(f"report_id must be a string of at most {_REPORT_ID_MAX} characters")
    if queue_code is not None and (not isinstance(queue_code, str) or len(queue_code) > _QUEUE_CODE_MAX):
        raise ValueError(f"queue_code must be a string of at most {_QUEUE_CODE_MAX} characters")
    return _clean_detail(entry.detail)


def record(
    session: Session,
    action: str,
    *,
    officer_id: int | None = None,
    report_id: str | None = None,
    queue_code: str | None = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
    key: bytes | None = _FROM_CONTEXT,
) -> AuditEntry:
    """Append one entry to the audit trail inside the caller's transaction (the caller commits).

    `detail` holds codes and ids only (see the module's docstring); anything else raises ValueError, as
    does an action not in `ACTIONS`. Waits for any other transaction that is appending to finish. `key`
    is the audit key (by default the session's or the app's, see `audit_key`). Once the caller's
    transaction commits, the new head is anchored (see `write_anchor`).
    """
    pending = Pending(action, officer_id, report_id, queue_code, detail)
    return record_many(session, [pending], at=at, key=key)[0]


def record_many(
    session: Session, pending: Sequence[Pending], *, at: datetime | None = None, key: bytes | None = _FROM_CONTEXT
) -> list[AuditEntry]:
    """Append several entries, in order, as `record` appends one: each its own link of the chain, but one
    lock, one flush, one move of the head and one anchor for all (a queue page's fifty openings cost about
    one entry's round trips, not fifty). Every entry is checked before anything is written."""
    checked = [(entry, _checked(entry)) for entry in pending]
    if not checked:
        return []
    when = naive_utc(at or utcnow())
    previous = lock_head(session)
    chain_key = audit_key(session, key)  # after the lock: a key added meanwhile by `init` is seen
    entries = []
    for entry, clean in checked:
        fields = {
            "at": when,
            "officer_id": entry.officer_id,
            "action": entry.action,
            "report_id": entry.report_id,
            "queue_code": entry.queue_code,
            "detail": clean,
        }
        digest = entry_hash(previous, key=chain_key, **fields)
        entries.append(AuditEntry(**fields, previous_hash=previous, entry_hash=digest))
        previous = digest
    session.add_all(entries)
    table = Setting.__table__
    session.execute(update(table).where(table.c.name == HEAD_SETTING).values(value=previous.hex()))
    session.flush()
    if chain_key is not None:  # an unkeyed head is not worth anchoring: it changes when the trail is re-keyed
        last = entries[-1]
        audit_anchors.anchor_on_commit(
            _plain_session(session), anchor_line(last.id, when, previous), anchor_path(session)
        )
    return entries


def verify_chain(
    session: Session, *, batch_size: int = VERIFY_BATCH, key: bytes | None = _FROM_CONTEXT
) -> VerifyResult:
    """Check the whole chain and its head (portal.storage.audit_chain.verify) under the audit key: `key`, by
    default the session's or the app's (see `audit_key`); with none, the plain SHA-256 chain (`keyed=False`)."""
    return audit_chain.verify(session, audit_key(session, key), batch_size=batch_size)


def rekey(session: Session, key: bytes, *, batch_size: int = VERIFY_BATCH) -> int:
    """Re-chain an unkeyed trail under `key`, once, inside the caller's transaction (the caller commits).

    Takes the append lock first, then checks the unkeyed (SHA-256) chain: if it is broken, raises
    AuditChainError and changes nothing, since re-chaining it would hide the break. Otherwise recomputes
    every entry's link and hash under the key, moves the head, and records `audit-rekeyed` (with the
    entry count and the old unkeyed head) as the first entry of the keyed chain's new history. Returns
    the number of entries re-chained (0 for an empty trail, when nothing is recorded).

    `flask portal init` calls it in the same run that generates the audit key, and only then: whether a
    trail needs re-chaining is never read from the database, where a writer could fake it.
    """
    if not key:
        raise ValueError("rekey needs the audit key")
    lock_head(session)
    unkeyed = verify_chain(session, batch_size=batch_size, key=None)
    if not unkeyed.ok:
        where = f" at entry {unkeyed.first_broken_id}" if unkeyed.first_broken_id is not None else ""
        raise AuditChainError(
            f"the unkeyed audit trail is broken{where} ({unkeyed.reason}); it was not re-chained under "
            "the audit key, which would hide that: investigate, and restore the trail from a backup"
        )
    if unkeyed.checked == 0:
        return 0
    table = AuditEntry.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(previous_hash=bindparam("new_previous"), entry_hash=bindparam("new_hash"))
    )
    previous = GENESIS_HASH
    count = 0
    batch: list[dict[str, Any]] = []
    last_id: int | None = None
    while True:
        rows = list(audit_chain.rows_once(session, batch_size, last_id))
        for row in rows:
            digest = audit_chain.row_hash(row, previous, key)
            batch.append({"row_id": row.id, "new_previous": previous, "new_hash": digest})
            previous = digest
            last_id = row.id
            count += 1
        if batch:
            session.execute(statement, batch)
            batch = []
        if len(rows) < batch_size:
            break
    settings = Setting.__table__
    session.execute(update(settings).where(settings.c.name == HEAD_SETTING).values(value=previous.hex()))
    session.expire_all()  # entries the session holds still carry their old hashes
    record(session, "audit-rekeyed", key=key, detail={"entries": count, "unkeyed_head": unkeyed.head})
    return count


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
    "ANCHOR_FILENAME",
    "ANCHOR_INFO",
    "ANCHOR_PREFIX",
    "Anchor",
    "AnchorFileError",
    "AnchorResult",
    "AuditChainError",
    "FORBIDDEN_DETAIL_KEYS",
    "GENESIS_HASH",
    "HEAD_SETTING",
    "VerifyResult",
    "anchor_line",
    "anchor_path",
    "audit_key",
    "check_anchors",
    "entries",
    "entry_hash",
    "read_anchors",
    "record",
    "rekey",
    "verify_chain",
    "write_anchor",
]
