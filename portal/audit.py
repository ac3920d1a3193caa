"""The audit trail: append-only, chained under a key the database does not hold, anchored outside it.

Every entry's hash is HMAC-SHA256, under the server's *audit key*, over the previous entry's hash
followed by a canonical JSON encoding of the entry's own fields, so changing, removing, reordering or
inserting a row breaks the chain at that row. The hash of the newest entry (the *head*) is also kept in
the `settings` row named `audit.head`, updated in the same transaction as each append: deleting entries
from the end of the chain leaves the head pointing at an entry that is gone, and `verify_chain` reports it.

Why keyed and anchored. A plain hash chain only catches an edit: whoever can write to the database can
delete rows and recompute every hash and the head, and the chain verifies again. The audit key lives with
the server's secrets (`PORTAL_AUDIT_KEY`, `PORTAL_AUDIT_KEY_FILE` or instance/secrets.json; see
portal.secrets), never in the database, so a database writer cannot make a hash that verifies. And after
each commit that added entries, one line per entry (`audit-anchor <id> <time> <head>`) is appended to an
anchor file outside the database (`PORTAL_AUDIT_ANCHOR`, default instance/audit-anchor.log; O_APPEND,
mode 0600) and logged to the `portal.audit.anchor` logger, for shipping to syslog or a log store that
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

All entries must be written through `record`.

This module takes a SQLAlchemy session and plain values; it knows nothing of Flask requests (it reads
the app's secrets and configuration only when it is not given a key or an anchor path).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import bindparam, event, select, update
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

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
    "audit-rekeyed": "Re-chained the audit trail under the audit key",
    "view-summary": "Saw a case's summary on a queue page",
    "conflict-declared": "Declared a conflict of interest on a case",
    "conflict-cleared": "Cleared a name match as a namesake",
    "revoke-queue": "Removed an officer from a queue",
    "queue-key-rotated": "Rotated a queue's key pair",
    "queue-key-rewrapped": "Re-wrapped a queue's cases to its current key",
}

HEAD_SETTING = "audit.head"  # settings row holding the hex hash of the newest entry; not an operator setting
GENESIS_HASH = bytes(32)  # the previous_hash of the first entry
KEY_INFO = "portal.audit_key"  # Session.info key: the audit key for that session (bytes)
ANCHOR_INFO = "portal.audit_anchor"  # Session.info key: the anchor file for that session (a path, or None)
ANCHOR_FILENAME = "audit-anchor.log"  # under the instance folder unless PORTAL_AUDIT_ANCHOR says otherwise
ANCHOR_PREFIX = "audit-anchor"
_PENDING_INFO = "portal.audit_pending_anchors"

log = logging.getLogger("portal.audit")
anchor_log = logging.getLogger("portal.audit.anchor")

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


class Anchor(NamedTuple):
    """One line of the anchor file: the head of the chain as it was when entry `entry_id` committed."""

    entry_id: int
    at: str
    head: str  # hex
    line: int = 0  # its line number in the file read (0 when made here)


@dataclass(frozen=True)
class AnchorResult:
    ok: bool
    checked: int  # anchored heads compared with the trail
    mismatch_id: int | None  # the lowest anchored entry whose head the trail does not match
    reason: str
    last_id: int | None = None  # the highest anchored entry id seen


def _canonical(value: Any) -> bytes:
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
    message = bytes(previous_hash) + _canonical(fields)
    if key is None:
        return hashlib.sha256(message).digest()
    return hmac.new(bytes(key), message, hashlib.sha256).digest()


# ---------------------------------------------------------------- the key and the anchor file

_FROM_CONTEXT: Any = object()  # "not given": look in the session's info, then the Flask app
_warned_unkeyed = False


def _plain_session(session: Session) -> Session:
    return session() if isinstance(session, scoped_session) else session  # type: ignore[operator]


def _app() -> Any:
    """The current Flask app, or None outside an app context (imported late: no Flask needed otherwise)."""
    try:
        from flask import current_app, has_app_context
    except ImportError:  # pragma: no cover - Flask is a dependency of the portal
        return None
    return current_app._get_current_object() if has_app_context() else None  # type: ignore[attr-defined]


def _reload_secrets(app: Any) -> Any:
    """A worker started before `flask portal init` added the audit key picks it up here, so that nothing
    is appended without the key once the trail has been re-chained under it."""
    from . import secrets

    try:
        loaded = secrets.load(app.instance_path)
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
    app = _app()
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


def anchor_path(session: Session) -> str | None:
    """Where anchor lines go: the session's `info[ANCHOR_INFO]`, else `PORTAL_AUDIT_ANCHOR` (app config,
    then environment), else instance/audit-anchor.log; None (logger only) outside an app context."""
    info = session.info
    if ANCHOR_INFO in info:
        return info[ANCHOR_INFO]
    app = _app()
    if app is None:
        return None
    configured = app.config.get("PORTAL_AUDIT_ANCHOR") or os.environ.get("PORTAL_AUDIT_ANCHOR")
    return str(configured) if configured else os.path.join(app.instance_path, ANCHOR_FILENAME)


def anchor_line(entry_id: int, at: datetime, head: bytes | str) -> str:
    """`audit-anchor <id> <UTC time>Z <hex head>`: one line, no content, nothing secret."""
    head_hex = head if isinstance(head, str) else bytes(head).hex()
    return f"{ANCHOR_PREFIX} {entry_id} {_naive_utc(at).isoformat(timespec='microseconds')}Z {head_hex}"


def write_anchor(line: str, path: str | Path | None) -> bool:
    """Log the line to `portal.audit.anchor` and append it to the anchor file in one write (O_APPEND,
    created with mode 0600). Never raises: a failure is logged in one line, without the line's data."""
    anchor_log.info(line)  # logging's handlers report their own failures; they never raise here
    if path is None:
        return True
    data = (line + "\n").encode("ascii")
    try:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, 0o600)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError("short write")
        return True
    except Exception as error:
        log.error("audit anchor: could not append to the anchor file (%s)", type(error).__name__)
        return False


