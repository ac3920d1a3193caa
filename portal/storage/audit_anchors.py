"""The audit trail's anchors: after each commit that added entries, one line per entry (`audit-anchor <id> <time>
<head>`) appended to a file outside the database and logged to `portal.audit.anchor`, for a store database
administrators cannot rewrite; and `check_anchors`, which compares anchored heads with the trail
(`flask portal verify-audit --anchor FILE`). portal.storage.audit, which appends the entries, says why.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from portal.storage.models import AuditEntry

ANCHOR_INFO = "portal.audit_anchor"  # Session.info key: the anchor file for that session (a path, or None)
ANCHOR_FILENAME = "audit-anchor.log"  # under the instance folder unless PORTAL_AUDIT_ANCHOR says otherwise
ANCHOR_PREFIX = "audit-anchor"
VERIFY_BATCH = 1000  # rows (or anchors) read at a time when checking the trail
_PENDING_INFO = "portal.audit_pending_anchors"

log = logging.getLogger("portal.audit")
anchor_log = logging.getLogger("portal.audit.anchor")


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


def current_app_or_none() -> Any:
    """The current Flask app, or None outside an app context (imported late: no Flask needed otherwise)."""
    try:
        from flask import current_app, has_app_context
    except ImportError:  # pragma: no cover - Flask is a dependency of the portal
        return None
    return current_app._get_current_object() if has_app_context() else None  # type: ignore[attr-defined]


def naive_utc(at: datetime) -> datetime:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at


# ---------------------------------------------------------------- writing the anchors


def anchor_path(session: Session) -> str | None:
    """Where anchor lines go: the session's `info[ANCHOR_INFO]`, else `PORTAL_AUDIT_ANCHOR` (app config,
    then environment), else instance/audit-anchor.log; None (logger only) outside an app context."""
    info = session.info
    if ANCHOR_INFO in info:
        return info[ANCHOR_INFO]
    app = current_app_or_none()
    if app is None:
        return None
    configured = app.config.get("PORTAL_AUDIT_ANCHOR") or os.environ.get("PORTAL_AUDIT_ANCHOR")
    return str(configured) if configured else os.path.join(app.instance_path, ANCHOR_FILENAME)


def anchor_line(entry_id: int, at: datetime, head: bytes | str) -> str:
    """`audit-anchor <id> <UTC time>Z <hex head>`: one line, no content, nothing secret."""
    head_hex = head if isinstance(head, str) else bytes(head).hex()
    return f"{ANCHOR_PREFIX} {entry_id} {naive_utc(at).isoformat(timespec='microseconds')}Z {head_hex}"


def write_anchor(line: str, path: str | Path | None) -> bool:
    """Log the line to `portal.storage.audit.anchor` and append it to the anchor file in one write (O_APPEND,
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


def anchor_on_commit(session: Session, line: str, path: str | None) -> None:
    """Write the anchor line once the session's current transaction commits; never if it is rolled back (a
    savepoint's rollback included)."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING_INFO, []).append((transaction, line, path))


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


# ---------------------------------------------------------------- checking the anchors

_ANCHOR_LINE = re.compile(rf"{ANCHOR_PREFIX} (\d+) (\S+) ([0-9a-f]{{64}})\s*$")


class AnchorFileError(ValueError):
    """A line of the anchor file is not an anchor line."""


def read_anchors(lines: Iterable[str]) -> Iterable[Anchor]:
    """Anchors from the lines of an anchor file, or of a log holding only `portal.storage.audit.anchor` lines
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
