"""Rows in bulk into one table, in the caller's transaction: binary COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, LargeBinary, String, insert
from sqlalchemy.orm import Session

_PG_TYPES = ((LargeBinary, "bytea"), (Boolean, "bool"), (DateTime, "timestamp"), (Date, "date"), (Integer, "int4"))


def _pg_type(column: Any) -> str:
    if isinstance(column.type, JSON):
        return "text"  # the binary form of json is its text; psycopg's json dumper would quote a str again
    for kind, name in _PG_TYPES:
        if isinstance(column.type, kind):
            return name
    if isinstance(column.type, String):
        return "text"
    raise TypeError(f"no COPY type for {column.name}")


class Writer:
    """Bulk rows into one table: binary COPY on PostgreSQL, executemany on SQLite; the caller's transaction."""

    def __init__(self, session: Session, model: Any, columns: Sequence[str]) -> None:
        self.connection = session.connection()
        self.dialect = self.connection.dialect.name
        self.table = model.__table__
        self.columns = list(columns)
        names = ", ".join(self.columns)
        if self.dialect == "postgresql":
            self.statement = f"COPY {self.table.name} ({names}) FROM STDIN (FORMAT BINARY)"
            self.types = [_pg_type(self.table.columns[c]) for c in self.columns]
        else:
            placeholders = ", ".join("?" for _ in self.columns)
            # Names from the model, never from input.
            self.statement = f"INSERT INTO {self.table.name} ({names}) VALUES ({placeholders})"  # noqa: S608

    def write(self, rows: Sequence[tuple]) -> None:
        if not rows:
            return
        raw = self.connection.connection.driver_connection
        if self.dialect == "postgresql":
            with raw.cursor() as cursor, cursor.copy(self.statement) as copy:  # type: ignore[union-attr]
                copy.set_types(self.types)
                for row in rows:
                    copy.write_row(row)
        elif self.dialect == "sqlite":
            raw.executemany(self.statement, rows)  # type: ignore[union-attr]
        else:  # another database: SQLAlchemy's executemany with the same values
            self.connection.execute(insert(self.table), [dict(zip(self.columns, r, strict=True)) for r in rows])
