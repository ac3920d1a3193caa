"""What the intake tests share: the SQL statements a block of code sends, as the driver is given them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from portal.storage.models import db


@contextmanager
def statements(app: Any) -> Iterator[list[str]]:
    """Every statement sent on the app's engine inside the block, on one line each."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
