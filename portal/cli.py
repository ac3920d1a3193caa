"""`flask portal ...` commands. Each exits non-zero with a one-line reason on bad input."""

from __future__ import annotations

import os
import sys
from datetime import date, timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from flask_migrate import upgrade
from sqlalchemy import select

from . import accounts, audit, casework, crypto, intake, notify, queue_keys, rollups, secrets
from .cli_audit import complete_audit_setup, verify_audit_command
from .models import Command, Officer, Queue, Report, db
from .settings import clock_settings
from .setup import ensure_reference_data
from .staff.auth import argon2_params

portal_cli = AppGroup("portal", help="Operate the concern portal.")


def _fail(message: str) -> None:
    raise click.ClickException(message)


@portal_cli.command("init")
@click.option(
    "--recovery-key-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the recovery private key here, once. Keep it offline. Without this it is printed.",
)
def init_command(recovery_key_out: Path | None) -> None:
    """Create secrets, migrate the database to head, create queues with their keys."""
    instance = Path(current_app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    os.chmod(instance, 0o700)
    loaded = secrets.load(instance)
    if loaded is None:
        if secrets.path(instance).exists():
            _fail(f"{secrets.path(instance)} exists but is incomplete; fix or remove it")
        if recovery_key_out is not None and recovery_key_out.exists():
            _fail(f"{recovery_key_out} already exists; refusing to overwrite a recovery key")
        pair = crypto.generate_keypair()
        encoded = crypto.encode_recovery_key(pair.private)
        if recovery_key_out is not None:
            recovery_key_out.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(recovery_key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(encoded)
        try:
            loaded = secrets.create(instance, pair.public)
        except Exception:
            if recovery_key_out is not None:
                recovery_key_out.unlink(missing_ok=True)
            raise
        if recovery_key_out is not None:
            click.echo(f"Recovery private key written to {recovery_key_out}: move it offline now.")
        else:
            click.echo("Recovery private key (shown once; store it offline, not on this server):")
            click.echo(encoded, nl=False)
    else:
        click.echo("Secrets already exist; keeping them.")
        if recovery_key_out is not None:
            click.echo("The recovery key was made at first initialisation; no new one written.")
    current_app.extensions["portal_secrets"] = loaded
    current_app.config["PORTAL_SECRETS"] = loaded
    current_app.config["SECRET_KEY"] = loaded.secret_key
    upgrade(directory=current_app.extensions["migrate"].directory)
    made = ensure_reference_data(db.session, loaded.recovery_public_key)
    rebuilt = rollups.ensure(db.session)  # after an upgrade that added them to a database with cases
    db.session.commit()
    complete_audit_setup(instance)
    if rebuilt:
        click.echo("Running totals of the oversight figures worked out from the cases.")
    click.echo(
        f"Initialised {instance}: database at the latest migration; "
        f"{made['commands']} commands, {made['queues']} queues, {made['rules']} routing rules created."
    )


DEMO_REPORTS = [
    dict(
        mode="anonymous",
        category="sexual-misconduct",
        summary="Sergeant made sexual comments to a probationer on nights",
        details="Over several night shifts in March a sergeant on my team made sexual comments to a "
        "probationer and asked her to meet him after work. She looked frightened.",
        subject_name="Sgt Demo Person",
        subject_staff_number="DEMO-1001",
        subject_command="CE",
        location="Demo station, front office",
    ),
    dict(
        mode="confidential",
        category="bullying",
        summary="Repeated belittling of a staff member in team meetings",
        details="An inspector repeatedly mocks a member of police staff in front of the team.",
        subject_name="Insp Example Officer",
        subject_staff_number="DEMO-2002",
        subject_command="NA",
        reporter_name="Demo Reporter",
        reporter_contact="demo.reporter@example.org",
    ),
    dict(
        mode="named",
        category="duties",
        summary="Body-worn video routinely switched off",
        details="A constable on my shift switches off body-worn video before stop and search.",
        subject_command="SW",
        reporter_name="Named Demo Reporter",
        fear_of_reprisal=True,
    ),
]


DEMO_PASSWORD = "demo password 2026"  # noqa: S105 -- demo accounts only, printed by `make run`
DEMO_ACCOUNTS = [
    ("dps.officer@demo.police.example", "Dana DPS", "triage", ("DPS",)),
    ("ce.officer@demo.police.example", "Chris Central-East", "triage", ("PSU-CE",)),
    ("supervisor@demo.police.example", "Sam Supervisor", "supervisor", ("DPS", "PSU-CE", "PSU-NA", "PSU-SW")),
    ("admin@demo.police.example", "Alex Admin", "admin", ()),
]


def _demo_accounts(recovery_private: bytes) -> list[str]:
    server = current_app.extensions["portal_secrets"]
    lines = []
    for email, name, role, queue_codes in DEMO_ACCOUNTS:
        officer = accounts.create_officer(
            db.session,
            email=email,
            name=name,
            role=role,
            password=DEMO_PASSWORD,
            params=argon2_params(),
            blind_index_key=server.blind_index_key,
            must_change_password=False,  # printed for trying the demo
        )
        for code in queue_codes:
            queue = db.session.scalar(select(Queue).where(Queue.code == code))
            _grant_with_recovery(officer, queue, recovery_private)
        audit.record(db.session, "account-created", detail={"account": officer.id, "role": role})
        lines.append(f"  {email:<34} {role:<11} {', '.join(queue_codes) or 'no queues'}")
    return lines


@portal_cli.command("demo")
@click.option(
    "--recovery-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With the recovery key, demo staff accounts are made and given their queues.",
)
def demo_command(recovery_key: Path | None) -> None:
    """Demo cases (and, with the recovery key, demo staff accounts) for a first look; prints the logins."""
    server = current_app.extensions["portal_secrets"]
    if server is None:
        _fail("not initialised: run `flask portal init` first")
    if db.session.scalar(select(Report.id).where(Report.source == "demo").limit(1)):
        _fail("demo data is already loaded")
    settings = clock_settings(db.session, current_app.config)
    # Staff first: a report goes only to a queue with someone who can read it (portal.intake.readable_queue).
    staff_lines = _demo_accounts(load_recovery_option(recovery_key)) if recovery_key else []
    db.session.flush()
    lines = []
    for number, values in enumerate(DEMO_REPORTS):
        new = intake.NewReport(**values, occurred_on=date.today() - timedelta(days=30 + number))
        submitted = intake.submit_report(db.session, new, server, settings)
        submitted.report.source = "demo"
        if number == 0:
            casework.update_reporter(
                db.session,
                submitted.report,
                submitted.data_key,
                "<p>Thank you for your report. We have read it and a <strong>DPS</strong> officer is "
                "assessing it.</p><p>Can you tell us on which dates the comments were made?</p>",
                update_every_days=settings.update_every_days,
                new_state="acknowledged",
            )
        lines.append(f"  {submitted.report.reference}  {new.mode:<12} {new.category:<18} receipt {submitted.receipt}")
    db.session.commit()
    click.echo("Demo cases (open them at /status with the receipt):")
    click.echo("\n".join(lines))
    if staff_lines:
        click.echo(
            f"Demo staff (sign in at /login, password '{DEMO_PASSWORD}'; set up an authenticator app at first sign-in):"
        )
        click.echo("\n".join(staff_lines))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        _fail("no password given")
    return password


def _grant_with_recovery(officer: Officer, queue: Queue, recovery_private: bytes) -> None:
    """Every generation of the queue's key, so that cases not yet re-wrapped to the current one open too."""
    keys = queue_keys.recovery_generation_keys(db.session, queue, recovery_private)
    queue_keys.grant(db.session, queue, keys, officer, None)
    queue_keys.drop_unused_generations(db.session, queue)


@portal_cli.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(sorted(accounts.ROLES)))
@click.option("--staff-number", default="", help="For conflict-of-interest checks.")
@click.option("--command", "command_code", default=None, help="The officer's command code.")
@click.option("--queue", "queue_codes", multiple=True, help="Grant this queue (needs --recovery-key).")
@click.option("--recovery-key", type=click.Path(dir_okay=False, path_type=Path), help="The recovery private key file.")
@click.option("--password-stdin", is_flag=True, help="Read the initial password from standard input.")
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
    server = current_app.extensions["portal_secrets"]
    if server is None:
        _fail("not initialised: run `flask portal init` first")
    if queue_codes and recovery_key is None:
        _fail("granting queue access needs --recovery-key (or a member of the queue, in the web pages)")
    if command_code and db.session.get(Command, command_code) is None:
        _fail(f"unknown command {command_code}")
    queues = []
    for code in queue_codes:
        queue = db.session.scalar(select(Queue).where(Queue.code == code))
        if queue is None:
            _fail(f"unknown queue {code}")
        queues.append(queue)
    recovery_private = load_recovery_option(recovery_key)
    password = _read_password(password_stdin)
    try:
        officer = accounts.create_officer(
            db.session,
            email=email,
            name=name,
            role=role,
            password=password,
            params=argon2_params(),
            blind_index_key=server.blind_index_key,
            staff_number=staff_number,
            command_code=command_code,
        )
        for queue in queues:
            assert recovery_private is not None
            _grant_with_recovery(officer, queue, recovery_private)
            audit.record(db.session, "grant-queue", queue_code=queue.code, detail={"account": officer.id})
    except accounts.AccountError as exc:
        db.session.rollback()
        _fail(str(exc))
    except crypto.DecryptionError:
        db.session.rollback()
        _fail("that recovery key does not open these queues")
    audit.record(db.session, "account-created", detail={"account": officer.id, "role": role})
    if queues:
        audit.record(db.session, "recovery-used", detail={"account": officer.id})
    db.session.commit()
    granted = ", ".join(q.code for q in queues) or "no queues"
    click.echo(
        f"Created {role} account {officer.email} with {granted}; at first sign-in they set up two-step sign-in "
        "and choose their own password."
    )


@portal_cli.command("grant")
@click.option("--email", required=True)
@click.option("--queue", "queue_code", required=True)
@click.option("--recovery-key", required=True, type=click.Path(dir_okay=False, path_type=Path))
def grant_command(email: str, queue_code: str, recovery_key: Path) -> None:
    """Grant an account a queue with the recovery key."""
    officer = db.session.scalar(select(Officer).where(Officer.email == accounts.normalise_email(email)))
    queue = db.session.scalar(select(Queue).where(Queue.code == queue_code))
    if officer is None or queue is None:
        _fail("unknown account or queue")
    recovery_private = load_recovery_option(recovery_key)
    try:
        _grant_with_recovery(officer, queue, recovery_private)
    except crypto.DecryptionError:
        _fail("that recovery key does not open this queue")
    audit.record(db.session, "grant-queue", queue_code=queue.code, detail={"account": officer.id})
    audit.record(db.session, "recovery-used", detail={"account": officer.id})
    db.session.commit()
    click.echo(f"Granted {queue.code} to {officer.email}.")


@portal_cli.command("reset-password")
@click.option("--email", required=True)
@click.option("--recovery-key", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--password-stdin", is_flag=True)
def reset_password_command(email: str, recovery_key: Path, password_stdin: bool) -> None:
    """A forgotten password: new keys, queues re-granted with the recovery key, 2FA to enrol again."""
    officer = db.session.scalar(select(Officer).where(Officer.email == accounts.normalise_email(email)))
    if officer is None:
        _fail("unknown account")
    recovery_private = load_recovery_option(recovery_key)
    password = _read_password(password_stdin)
    try:
        accounts.reset_password_with_recovery(db.session, officer, password, recovery_private, argon2_params())
    except accounts.AccountError as exc:
        db.session.rollback()
        _fail(str(exc))
    except crypto.DecryptionError:
        db.session.rollback()
        _fail("that recovery key does not open this officer's queues")
    audit.record(db.session, "password-changed", officer_id=officer.id, detail={"reset": True})
    audit.record(db.session, "recovery-used", detail={"account": officer.id})
    db.session.commit()
    click.echo(
        f"Password reset for {officer.email}; at next sign-in they set up two-step sign-in again and choose "
        "their own password."
    )


@portal_cli.command("send-reminders")
def send_reminders_command() -> None:
    """Email staff about new cases (or re-routed ones) whose first mail failed or which were released from hold,
    and about cases whose clocks have run out; delete held reports past their time. Run it from cron every few
    minutes."""
    owed = notify.notify_owed_new_cases(db.session, current_app.config)
    db.session.commit()  # what was sent is marked before anything else can fail
    count = notify.notify_breaches(db.session, current_app.config)
    expired = intake.expire_held(db.session)
    db.session.commit()
    click.echo(
        f"New-case notices sent for {owed} case(s) that were owed one; clock breach notices sent for {count} "
        f"case(s); {expired} expired held report(s) deleted."
    )


portal_cli.add_command(verify_audit_command)

from .cli_access import (  # noqa: E402
    disable_user_command,
    load_recovery_option,
    revoke_command,
    rewrap_command,
    routing_command,
)

portal_cli.add_command(revoke_command)
portal_cli.add_command(disable_user_command)
portal_cli.add_command(rewrap_command)
portal_cli.add_command(routing_command)

from .cli_data import (  # noqa: E402
    import_cases_command,
    import_workforce_command,
    refresh_figures_command,
    stats_command,
)

portal_cli.add_command(import_workforce_command)
portal_cli.add_command(import_cases_command)
portal_cli.add_command(stats_command)
portal_cli.add_command(refresh_figures_command)

from .cli_seed import seed_command  # noqa: E402 -- registered last, like the audit command

portal_cli.add_command(seed_command)
