"""`flask portal ...` commands. Each exits non-zero with a one-line reason on bad input."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from flask_migrate import upgrade
from sqlalchemy import select

from . import casework, crypto, intake, secrets
from .models import Report, db
from .setup import ensure_reference_data

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
    current_app.config["SECRET_KEY"] = loaded.secret_key
    upgrade(directory=current_app.extensions["migrate"].directory)
    made = ensure_reference_data(db.session, loaded.recovery_public_key)
    db.session.commit()
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


@portal_cli.command("demo")
def demo_command() -> None:
    """Demo cases for a first look; prints their receipts (demo data only: real receipts are never kept)."""
    server = current_app.extensions["portal_secrets"]
    if server is None:
        _fail("not initialised: run `flask portal init` first")
    if db.session.scalar(select(Report.id).where(Report.source == "demo").limit(1)):
        _fail("demo data is already loaded")
    settings = intake.IntakeSettings(
        current_app.config["ACKNOWLEDGE_WITHIN_DAYS"], current_app.config["UPDATE_EVERY_DAYS"]
    )
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
