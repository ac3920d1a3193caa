"""What the `flask portal` commands share: the one way to stop with a reason, the server's secrets (or the reason
they are missing), the recovery key from a --recovery-key option, and granting a queue with it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
from flask import current_app

from portal.domain import settings
from portal.sealing import queue_keys, recovery
from portal.storage.instance_secrets import ServerSecrets
from portal.storage.models import Officer, Queue, db


def fail(message: str) -> NoReturn:
    """Stop the command: a one-line reason and a non-zero exit."""
    raise click.ClickException(message)


def server_secrets() -> ServerSecrets:
    """The server's secrets; the command stops if the portal is not initialised."""
    try:
        return settings.server_secrets(current_app.extensions)
    except settings.NotInitialised as exc:
        fail(str(exc))


def load_recovery_option(path: Path | None) -> bytes | None:
    """The recovery private key from a --recovery-key option, if given; a clear error if it is unreadable."""
    if path is None:
        return None
    try:
        return recovery.load_recovery_key(path)
    except ValueError as exc:
        fail(str(exc))


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        fail("no password given")
    return password


def grant_with_recovery(officer: Officer, queue: Queue, recovery_private: bytes) -> None:
    """Every generation of the queue's key, so that cases not yet re-wrapped to the current one open too."""
    keys = queue_keys.recovery_generation_keys(db.session, queue, recovery_private)
    queue_keys.grant(db.session, queue, keys, officer, None)
    queue_keys.drop_unused_generations(db.session, queue)
