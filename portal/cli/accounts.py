"""`flask portal create-user`, `grant` and `reset-password`: staff accounts, and what needs the recovery key."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.cli.common import fail, grant_with_recovery, load_recovery_option, read_password, server_secrets
from portal.core import crypto
from portal.domain import accounts
from portal.storage import audit
from portal.storage.models import Command, Officer, Queue, db


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(sorted(accounts.ROLES)))
@click.option("--staff-number", default="", help="For conflict-of-interest checks.")
@click.option("--command", "command_code", default=None, help="The officer's command code.")
@click.option("--queue", "queue_codes", multiple=True, help="Grant this queue (needs --recovery-key).")
@click.option("--recovery-key", type=click.Path(dir_okay=False, path_type=Path), help="The recovery private key file.")
@click.option("--password-stdin", is_flag=True, help="Read the initial password from standard input.")
@with_appcontext
def create_user_command(
    email: str,
    name: str,
    role: str,
    staff_number: str,
    command_code: str | None,
    queue_codes: tuple[str, ...],
    recovery_key: Path | None,
    password_stdin: bool,
) -> None:
    """Create a staff account; with --recovery-key, grant it queues."""
    server = server_secrets()
    if queue_codes and recovery_key is None:
        fail("granting queue access needs --recovery-key (or a member of the queue, in the web pages)")
    if command_code and db.session.get(Command, command_code) is None:
        fail(f"unknown command {command_code}")
    queues = []
    for code in queue_codes:
        queue = db.session.scalar(select(Queue).where(Queue.code == code))
        if queue is None:
            fail(f"unknown queue {code}")
        queues.append(queue)
    recovery_private = load_recovery_option(recovery_key)
    password = read_password(password_stdin)
    try:
        officer = accounts.create_officer(
            db.session,
            email=email,
            name=name,
            role=role,
            password=password,
            params=accounts.argon2_params(current_app.config),
            blind_index_key=server.blind_index_key,
            staff_number=staff_number,
            command_code=command_code,
        )
        for queue in queues:
            assert recovery_private is not None
            grant_with_recovery(officer, queue, recovery_private)
            audit.record(db.session, "grant-queue", queue_code=queue.code, detail={"account": officer.id})
    except accounts.AccountError as exc:
        db.session.rollback()
        fail(str(exc))
    except crypto.DecryptionError:
        db.session.rollback()
        fail("that recovery key does not open these queues")
    audit.record(db.session, "account-created", detail={"account": officer.id, "role": role})
    if queues:
        audit.record(db.session, "recovery-used", detail={"account": officer.id})
    db.session.commit()
    granted = ", ".join(q.code for q in queues) or "no queues"
    click.echo(
        f"Created {role} account {officer.email} with {granted}; at first sign-in they set up two-step sign-in "
        "and choose their own password."
    )


@click.command("grant")
@click.option("--email", required=True)
@click.option("--queue", "queue_code", required=True)
@click.option("--recovery-key", required=True, type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def grant_command(email: str, queue_code: str, recovery_key: Path) -> None:
    """Grant an account a queue with the recovery key."""
    officer = db.session.scalar(select(Officer).where(Officer.email == accounts.normalise_email(email)))
    queue = db.session.scalar(select(Queue).where(Queue.code == queue_code))
    if officer is None or queue is None:
        fail("unknown account or queue")
    recovery_private = load_recovery_option(recovery_key)
    try:
        grant_with_recovery(officer, queue, recovery_private)
    except crypto.DecryptionError:
        fail("that recovery key does not open this queue")
    audit.record(db.session, "grant-queue", queue_code=queue.code, detail={"account": officer.id})
    audit.record(db.session, "recovery-used", detail={"account": officer.id})
    db.session.commit()
    click.echo(f"Granted {queue.code} to {officer.email}.")


@click.command("reset-password")
@click.option("--email", required=True)
@click.option("--recovery-key", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--password-stdin", is_flag=True)
@with_appcontext
def reset_password_command(email: str, recovery_key: Path, password_stdin: bool) -> None:
    """A forgotten password: new keys, queues re-granted with the recovery key, 2FA to enrol again."""
    officer = db.session.scalar(select(Officer).where(Officer.email == accounts.normalise_email(email)))
    if officer is None:
        fail("unknown account")
    recovery_private = load_recovery_option(recovery_key)
    password = read_password(password_stdin)
    try:
        accounts.reset_password_with_recovery(
            db.session, officer, password, recovery_private, accounts.argon2_params(current_app.config)
        )
    except accounts.AccountError as exc:
        db.session.rollback()
        fail(str(exc))
    except crypto.DecryptionError:
        db.session.rollback()
        fail("that recovery key does not open this officer's queues")
    audit.record(db.session, "password-changed", officer_id=officer.id, detail={"reset": True})
    audit.record(db.session, "recovery-used", detail={"account": officer.id})
    db.session.commit()
    click.echo(
        f"Password reset for {officer.email}; at next sign-in they set up two-step sign-in again and choose "
        "their own password."
    )
