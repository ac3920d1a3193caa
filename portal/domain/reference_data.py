"""First-time set-up: the command list, one queue per handling unit with its key pair, the routing rules; and the
specialist queues an administrator adds later (a team tied to no command, which the report form never lists)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core import crypto, routing
from portal.sealing import queue_keys
from portal.storage.models import Command, Officer, Queue, RoutingRule

# The Met's twelve BCUs, then the specialist commands (docs/SPEC.md). Data: operators may change it.
COMMANDS: list[tuple[str, str]] = [
    ("CE", "Central East"),
    ("CN", "Central North"),
    ("CS", "Central South"),
    ("CW", "Central West"),
    ("EA", "East Area"),
    ("NA", "North Area"),
    ("NE", "North East"),
    ("NW", "North West"),
    ("SE", "South East"),
    ("SN", "South"),
    ("SW", "South West"),
    ("WA", "West Area"),
    ("MO", "Met Operations"),
    ("SC", "Specialist Operations"),
    ("FS", "Frontline Policing HQ"),
    ("PS", "Professionalism (DPS)"),
    ("CP", "Central Services"),
]
# Professionalism is DPS itself: it gets no separate PSU queue.
COMMANDS_WITHOUT_PSU = {"PS"}


def new_queue(code: str, name: str, command_code: str | None, recovery_public_key: bytes) -> Queue:
    """A queue with a fresh X25519 key pair; the private half is kept only sealed to the recovery key."""
    return _queue_and_key(code, name, command_code, recovery_public_key)[0]


def _queue_and_key(code: str, name: str, command_code: str | None, recovery_public_key: bytes) -> tuple[Queue, bytes]:
    pair = crypto.generate_keypair()
    queue = Queue(
        code=code,
        name=name,
        command_code=command_code,
        public_key=pair.public,
        private_key_for_recovery=crypto.seal_to(
            recovery_public_key, pair.private, context=queue_keys.key_context(code, 1)
        ),
    )
    return queue, pair.private


# ---------------------------------------------------------------- specialist queues

SPECIALIST_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,7}(-[A-Z0-9]{1,7})?$")
MAX_QUEUE_NAME = 100


class QueueError(ValueError):
    """A specialist queue that cannot be made as asked; `field` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_specialist(session: Session, code: str, name: str) -> tuple[str, str]:
    """The code and name, cleaned; raises QueueError naming the first field that is wrong."""
    code = (code or "").strip().upper()
    name = " ".join((name or "").split())
    if not SPECIALIST_CODE.fullmatch(code):
        raise QueueError("code", "A queue code is 2 to 8 letters or digits, starting with a letter, such as DASO.")
    if code == routing.DPS or code.startswith("PSU-"):
        raise QueueError("code", f"{code} is kept for DPS and the commands' units: choose another code.")
    if session.scalar(select(Queue.id).where(Queue.code == code)) is not None:
        raise QueueError("code", f"There is already a queue called {code}; choose another code.")
    if not name:
        raise QueueError("name", "Enter the queue's name, such as Domestic Abuse and Sexual Offences.")
    if len(name) > MAX_QUEUE_NAME:
        raise QueueError("name", f"Keep the name to {MAX_QUEUE_NAME} characters or fewer.")
    return code, name


def create_specialist_queue(
    session: Session,
    code: str,
    name: str,
    members: Sequence[Officer],
    granted_by: Officer | None,
    recovery_public_key: bytes,
) -> Queue:
    """A queue tied to no command (so never on the report form), with a fresh key pair: the recovery key holds
    it, and each member is granted it (portal.sealing.queue_keys.grant) while it is in memory; it is forgotten
    on return, as a rotation forgets its new key. Disabled accounts are not granted. The caller commits."""
    code, name = check_specialist(session, code, name)
    queue, private = _queue_and_key(code, name, None, recovery_public_key)
    session.add(queue)
    session.flush()
    for officer in members:
        if not officer.disabled:
            queue_keys.grant(session, queue, {queue.key_generation or 1: private}, officer, granted_by)
    session.flush()
    return queue


def specialist_queues(session: Session) -> list[Queue]:
    """The queues tied to no command (DPS aside), by code: routing-rule targets the report form never lists."""
    return list(
        session.scalars(
            select(Queue).where(Queue.command_code.is_(None), Queue.code != routing.DPS).order_by(Queue.code)
        )
    )


def ensure_reference_data(session: Session, recovery_public_key: bytes) -> dict[str, int]:
    """Create what is missing (commands, queues, rules); never changes what exists. Returns counts made."""
    made = {"commands": 0, "queues": 0, "rules": 0}
    existing_commands = set(session.scalars(select(Command.code)))
    for code, name in COMMANDS:
        if code not in existing_commands:
            session.add(Command(code=code, name=name, active=True))
            made["commands"] += 1
    session.flush()
    existing_queues = set(session.scalars(select(Queue.code)))
    wanted = [(routing.DPS, "Directorate of Professional Standards", "PS")] + [
        (f"PSU-{code}", f"{name} Professional Standards Unit", code)
        for code, name in COMMANDS
        if code not in COMMANDS_WITHOUT_PSU
    ]
    for code, name, command in wanted:
        if code not in existing_queues:
            session.add(new_queue(code, name, command, recovery_public_key))
            made["queues"] += 1
    if session.scalar(select(RoutingRule.id).limit(1)) is None:
        for position, rule in enumerate(routing.default_rules(), start=1):
            session.add(
                RoutingRule(
                    position=position,
                    kind=rule.kind,
                    params=rule.params,
                    target=rule.target,
                    reason=rule.reason,
                    enabled=rule.enabled,
                )
            )
            made["rules"] += 1
    session.flush()
    return made
