"""What the administration views share: the role they need, and the audit entry every change makes."""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from sqlalchemy import select

from portal.storage import audit
from portal.storage.models import Command, db

ADMIN = "admin"


def audit_change(action: str, *, queue_code: str | None = None, **detail: Any) -> None:
    """One audit entry for a change the signed-in administrator made (in the request's transaction)."""
    audit.record(db.session, action, officer_id=current_user.officer.id, queue_code=queue_code, detail=detail or None)


def active_commands() -> list[tuple[str, str]]:
    rows = db.session.execute(select(Command.code, Command.name).where(Command.active).order_by(Command.name))
    return [(code, name) for code, name in rows]
