"""`flask portal seed --reports N [--seed S]`: a synthetic force and sealed cases for dashboards and load tests."""

from __future__ import annotations

from datetime import datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.cli.common import server_secrets
from portal.domain.settings import clock_settings
from portal.storage.models import db


@click.command("seed")
@click.option("--reports", "reports", required=True, type=int, help="How many cases to make.")
@click.option("--seed", "seed_value", default=1, show_default=True, type=int, help="Same seed, same cases.")
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=None,
    help="Processes that seal cases (default: 2 for 5,000 cases or more, else none).",
)
@click.option(
    "--now",
    "now_text",
    default=None,
    metavar="YYYY-MM-DDTHH:MM:SS",
    help="Date the cases as if today were this moment (UTC), to reproduce a seeding exactly.",
)
@with_appcontext
def seed_command(reports: int, seed_value: int, workers: int | None, now_text: str | None) -> None:
    """Synthetic, realistic cases (sealed like real ones) and the workforce directory they are about."""
    server = server_secrets()
    now = None
    if now_text:
        try:
            now = datetime.fromisoformat(now_text).replace(tzinfo=None)
        except ValueError as exc:
            raise click.ClickException(f"--now: not a date and time: {now_text!r}") from exc
    # The generator is loaded here, by this command only: web workers and other commands never import it.
    from portal import demo as seeding

    settings = clock_settings(db.session, current_app.config)
    with click.progressbar(length=reports, label="Sealing and writing cases", show_pos=True) as bar:
        try:
            result = seeding.seed(
                db.session,
                server,
                reports,
                seed_value=seed_value,
                acknowledge_days=settings.acknowledge_within_days,
                update_days=settings.update_every_days,
                now=now,
                workers=workers,
                progress=bar.update,
            )
        except seeding.SeedError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Seeded {result.cases:,} cases ({result.first_reference} to {result.last_reference}; "
        f"{result.open_cases:,} open) about {result.subjects:,} people, and a workforce directory of "
        f"{result.workforce:,}, with seed {seed_value} in {result.seconds:.1f} s."
    )
