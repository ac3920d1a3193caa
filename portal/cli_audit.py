"""`flask portal verify-audit`: check the audit trail's hash chain; exit 1 if it is broken."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .audit import verify_chain
from .models import db


@click.command("verify-audit")
@with_appcontext
def verify_audit_command() -> None:
    """Recompute every audit entry's hash and check the chain and its head. Exits 1 if broken."""
    try:
        result = verify_chain(db.session)
    finally:
        db.session.rollback()
    if result.ok:
        click.echo(f"audit trail intact: {result.checked} entries")
        if result.checked:
            click.echo(f"head: {result.head} (keep a note of it offline to compare later)")
        return
    if result.first_broken_id is None:
        click.echo(f"audit trail broken: {result.reason}")
    else:
        click.echo(f"audit trail broken at entry {result.first_broken_id}: {result.reason}")
    raise click.exceptions.Exit(1)
