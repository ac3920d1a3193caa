"""`flask portal init`: the server's secrets (and, once, the recovery key), the database migrated to head, the
reference data, the running totals of the figures and the audit trail's key."""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.cli.audit import complete_audit_setup
from portal.cli.common import fail
from portal.core import crypto
from portal.domain.reference_data import ensure_reference_data
from portal.oversight import rollups
from portal.storage import instance_secrets
from portal.storage.migrations import upgrade_to_head
from portal.storage.models import db


@click.command("init")
@click.option(
    "--recovery-key-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the recovery private key here, once. Keep it offline. Without this it is printed.",
)
@with_appcontext
def init_command(recovery_key_out: Path | None) -> None:
    """Create secrets, migrate the database to head, create queues with their keys."""
    instance = Path(current_app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    os.chmod(instance, 0o700)
    loaded = instance_secrets.load(instance)
    if loaded is None:
        if instance_secrets.path(instance).exists():
            fail(f"{instance_secrets.path(instance)} exists but is incomplete; fix or remove it")
        if recovery_key_out is not None and recovery_key_out.exists():
            fail(f"{recovery_key_out} already exists; refusing to overwrite a recovery key")
        pair = crypto.generate_keypair()
        encoded = crypto.encode_recovery_key(pair.private)
        if recovery_key_out is not None:
            recovery_key_out.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(recovery_key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(encoded)
        try:
            loaded = instance_secrets.create(instance, pair.public)
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
    upgrade_to_head(current_app._get_current_object())  # type: ignore[attr-defined]
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
