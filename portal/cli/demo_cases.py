"""`flask portal demo`: a few demo cases (and, with the recovery key, demo staff accounts) for a first look."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.cli.common import fail, grant_with_recovery, load_recovery_option, server_secrets
from portal.domain import accounts, casework, intake
from portal.domain.settings import clock_settings
from portal.storage import audit
from portal.storage.models import Queue, Report, db

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
    server = server_secrets()
    lines = []
    for email, name, role, queue_codes in DEMO_ACCOUNTS:
        officer = accounts.create_officer(
            db.session,
            email=email,
            name=name,
            role=role,
            password=DEMO_PASSWORD,
            params=accounts.argon2_params(current_app.config),
            blind_index_key=server.blind_index_key,
            must_change_password=False,  # printed for trying the demo
        )
        for code in queue_codes:
            queue = db.session.scalar(select(Queue).where(Queue.code == code))
            grant_with_recovery(officer, queue, recovery_private)
        audit.record(db.session, "account-created", detail={"account": officer.id, "role": role})
        lines.append(f"  {email:<34} {role:<11} {', '.join(queue_codes) or 'no queues'}")
    return lines


@click.command("demo")
@click.option(
    "--recovery-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With the recovery key, demo staff accounts are made and given their queues.",
)
@with_appcontext
def demo_command(recovery_key: Path | None) -> None:
    """Demo cases (and, with the recovery key, demo staff accounts) for a first look; prints the logins."""
    server = server_secrets()
    if db.session.scalar(select(Report.id).where(Report.source == "demo").limit(1)):
        fail("demo data is already loaded")
    settings = clock_settings(db.session, current_app.config)
    # Staff first: a report goes only to a queue with someone who can read it (portal.domain.intake.readable_queue).
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
