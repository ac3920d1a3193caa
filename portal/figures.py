"""The oversight figures as last worked out, kept until the data behind them changes.

Working the figures out (portal.stats) reads every case in the period: seconds at a million cases. They change
only when a case or the workforce directory does, and the database itself counts those changes: triggers on
`reports` and `workforce` (migration 0006) bump `figures_version` in the same transaction as the change,
whatever code or tool made it. A snapshot is stored with the version it was worked out at and served only
while the version is unchanged, so what is shown is always what a fresh computation would give.

Reading the version before the figures makes this safe under concurrent writes: a change committed while the
figures are being worked out may or may not be in them, but it has moved the version past the one the
snapshot is stored with, so the snapshot is worked out again at the next request. Nothing here is content:
snapshots hold the same codes and counts as `flask portal stats --json`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .models import FiguresSnapshot, FiguresVersion, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Worked:
    """Figures, when they were worked out, and whether this request had to work them out."""

    figures: dict[str, Any]
    computed_at: datetime
    seconds: float
    fresh: bool  # worked out for this request (else read from a snapshot of the same data)


# Part of every key: a release that changes what the figures hold, or how they are worked out, raises it, so
# that no snapshot worked out by the code before is served by the code after.
FORMAT = 1


def version(session: Session) -> int | None:
    """How many changes the data behind the figures has seen (one indexed row); None if the row is missing,
    and then nothing is kept (the triggers would have nothing to bump)."""
    value = session.scalar(select(FiguresVersion.version).where(FiguresVersion.id == 1))
    return None if value is None else int(value)


def snapshot_key(**parts: Any) -> str:
    """A stable key for one set of filters (dates as ISO text, None as null), and the format of the figures."""
    named = {name: None if value is None else str(value) for name, value in parts.items()}
    return json.dumps({"format": FORMAT, **named}, sort_keys=True)


def worked_out(session: Session, key: str, work: Callable[[], dict[str, Any]]) -> Worked:
    """The figures for `key`: the snapshot if nothing has changed since it was worked out, else `work()`'s,
    stored for next time. `work` must return JSON-ready figures; they come back through JSON either way, so
    a caller sees the same types whether or not they were just worked out."""
    at_version = version(session)
    if at_version is not None:
        row = session.execute(
            select(FiguresSnapshot.figures, FiguresSnapshot.computed_at, FiguresSnapshot.seconds).where(
                FiguresSnapshot.key == key, FiguresSnapshot.version == at_version
            )
        ).first()
        if row is not None:
            return Worked(json.loads(row.figures), row.computed_at, row.seconds, fresh=False)
    started = time.perf_counter()
    text = json.dumps(work())  # in the order worked out: the tables list groups in that order
    seconds = time.perf_counter() - started
    now = utcnow()
    if at_version is not None:  # without the version row there is nothing to tell a stale snapshot by
        _store(session, key, at_version, now, seconds, text)
    return Worked(json.loads(text), now, seconds, fresh=True)


def _store(session: Session, key: str, at_version: int, now: datetime, seconds: float, text: str) -> None:
    """Keep the snapshot, and drop those that can never be served again. Its own savepoint:
    a snapshot that cannot be stored (a lock timeout, say) costs nothing but the saving. On SQLite the savepoint
    is the whole transaction (pysqlite opens none before it), so the snapshot is stored at once."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {"key": key, "version": at_version, "computed_at": now, "seconds": seconds, "figures": text}
    statement = insert(FiguresSnapshot).values(**values)
    statement = statement.on_conflict_do_update(  # never over a snapshot of a later version
        index_elements=[FiguresSnapshot.key],
        set_={name: statement.excluded[name] for name in values if name != "key"},
        where=FiguresSnapshot.version < statement.excluded.version,
    )
    try:
        with session.begin_nested():
            # Older versions, and earlier days' (every key holds the day it counts back from): never served again.
            stale = or_(FiguresSnapshot.version < at_version, FiguresSnapshot.computed_at < now - timedelta(days=2))
            session.execute(delete(FiguresSnapshot).where(stale))
            session.execute(statement)
    except DBAPIError as exc:  # a lock timeout, say: the figures are right, only not kept
        log.warning("figures snapshot not stored (%s)", type(exc).__name__)