def _is_within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING_INFO)
    if pending:
        pending[:] = [item for item in pending if not _is_within(item[0], previous_transaction)]


@event.listens_for(Session, "after_commit")
def _anchor_committed(session: Session) -> None:
    pending = session.info.pop(_PENDING_INFO, None)
    for _transaction, line, path in pending or ():
        write_anchor(line, path)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_the_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (anchored above) or not: nothing is carried over
        session.info.pop(_PENDING_INFO, None)


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
    key: bytes | None = _FROM_CONTEXT,
) -> AuditEntry:
    """Append one entry to the audit trail inside the caller's transaction (the caller commits).

    `detail` holds codes and ids only (see the module's docstring); anything else raises ValueError, as
    does an action not in `ACTIONS`. Waits for any other transaction that is appending to finish. `key`
    is the audit key (by default the session's or the app's, see `audit_key`). Once the caller's
    transaction commits, the new head is anchored (see `write_anchor`).
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
    chain_key = audit_key(session, key)  # after the lock: a key added meanwhile by `init` is seen
    digest = entry_hash(
        previous,
        key=chain_key,
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
    if chain_key is not None:  # an unkeyed head is not worth anchoring: it changes when the trail is re-keyed
        plain = _plain_session(session)
        transaction = plain.get_nested_transaction() or plain.get_transaction()
        pending = plain.info.setdefault(_PENDING_INFO, [])
        pending.append((transaction, anchor_line(entry.id, when, digest), anchor_path(session)))
    return entry


_ROW_COLUMNS = ("id", "at", "officer_id", "action", "report_id", "queue_code", "detail", "previous_hash", "entry_hash")


def _rows_once(session: Session, batch_size: int, after_id: int | None) -> list[Any]:
    """One keyset batch of plain rows after `after_id` (never the session's copies of the entries)."""
    table = AuditEntry.__table__
    query = select(*[table.c[name] for name in _ROW_COLUMNS]).order_by(table.c.id).limit(batch_size)
    if after_id is not None:
        query = query.where(table.c.id > after_id)
    return list(session.execute(query).all())


def _rows(session: Session, batch_size: int, after_id: int | None = None) -> Iterable[Any]:
    """Plain rows in id order, read in keyset batches so that a long trail is never held in memory."""
    while True:
        rows = _rows_once(session, batch_size, after_id)
        yield from rows
        if len(rows) < batch_size:
            return
        after_id = rows[-1].id


def _row_hash(row: Any, previous: bytes, key: bytes | None) -> bytes:
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


def verify_chain(
    session: Session, *, batch_size: int = VERIFY_BATCH, key: bytes | None = _FROM_CONTEXT
) -> VerifyResult:
    """Recompute every entry's hash in id order, check each link and that the head is the last entry.

    Under the audit key (`key`, by default the session's or the app's); with no key (`key=None`, or a
    deployment without one) the plain SHA-256 chain is checked and the result says `keyed=False`.
    Reads plain rows in keyset batches, so a long trail is never held in memory, and never trusts
    entries the session may already hold.
    """
    chain_key = audit_key(session, key)
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
        for row in _rows(session, batch_size, last_id):
            if bytes(row.previous_hash) != expected_previous:
                return VerifyResult(
                    False,
                    checked,
                    row.id,
                    "its previous hash is not the hash of the entry before it: an entry before it was "
                    "removed, inserted or reordered",
                    keyed=keyed,
                )
            recomputed = _row_hash(row, expected_previous, chain_key)
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
    _lock_head(session)
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
        rows = list(_rows_once(session, batch_size, last_id))
        for row in rows:
            digest = _row_hash(row, previous, key)
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


# ---------------------------------------------------------------- checking the anchors

_ANCHOR_LINE = re.compile(rf"{ANCHOR_PREFIX} (\d+) (\S+) ([0-9a-f]{{64}})\s*$")


class AnchorFileError(ValueError):
    """A line of the anchor file is not an anchor line."""


def read_anchors(lines: Iterable[str]) -> Iterable[Anchor]:
    """Anchors from the lines of an anchor file, or of a log holding only `portal.audit.anchor` lines
    (whatever a log handler put before `audit-anchor` is ignored). Blank lines are skipped; any other
    line raises AnchorFileError naming its number, never its content."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        match = _ANCHOR_LINE.search(text)
        if match is None:
            raise AnchorFileError(f"line {number} is not an anchor line")
        yield Anchor(int(match.group(1)), match.group(2), match.group(3), number)


def check_anchors(session: Session, anchors: Iterable[Anchor], *, batch_size: int = VERIFY_BATCH) -> AnchorResult:
    """Compare each anchored head with the trail's hash of that entry.

    Every anchored entry must still be in the trail with the anchored hash; in particular the trail must
    reach at least the last anchored entry. The lowest anchored entry that does not match is reported.
    Streams the anchors in batches (an anchor file holds a line per entry). Raises AnchorFileError for a
    line that is not an anchor line.
    """
    table = AuditEntry.__table__
    checked = 0
    last_id: int | None = None
    mismatch: tuple[int, str] | None = None

    def compare(batch: list[Anchor]) -> None:
        nonlocal mismatch
        ids = sorted({anchor.entry_id for anchor in batch})
        stored = dict(session.execute(select(table.c.id, table.c.entry_hash).where(table.c.id.in_(ids))).all())
        for anchor in batch:
            found = stored.get(anchor.entry_id)
            if found is not None and hmac.compare_digest(bytes(found).hex(), anchor.head):
                continue
            if mismatch is not None and mismatch[0] <= anchor.entry_id:
                continue
            if found is None:
                reason = (
                    f"the trail has no entry {anchor.entry_id}, which was anchored (line {anchor.line}): it was removed"
                )
            else:
                reason = (
                    f"the trail's hash of entry {anchor.entry_id} is not the head anchored then (line "
                    f"{anchor.line}): the chain was rewritten"
                )
            mismatch = (anchor.entry_id, reason)

    batch: list[Anchor] = []
    for anchor in anchors:
        batch.append(anchor)
        checked += 1
        last_id = anchor.entry_id if last_id is None else max(last_id, anchor.entry_id)
        if len(batch) >= batch_size:
            compare(batch)
            batch = []
    if batch:
        compare(batch)
    if mismatch is not None:
        return AnchorResult(False, checked, mismatch[0], mismatch[1], last_id)
    if checked == 0:
        return AnchorResult(True, 0, None, "no anchored heads to compare", None)
    newest = session.execute(select(table.c.id).order_by(table.c.id.desc()).limit(1)).scalar_one_or_none()
    if newest is None or newest < (last_id or 0):  # cannot happen when every anchored entry was found
        return AnchorResult(False, checked, last_id, "the trail ends before the last anchored entry", last_id)
    return AnchorResult(True, checked, None, "every anchored head matches the trail", last_id)


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
