"""Loading many rows at once (portal.demo): the way a database is bulk-loaded, inside one transaction.

Row by row, every insert into `reports` fires its triggers (the figures' running totals) and goes
into fifteen secondary indexes whose keys arrive in random order (blind indexes are HMACs). For a load of a
million cases that is most of the time. So, for the load's own transaction:

- the triggers on the loaded tables are off, and what they would have done is done once at the end: the
  running totals are worked out from the cases (the caller's `rebuild`, portal.oversight.rollups.rebuild);
  until then they are marked as not to be trusted;
- the secondary indexes that enforce nothing (not unique, not a constraint) are dropped and built again at the
  end from their own stored definitions, by sorting, as after any bulk load. Primary keys and unique indexes
  stay, so every row is still checked as it arrives.

All of it is DDL inside the caller's transaction, on both databases: if the load fails and is rolled back,
the triggers and indexes are back as they were, and no other connection ever sees them gone. On PostgreSQL the
DDL locks the tables (ACCESS EXCLUSIVE) until the commit: the seed runs on a fresh database, with nobody waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.orm import Session

TABLES = ("reports", "case_events", "workforce")


def _catalog(connection: Connection, sql: str, tables: Sequence[str]) -> list[Any]:
    """A catalog query with the table names as an expanding parameter (`IN :tables`)."""
    statement = text(sql).bindparams(bindparam("tables", expanding=True))
    return list(connection.execute(statement, {"tables": list(tables)}).all())


@contextmanager
def bulk_load(
    session: Session, *, rebuild: Callable[[Session], None], tables: Sequence[str] = TABLES
) -> Iterator[None]:
    """Load inside this block; at its end `rebuild` does once what the loaded tables' triggers would have done."""
    assert set(tables) <= set(TABLES), tables  # names go into SQL: only ours
    connection = session.connection()
    # First a write, in the caller's transaction: pysqlite opens its transaction only before a write, and DDL run
    # outside one would be committed at once (a failed load would then leave the triggers and indexes gone). The
    # write says what is true while the triggers are off: the running totals are not to be trusted (the
    # rebuild marks them trusted again).
    connection.execute(text("UPDATE figures_rollup_state SET valid = false WHERE id = 1"))
    if session.get_bind().dialect.name == "postgresql":
        triggers = _catalog(
            connection,
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relname IN :tables AND c.relnamespace = to_regnamespace(current_schema()) "
            "AND NOT t.tgisinternal AND t.tgenabled <> 'D' ORDER BY 1, 2",
            tables,
        )
        indexes = _catalog(
            connection,
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = current_schema() AND i.tablename IN :tables "
            "AND i.indexdef NOT LIKE 'CREATE UNIQUE %' "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname) ORDER BY 1",
            tables,
        )
        for table, name in triggers:
            connection.exec_driver_sql(f'ALTER TABLE {table} DISABLE TRIGGER "{name}"')
        for name, _definition in indexes:
            connection.exec_driver_sql(f'DROP INDEX "{name}"')
        yield
        # Room to sort each index in memory; the builds may use parallel workers.
        connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        for _name, definition in indexes:
            connection.exec_driver_sql(definition)
        for table, name in triggers:
            connection.exec_driver_sql(f'ALTER TABLE {table} ENABLE TRIGGER "{name}"')
    else:
        # Triggers and the indexes made by CREATE INDEX (those behind a primary key or UNIQUE have no SQL).
        stored = _catalog(
            connection,
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('trigger', 'index') "
            "AND tbl_name IN :tables AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE %' ORDER BY type, name",
            tables,
        )
        for kind, name, _sql in stored:
            connection.exec_driver_sql(f'DROP {kind.upper()} "{name}"')
        yield
        for _kind, _name, sql in stored:  # indexes first, then the triggers
            connection.exec_driver_sql(sql)
    rebuild(session)


__all__ = ["bulk_load"]
