"""First-time set-up: the command list, one queue per handling unit with its key pair, the routing rules."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import crypto, queue_keys, routing
from .models import Command, Queue, RoutingRule

# The Met's twelve BCUs, then the specialist commands (shared/SPEC.md). Data: operators may change it.
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
    pair = crypto.generate_keypair()
    return Queue(
        code=code,
        name=name,
        command_code=command_code,
        public_key=pair.public,
        private_key_for_recovery=crypto.seal_to(
            recovery_public_key, pair.private, context=queue_keys.key_context(code, 1)
        ),
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
