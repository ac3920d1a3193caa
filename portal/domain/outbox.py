"""Sending what the outbox holds: what `flask portal worker` does (portal.cli.worker), batch by batch.

A batch: claim due mails in a short transaction and commit (portal.storage.outbox: a lease, so no lock is held
while the mail server is slow); work out who is told of each new case (one query for the cases, one for the
members of their queues, the directory's and the recorded conflicts: never one per case) and end that read;
send the batch over one SMTP connection, message by message; then, in one short transaction, delete what the
server took (and what is not to be sent: nobody to tell, a case moved on to another queue or deleted), put off
what failed with a backoff, and free what was not tried because the worker is stopping. A mail still failing
after GIVE_UP is given up, logged: a new case's acknowledgement breach tells the supervisors by then.

Delivery is at least once: a worker killed between the server's acceptance and its commit leaves a lease that
runs out, and the mail goes again. Nothing is ever lost: a row leaves the outbox only by a settled send.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import access
from portal.core import crypto
from portal.domain import notify
from portal.storage import outbox as store
from portal.storage.models import Queue, Report, utcnow

log = logging.getLogger("portal.notify")

GIVE_UP = timedelta(days=7)
BATCH = 50


@dataclass
class Delivered:
    sent: int = 0  # mails the server took
    failed: int = 0  # put off for a later attempt
    dropped: int = 0  # not to be sent (nobody to tell, stale, mail off, given up)

    def add(self, other: Delivered) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.dropped += other.dropped


def deliver_due(
    session: Session,
    config: Mapping[str, Any],
    *,
    now: datetime | None = None,
    stop: notify.Stop | None = None,
    batch: int = BATCH,
) -> Delivered:
    """Send every mail that is due, batch after batch, until none is left or `stop` is set. Commits as it goes."""
    total = Delivered()
    while stop is None or not stop.is_set():
        rows = store.claim(session, now or utcnow(), batch)
        session.commit()  # the claim is short: nothing is held while the mail server answers
        if not rows:
            break
        total.add(_deliver(session, config, rows, now or utcnow(), stop))
        if len(rows) < batch:
            break
    return total


def _deliver(
    session: Session, config: Mapping[str, Any], rows: list[Any], now: datetime, stop: notify.Stop | None
) -> Delivered:
    try:
        mails, dropped = _compose(session, config, rows)
    finally:
        session.rollback()  # a read only: end it before talking to the mail server
    results = notify.send_each(config, [mail for _row, mail in mails], stop)
    sent = [row.id for (row, _mail), ok in zip(mails, results, strict=True) if ok]
    failed = [row for (row, _mail), ok in zip(mails, results, strict=True) if ok is False]
    untried = [row.id for (row, _mail), ok in zip(mails, results, strict=True) if ok is None]
    if not notify.mail_configured(config):  # the log line stands in for the mail, as it always has
        dropped += [row.id for row in failed]
        failed = []
    elif stop is None or not stop.is_set():
        failed += [row for row, _mail in mails if row.id in set(untried)]  # the connection failed: all wait
        untried = []
    expired = [row for row in failed if row.created_at < now - GIVE_UP]
    for row in expired:
        log.warning("notification given up after %d days: kind=%s", GIVE_UP.days, row.kind)
    failed = [row for row in failed if row not in expired]
    store.settle(session, sent + dropped + [row.id for row in expired])
    store.retry_later(session, failed, now)
    store.release(session, untried)
    session.commit()
    return Delivered(len(sent), len(failed), len(dropped) + len(expired))


def _compose(
    session: Session, config: Mapping[str, Any], rows: list[Any]
) -> tuple[list[tuple[Any, notify.Mail]], list[int]]:
    """The message of each claimed row, and the rows that are not to be sent."""
    new_cases = _new_case_recipients(session, config, [row for row in rows if row.kind == notify.NEW_CASE])
    # The clocks' mails (a reply waiting, an escalation step) and the notice of a new concern about a person to the
    # holders of their earlier cases: composed by the modules that queue them, which import this one.
    from portal.domain import escalation, patterns

    clock_mails = escalation.compose(session, config, [row for row in rows if row.kind in escalation.MAIL_KINDS])
    clock_mails.update(patterns.compose(config, [row for row in rows if row.kind in patterns.MAIL_KINDS]))
    mails: list[tuple[Any, notify.Mail]] = []
    dropped: list[int] = []
    for row in rows:
        mail = clock_mails[row.id] if row.id in clock_mails else _mail(config, row, new_cases)
        if mail is None:
            dropped.append(row.id)
        else:
            mails.append((row, mail))
    return mails, dropped


def _mail(
    config: Mapping[str, Any], row: Any, new_cases: dict[int, tuple[str, list[str]] | None]
) -> notify.Mail | None:
    params = row.params or {}
    if row.kind == notify.NEW_CASE:
        found = new_cases.get(row.id)
        if found is None:
            return None
        queue_code, recipients = found
        return notify.new_case_mail(config, row.reference, queue_code, recipients)
    if row.kind == notify.BREACH:
        return notify.breach_mail(config, row.reference, str(params.get("queue", "?")), list(row.recipients or []))
    if row.kind == notify.CONFLICT:
        return notify.conflict_mail(
            config, row.reference, list(row.recipients or []), declared=bool(params.get("declared"))
        )
    if row.kind == notify.REPORTER_UPDATE:
        try:
            address = notify.open_address(config["PORTAL_SECRETS"], bytes(row.address_sealed))
        except (crypto.DecryptionError, TypeError, KeyError):
            log.warning("notification not sent (address cannot be opened): kind=%s", row.kind)
            return None
        return notify.reporter_update_mail(config, address)
    log.warning("notification not sent (unknown kind): kind=%s", row.kind)
    return None


def _new_case_recipients(
    session: Session, config: Mapping[str, Any], rows: Sequence[Any]
) -> dict[int, tuple[str, list[str]] | None]:
    """For each new-case row: the queue's code and who to tell, or None when nobody is (the case was deleted,
    is held, or has moved to another queue since, whose own row tells that queue; or nobody there may be told)."""
    if not rows:
        return {}
    cases = {
        case.id: case
        for case in session.execute(
            select(
                Report.id,
                Report.queue_id,
                Report.held,
                Report.subject_staff_index,
                Report.subject_name_index,
                Queue.code,
            )
            .join(Queue, Queue.id == Report.queue_id)
            .where(Report.id.in_({row.report_id for row in rows}))
        )
    }
    latest = {row.report_id: row.id for row in sorted(rows, key=lambda row: row.id)}  # moved twice: the last move
    live = [row for row in rows if row.report_id in cases and not cases[row.report_id].held]
    live = [row for row in live if cases[row.report_id].queue_id == row.queue_id and latest[row.report_id] == row.id]
    members = notify.mailable_members(session, notify.blind_index_key(config), {row.queue_id for row in live})
    subjects = [
        access.Subject(case.id, case.queue_id, case.subject_staff_index, case.subject_name_index)
        for case in (cases[row.report_id] for row in live)
    ]
    blocked = notify.blocked_of(session, subjects, members)
    found: dict[int, tuple[str, list[str]] | None] = {row.id: None for row in rows}
    for row in live:
        recipients = [
            m.email for m in members if m.queue_id == row.queue_id and (row.report_id, m.officer_id) not in blocked
        ]
        if recipients:
            found[row.id] = (cases[row.report_id].code, recipients)
        else:
            log.warning("notification not sent, nobody to tell: kind=%s queue_id=%s", notify.NEW_CASE, row.queue_id)
    return found
