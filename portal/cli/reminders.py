"""`flask portal worker`, the long-running sender of the outbox, and `flask portal send-reminders`, run from cron:
clock breaches, expired held reports, kept receipts and question-page drafts."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from portal.cli.common import fail, server_secrets
from portal.domain import drafts, escalation, intake, notify, outbox
from portal.storage import outbox as outbox_table
from portal.storage.models import db

log = logging.getLogger("portal.worker")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@click.command("send-reminders")
@with_appcontext
def send_reminders_command() -> None:
    """Queue the emails about cases whose clocks have run out (`flask portal worker` sends them); delete held
    reports past their time, and kept receipts and question-page drafts past theirs. Run it from cron every few
    minutes."""
    count = notify.notify_breaches(db.session, current_app.config)
    escalated = escalation.run(db.session, current_app.config)  # every late clock, step by step (issue 17)
    expired = intake.expire_held(db.session)
    receipts = intake.forget_expired_receipts(db.session)
    unfinished = drafts.sweep(db.session)
    db.session.commit()
    click.echo(
        f"Clock breach notices queued for {count} case(s); {expired} expired held report(s) deleted; "
        f"{receipts} expired kept receipt(s) deleted; {unfinished} expired draft(s) deleted."
    )
    if escalated:
        click.echo(f"Escalation and reminder mails queued: {escalated}.")


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so that the worker finishes the message it is sending and stops."""
    stop = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = {}
    try:
        for number in STOP_SIGNALS:
            previous[number] = signal.signal(number, handler)
    except ValueError:  # not the main thread (an embedding host): it stops the worker its own way
        pass
    try:
        yield stop
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


@click.command("worker")
@click.option("--once", is_flag=True, help="Send every mail that is due, then exit (for cron or tests).")
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds between looks at the outbox.")
@with_appcontext
def worker_command(once: bool, interval: float) -> None:
    """Send the emails of the outbox, retrying with a backoff while the mail server fails, and delete kept receipts
    past their time. Runs until SIGTERM or SIGINT, which let the message being sent finish; run it under systemd
    (or any supervisor) beside the web server. With --once, sends what is due and exits."""
    server_secrets()  # stops here, with the reason, if the portal is not initialised
    total = outbox.Delivered()
    with _stop_on_signals() as stop:
        if not once:
            click.echo(f"Outbox worker started: it looks every {interval:g} s; SIGTERM or SIGINT stops it.")
        while not stop.is_set():
            try:
                total.add(outbox.deliver_due(db.session, current_app.config, stop=stop))
                intake.forget_expired_receipts(db.session)
                db.session.commit()
            except SQLAlchemyError as exc:  # the database is away: nothing is lost, the rows wait for it
                db.session.rollback()
                if once:
                    fail(f"database unavailable ({type(exc).__name__}): nothing was lost, run it again later")
                log.warning("outbox worker: database unavailable (%s); trying again", type(exc).__name__)
            if once:
                break
            stop.wait(interval)
    waiting = outbox_table.pending(db.session)
    db.session.remove()
    click.echo(
        f"Outbox: {total.sent} mail(s) sent, {total.failed} put off for a later attempt, {total.dropped} not to be "
        f"sent; {waiting} waiting."
    )
