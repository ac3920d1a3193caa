"""`flask portal revoke`, `disable-user`, `rewrap` and `routing --dry-run`: removing people, rotating queue
keys, and seeing that every routing target has someone to read what it receives."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.access import staffing
from portal.cli.common import fail, load_recovery_option, server_secrets
from portal.core import crypto
from portal.domain import accounts
from portal.sealing import queue_keys
from portal.storage import audit
from portal.storage.models import Officer, Queue, db


def _officer(email: str) -> Officer:
    officer = db.session.scalar(select(Officer).where(Officer.email == accounts.normalise_email(email)))
    if officer is None:
        fail("unknown account")
    return officer


def _rotate(queue: Queue, officer: Officer, recovery_private: bytes | None) -> str:
    """Remove the officer from the queue, rotate its key, re-wrap its cases if the recovery key is given."""
    rotation = queue_keys.remove_member(db.session, queue, officer, server_secrets().recovery_public_key)
    audit.record(db.session, "revoke-queue", queue_code=queue.code, detail={"account": officer.id})
    audit.record(
        db.session,
        "queue-key-rotated",
        queue_code=queue.code,
        detail={"generation": rotation.generation, "members": rotation.members},
    )
    line = f"{queue.code}: key generation {rotation.generation}, granted to {rotation.members} remaining member(s)"
    if recovery_private is not None and rotation.pending_cases:
        done = _rewrap(queue, recovery_private)
        line += f"; {done} case(s) re-wrapped to the new key"
    elif rotation.pending_cases:
        line += (
            f"; {rotation.pending_cases} case(s) still sealed to older keys, readable by the remaining members "
            "(re-wrap them with `flask portal rewrap --queue "
            f"{queue.code} --recovery-key PATH`)"
        )
    if rotation.members == 0:
        line += f". WARNING: {queue.code} has no member now; its new reports will go to DPS"
    return line


def _rewrap(queue: Queue, recovery_private: bytes) -> int:
    try:
        keys = queue_keys.recovery_generation_keys(db.session, queue, recovery_private)
    except crypto.DecryptionError:
        fail("that recovery key does not open this queue")
    done = queue_keys.rewrap(db.session, queue, keys)
    audit.record(db.session, "queue-key-rewrapped", queue_code=queue.code, detail={"cases": done})
    audit.record(db.session, "recovery-used", queue_code=queue.code)
    return done


@click.command("revoke")
@click.option("--email", required=True)
@click.option("--queue", "queue_code", required=True)
@click.option(
    "--recovery-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also re-wrap the queue's existing cases to the new key now.",
)
@with_appcontext
def revoke_command(email: str, queue_code: str, recovery_key: Path | None) -> None:
    """Remove an officer from a queue and rotate the queue's key pair: later reports are sealed to the new key,
    remaining members are granted it; with --recovery-key existing cases are re-wrapped at once."""
    officer = _officer(email)
    queue = db.session.scalar(select(Queue).where(Queue.code == queue_code))
    if queue is None:
        fail("unknown queue")
    if queue.id not in queue_keys.member_queue_ids(db.session, officer.id):
        fail(f"{officer.email} is not a member of {queue.code}")
    recovery_private = load_recovery_option(recovery_key)
    line = _rotate(queue, officer, recovery_private)
    db.session.commit()
    click.echo(f"Removed {officer.email} from {queue.code}. {line}.")


@click.command("disable-user")
@click.option("--email", required=True)
@click.option(
    "--recovery-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also re-wrap the existing cases of the account's queues to their new keys now.",
)
@with_appcontext
def disable_user_command(email: str, recovery_key: Path | None) -> None:
    """Disable an account (no sign-in, every session ended) and rotate the key of every queue it belonged to."""
    officer = _officer(email)
    recovery_private = load_recovery_option(recovery_key)
    queues = queue_keys.member_queues(db.session, officer.id)
    accounts.set_disabled(db.session, officer, True)
    audit.record(db.session, "account-disabled", detail={"account": officer.id})
    lines = [_rotate(queue, officer, recovery_private) for queue in queues]
    db.session.commit()
    click.echo(f"Disabled {officer.email} and ended every session.")
    for line in lines:
        click.echo(f"  {line}")


@click.command("rewrap")
@click.option("--queue", "queue_code", default=None, help="One queue (default: every queue with older keys in use).")
@click.option("--recovery-key", required=True, type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def rewrap_command(queue_code: str | None, recovery_key: Path) -> None:
    """Re-wrap the data keys of cases still sealed to an older generation of their queue's key."""
    recovery_private = load_recovery_option(recovery_key)
    query = select(Queue).order_by(Queue.code)
    if queue_code:
        query = query.where(Queue.code == queue_code)
    queues = db.session.scalars(query).all()
    if queue_code and not queues:
        fail("unknown queue")
    for queue in queues:
        if queue.key_generation == 1:
            continue
        done = _rewrap(queue, recovery_private)
        db.session.commit()
        click.echo(f"{queue.code}: {done} case(s) re-wrapped to key generation {queue.key_generation}.")


@click.command("routing")
@click.option("--dry-run", is_flag=True, required=True, help="Only show the rules and their targets' members.")
@with_appcontext
def routing_command(dry_run: bool) -> None:
    """List the routing rules with each target queue's enabled members; warn about every target with none."""
    warnings = 0
    for rule in staffing.rule_staffing(db.session):
        state = "" if rule.enabled else " (disabled)"
        members = ", ".join(f"{t.queue_code} {t.members}" for t in rule.targets) or "no such queue"
        click.echo(f"{rule.position:>3}. {rule.kind} -> {rule.target}{state}: members {members}")
        for code in rule.unstaffed if rule.enabled else []:
            warnings += 1
            click.echo(f"     WARNING: {code} has no member: reports this rule sends there go to DPS instead")
        for code in rule.single_reader if rule.enabled else []:
            warnings += 1
            click.echo(
                f"     WARNING: {code} has one member: a report about them goes to DPS, which a copy of the "
                "database would show; give the queue a second member"
            )
    db.session.rollback()
    click.echo(f"{warnings} warning(s).")
