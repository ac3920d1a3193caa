"""`flask portal verify-audit`: check the audit trail's keyed chain (and, with --anchor, its anchored
heads); exit 1 if it is broken. Also the audit part of `flask portal init` (`complete_audit_setup`)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.core import crypto
from portal.storage import instance_secrets
from portal.storage.audit import AnchorFileError, AuditChainError, check_anchors, read_anchors, rekey, verify_chain
from portal.storage.models import db


@click.command("verify-audit")
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also check every head anchored in this file (the anchor file, or its lines shipped to a log).",
)
@with_appcontext
def verify_audit_command(anchor_file: Path | None) -> None:
    """Recompute every audit entry's keyed hash and check the chain and its head. Exits 1 if broken."""
    failed = False
    try:
        result = verify_chain(db.session)
        anchored = None
        if anchor_file is not None:
            try:
                with anchor_file.open(encoding="ascii", errors="replace") as lines:
                    anchored = check_anchors(db.session, read_anchors(lines))
            except AnchorFileError as error:
                click.echo(f"anchor file {anchor_file}: {error}")
                failed = True
            except OSError as error:
                click.echo(f"anchor file {anchor_file} cannot be read ({type(error).__name__})")
                failed = True
    finally:
        db.session.rollback()
    if result.ok:
        click.echo(f"audit trail intact: {result.checked} entries")
        if result.checked:
            click.echo(f"head: entry {result.head_id} {result.head} (anchored outside the database; see --anchor)")
    elif result.first_broken_id is None:
        click.echo(f"audit trail broken: {result.reason}")
        failed = True
    else:
        click.echo(f"audit trail broken at entry {result.first_broken_id}: {result.reason}")
        failed = True
    if not result.keyed:
        click.echo(
            "audit trail not keyed: this deployment has no audit key, so a rewrite of the whole chain "
            "cannot be detected; run `flask portal init` to add the key and re-chain the trail"
        )
        failed = True
    if anchored is not None:
        if anchored.ok:
            upto = f", up to entry {anchored.last_id}" if anchored.last_id is not None else ""
            click.echo(f"anchor file {anchor_file}: {anchored.checked} anchored heads match the trail{upto}")
        else:
            click.echo(f"head mismatch at entry {anchored.mismatch_id}: {anchored.reason}")
            failed = True
    if failed:
        raise click.exceptions.Exit(1)


def complete_audit_setup(instance: Path) -> None:
    """The audit part of `flask portal init`, run after the migrations and the reference data.

    If no audit key is set anywhere (an existing deployment upgrading: its instance_secrets.json predates the
    key), make one, re-chain the existing unkeyed trail under it (portal.storage.audit.rekey: one transaction,
    ending with an `audit-rekeyed` entry) and add it to instance_secrets.json, keeping the other secrets and mode
    0600. The file is written just before the commit and put back as it was if the commit fails, so the
    key and the re-chained trail are kept together or not at all. A broken unkeyed trail is not
    re-chained (that would hide the break): init fails, naming the entry, and nothing is changed.

    The re-chaining happens in the run that makes the key, and only then: a key already set (in the
    file, the environment or a _FILE) means the trail was keyed when it was set, whatever the database
    says. Running workers that started without a key pick it up from instance_secrets.json on their next entry.
    """
    if "audit_key" not in instance_secrets.missing(instance):
        return
    key = instance_secrets.new_audit_key()
    try:
        count = rekey(db.session, key)
        db.session.flush()
    except AuditChainError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    try:
        instance_secrets.add_to_file(instance, {"audit_key": crypto.b64(key)})
    except Exception:
        db.session.rollback()
        raise
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        instance_secrets.remove_from_file(instance, ["audit_key"])
        raise
    loaded = instance_secrets.load(instance)
    current_app.extensions["portal_secrets"] = loaded
    if "PORTAL_SECRETS" in current_app.config:  # the same secrets, handed to domain modules with the config
        current_app.config["PORTAL_SECRETS"] = loaded
    file = instance_secrets.path(instance)
    if count:
        click.echo(f"Audit key added to {file}; the audit trail's {count} entries were re-chained under it.")
    else:
        click.echo(f"Audit key added to {file}.")
