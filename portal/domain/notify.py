"""Email notifications to staff and reporters. Content-free by construction, and never sent inside a request.

A notification says that something happened and where to look, never what: staff mail carries only the
case reference, the queue code and a link to the case (sign-in needed); mail to a reporter carries only a
link to the status page, not even the reference, because a reporter's mailbox may be read by the very
person they reported. No summary, detail, category, name, receipt or reporter identity is ever put in a
message, and nothing here opens a sealed column.

Who is told about a case is decided by portal.access: an officer with a conflict of interest on it (their
staff number or name is the subject's, or they declared one) is never told about the case at all, even when
they belong to the queue.

Every mail goes through the outbox (portal.storage.outbox): the `queue_*` functions and notify_breaches write
its row in the caller's transaction, so a mail is owed exactly when the change that causes it commits, and
`flask portal worker` (portal.domain.outbox) sends it, retrying with a backoff while the server fails. A request
never talks to SMTP. With MAIL_SERVER unset the worker sends nothing and one log line per mail says so (the
kind of notification and the number of recipients, never an address). SMTP failures are logged the same way.

No Flask in here: functions take the config as a plain mapping and an SQLAlchemy Session.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from portal import access, sealing
from portal.oversight import definitions
from portal.sealing import queue_keys
from portal.storage import outbox
from portal.storage.instance_secrets import ServerSecrets
from portal.storage.models import Officer, Queue, QueueMembership, Report, utcnow

log = logging.getLogger("portal.notify")

DEFAULT_TIMEOUT_SECONDS = 5.0
SUPERVISOR = "supervisor"

# Kinds of notification, for the log.
NEW_CASE = "new-case"
BREACH = "breach"
REPORTER_UPDATE = "reporter-update"
CONFLICT = "conflict"


class Stop(Protocol):
    """What a worker's stop flag offers (threading.Event)."""

    def is_set(self) -> bool: ...


# Deliberately plain: one address, no display name, no spaces, commas, angle brackets or line breaks.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")


@dataclass
class Mail:
    """One message. `to` are envelope recipients only: the To header never lists them (see _message)."""

    to: list[str]
    subject: str
    body: str
    kind: str = "notification"  # for the log line: new-case, breach, reporter-update


# ---------------------------------------------------------------- sending


def mail_configured(config: Mapping[str, Any]) -> bool:
    return bool(config.get("MAIL_SERVER"))


def _base_url(config: Mapping[str, Any]) -> str:
    return str(config.get("PORTAL_BASE_URL") or "http://127.0.0.1:5000").rstrip("/")


def _message(config: Mapping[str, Any], mail: Mail) -> EmailMessage:
    sender = str(config.get("MAIL_FROM") or "portal@localhost")
    message = EmailMessage()
    message["From"] = sender
    # Recipients go in the envelope only, like Bcc: who works a queue is nobody else's business.
    message["To"] = "undisclosed-recipients:;"
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.body)
    return message


def send_all(config: Mapping[str, Any], mails: Sequence[Mail]) -> list[bool]:
    """Send several messages over one SMTP connection. For each, True if the server accepted it.

    Never raises. Logs one line per message not sent: its kind and number of recipients, and for an SMTP
    failure the exception's class name (its text may echo addresses, so it is not logged).
    """
    return [bool(result) for result in send_each(config, mails)]


def send_each(config: Mapping[str, Any], mails: Sequence[Mail], stop: Stop | None = None) -> list[bool | None]:
    """send_all, one message at a time, checking `stop` between messages: None for a message not tried (the
    connection failed first, or the worker is stopping), False for one the server refused, True for one it took."""
    results: list[bool | None] = [None] * len(mails)
    pending = [i for i, mail in enumerate(mails) if mail.to]
    for i, mail in enumerate(mails):
        if not mail.to:
            results[i] = False
    if not pending:
        return results
    if not mail_configured(config):
        for i in pending:
            log.info(
                "notification not sent (MAIL_SERVER unset): kind=%s recipients=%d", mails[i].kind, len(mails[i].to)
            )
            results[i] = False
        return results
    timeout = float(config.get("MAIL_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS)
    try:
        with smtplib.SMTP(str(config["MAIL_SERVER"]), int(config.get("MAIL_PORT") or 25), timeout=timeout) as smtp:
            if config.get("MAIL_STARTTLS"):
                smtp.starttls(context=ssl.create_default_context())
            for i in pending:
                if stop is not None and stop.is_set():
                    break
                results[i] = _send_one(config, smtp, mails[i])
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        # Connection refused or timed out, the server went away, or a message could not be built.
        for i in pending:
            if results[i] is None:
                log.warning(
                    "notification not sent (%s): kind=%s recipients=%d",
                    type(exc).__name__,
                    mails[i].kind,
                    len(mails[i].to),
                )
    return results


def _send_one(config: Mapping[str, Any], smtp: smtplib.SMTP, mail: Mail) -> bool:
    try:
        refused = smtp.send_message(_message(config, mail), to_addrs=list(mail.to))
    except (
        smtplib.SMTPRecipientsRefused,
        smtplib.SMTPDataError,
        smtplib.SMTPSenderRefused,
        smtplib.SMTPNotSupportedError,
        ValueError,  # a header that would not encode; UnicodeError is one too
    ) as exc:
        log.warning(
            "notification not sent (SMTP %s): kind=%s recipients=%d", type(exc).__name__, mail.kind, len(mail.to)
        )
        smtp.rset()
        return False
    if refused:
        log.warning(
            "notification partly refused: kind=%s recipients=%d refused=%d", mail.kind, len(mail.to), len(refused)
        )
    return True


def send(config: Mapping[str, Any], mail: Mail) -> bool:
    """Send one message. True if the SMTP server accepted it; False (logged, never raised) otherwise."""
    return send_all(config, [mail])[0]


# ---------------------------------------------------------------- who is told


def blind_index_key(config: Mapping[str, Any]) -> bytes:
    """The server's blind-index key, which conflict-of-interest checks need (portal.access)."""
    server = config.get("PORTAL_SECRETS")
    if server is None:
        raise RuntimeError("portal not initialised")
    return server.blind_index_key


# ---------------------------------------------------------------- new case


def case_link(config: Mapping[str, Any], reference: str) -> str:
    return f"{_base_url(config)}/triage/case/{reference}"


def new_case_mail(config: Mapping[str, Any], reference: str, queue_code: str, to: list[str]) -> Mail:
    return Mail(
        to=to,
        subject=f"New case {reference} in queue {queue_code}",
        body=(
            f"A new case, {reference}, has arrived in queue {queue_code}.\n\n"
            f"Open it (sign-in needed):\n{case_link(config, reference)}\n\n"
            "By design this email holds no details of the case.\n"
        ),
        kind=NEW_CASE,
    )


def new_case_recipients(session: Session, report: Report, index_key: bytes) -> list[str]:
    """Who is told about a new case in its queue: those portal.access lets read it and who want mail (never its
    subject). The worker works this out for many cases at once (portal.domain.outbox); this is the one-case form."""
    return access.recipients(session, report, index_key)


def queue_new_case(session: Session, report: Report, now: datetime | None = None) -> None:
    """Owe the members of the report's queue the mail that the case has arrived, in the caller's transaction: the
    outbox row commits with the case (intake), its release from hold, or its move to another queue (re-route).

    The row names the case and the queue only; who is told is worked out when the worker sends it, so that a
    member who has left the queue by then, or declared a conflict, is not told. Nobody is told of a held report.
    """
    if report.held:
        return
    outbox.add(session, NEW_CASE, now=now, report_id=report.id, queue_id=report.queue_id, reference=report.reference)


# ---------------------------------------------------------------- breaches of the clocks


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """An overdue case (portal.oversight.definitions.overdue: the queues' and the dashboard's too), not yet
    notified for that breach.

    A case breaches when acknowledgement is overdue (acknowledge_due_at passed, acknowledged_at NULL) or
    an update is overdue (next_update_due_at passed). It has been notified for a breach when
    breach_notified_at is at or after that breach's due time, so a later breach (an update falling due
    after the acknowledgement breach was reported, or after the clock was reset) is notified again.
    """
    ack_breach = and_(
        definitions.acknowledgement_overdue(now),
        or_(Report.breach_notified_at.is_(None), Report.breach_notified_at < Report.acknowledge_due_at),
    )
    update_breach = and_(
        definitions.update_overdue(now),
        or_(Report.breach_notified_at.is_(None), Report.breach_notified_at < Report.next_update_due_at),
    )
    # Held reports are not cases yet: their clocks start when they are released. Open as definitions.overdue says.
    return and_(definitions.open_for_clocks(), Report.held.is_(False), or_(update_breach, ack_breach))


def overdue_reports(session: Session, now: datetime | None = None) -> list[Report]:
    """The cases notify_breaches would notify now, oldest deadline first."""
    now = now or utcnow()
    return list(session.scalars(select(Report).where(overdue_condition(now)).order_by(Report.next_update_due_at)))


def breach_mail(config: Mapping[str, Any], reference: str, queue_code: str, to: list[str]) -> Mail:
    return Mail(
        to=to,
        subject=f"Overdue: case {reference} in queue {queue_code}",
        body=(
            f"Case {reference} in queue {queue_code} is past a deadline: the acknowledgement or the next "
            "update to the reporter is overdue.\n\n"
            f"Open it (sign-in needed):\n{case_link(config, reference)}\n\n"
            "By design this email holds no details of the case.\n"
        ),
        kind=BREACH,
    )


@dataclass(frozen=True)
class _Candidate:
    id: str
    reference: str
    queue_id: int
    queue_code: str
    assigned_officer_id: int | None
    subject_staff_index: bytes | None
    subject_name_index: bytes | None


@dataclass(frozen=True)
class Member:
    queue_id: int
    officer_id: int
    email: str
    role: str
    identity: access.Identity


def mailable() -> tuple[ColumnElement[bool], ...]:
    """A member who is mailed (QueueMembership joined to Officer): a current membership, enabled, mail on."""
    return (queue_keys.current_membership(), Officer.disabled.is_(False), Officer.notify_by_email.is_(True))


def mailable_members(
    session: Session, index_key: bytes, queue_ids: set[int], *criteria: ColumnElement[bool]
) -> list[Member]:
    """The current, enabled members of the queues who want mail (and meet `criteria`), in one query, with
    their identities for conflict checks (worked out in memory)."""
    if not queue_ids:
        return []
    rows = session.execute(
        select(QueueMembership.queue_id, Officer)
        .join(Officer, Officer.id == QueueMembership.officer_id)
        .join(Queue, Queue.id == QueueMembership.queue_id)
        .where(QueueMembership.queue_id.in_(queue_ids), *mailable(), *criteria)
        .order_by(Officer.id)
    ).all()
    people = access.identities(session, [officer for _queue_id, officer in rows], index_key)
    return [
        Member(queue_id, officer.id, officer.email, officer.role, who)
        for (queue_id, officer), who in zip(rows, people, strict=True)
    ]


def blocked_of(session: Session, subjects: list[access.Subject], members: list[Member]) -> set[tuple[str, int]]:
    by_queue: dict[int, list[access.Identity]] = {}
    for member in members:
        by_queue.setdefault(member.queue_id, []).append(member.identity)
    return access.blocked_pairs(session, subjects, by_queue)


def _breach_recipients(candidate: _Candidate, members: Iterable[Member], blocked: set[tuple[str, int]]) -> list[str]:
    """The assigned officer and the supervisors, among the queue's mailable members, minus anyone conflicted; when
    the queue has neither, every member free of a conflict (the queue is told, as of a reply waiting)."""
    free = [m for m in members if m.queue_id == candidate.queue_id and (candidate.id, m.officer_id) not in blocked]
    chosen = [m for m in free if m.role == SUPERVISOR or m.officer_id == candidate.assigned_officer_id] or free
    emails: list[str] = []
    for member in chosen:
        if member.email not in emails:
            emails.append(member.email)
    return emails


def notify_breaches(session: Session, config: Mapping[str, Any], now: datetime | None = None) -> int:
    """Owe the assigned officer and the queue's supervisors a mail about each newly overdue case (the outbox).

    A bounded number of queries whatever the number of cases: the overdue cases (clear columns only, never
    content; on PostgreSQL locked FOR UPDATE SKIP LOCKED, so two runs at once do not both queue), the mailable
    members of their queues (with the directory's and the recorded conflicts), one INSERT of the mails and one
    UPDATE of breach_notified_at, in the caller's transaction: a breach is marked notified exactly when its mail
    is queued, so the reporter's status page can say that the unit has been told. A breach nobody can be told of
    (no mailable member of the queue free of a conflict) stays unmarked and is tried again on the next run, with
    one log line per queue and run. The worker sends the mail, and retries until the server takes it.

    Returns the number of mails queued.
    """
    now = now or utcnow()
    rows = session.execute(
        select(
            Report.id,
            Report.reference,
            Report.queue_id,
            Queue.code,
            Report.assigned_officer_id,
            Report.subject_staff_index,
            Report.subject_name_index,
        )
        .join(Queue, Queue.id == Report.queue_id)
        .where(overdue_condition(now))
        .order_by(Report.next_update_due_at)
        .with_for_update(of=Report, skip_locked=True)
    ).all()
    if not rows:
        return 0
    candidates = [_Candidate(*row) for row in rows]

    # Every mailable member of the queues: the supervisors and the assigned officer are told, and the whole queue
    # when it has neither (a queue of triage officers with the case unassigned), so that someone always is.
    members = mailable_members(session, blind_index_key(config), {c.queue_id for c in candidates})
    blocked = blocked_of(
        session,
        [access.Subject(c.id, c.queue_id, c.subject_staff_index, c.subject_name_index) for c in candidates],
        members,
    )

    queued: list[dict[str, Any]] = []
    told: list[str] = []
    untold: dict[str, int] = {}
    for candidate in candidates:
        recipients = _breach_recipients(candidate, members, blocked)
        if recipients:
            told.append(candidate.id)
            queued.append(
                {
                    "kind": BREACH,
                    "reference": candidate.reference,
                    "recipients": recipients,
                    "params": {"queue": candidate.queue_code},
                }
            )
        else:  # left unmarked: tried again on the next run, when the queue may have someone
            untold[candidate.queue_code] = untold.get(candidate.queue_code, 0) + 1
    for queue_code, count in sorted(untold.items()):
        log.warning("breach not notified, nobody to tell: queue=%s cases=%s", queue_code, count)
    if not queued:
        return 0
    outbox.add_all(session, queued)  # due at once: `now` may be a run's notional time
    session.execute(
        update(Report)
        .where(Report.id.in_(told))
        .values(breach_notified_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return len(queued)


# ---------------------------------------------------------------- conflicts of interest


def conflict_mail(config: Mapping[str, Any], reference: str, to: list[str], *, declared: bool) -> Mail:
    why = (
        "A member of the unit has declared a conflict of interest on it"
        if declared
        else "The name of the person it is about matches the name of a member of the unit"
    )
    return Mail(
        to=to,
        subject=f"Conflict of interest on case {reference}",
        body=(
            f"Case {reference}: {why}. The case is hidden from them.\n\n"
            "If the name match is only a namesake, you can show them the case again from its page:\n"
            f"{case_link(config, reference)}#conflict\n\n"
            "By design this email holds no details of the case or of the person.\n"
        ),
        kind=CONFLICT,
    )


def queue_conflict(session: Session, reference: str, supervisors: list[str], *, declared: bool) -> bool:
    """Owe supervisors the mail that a case is hidden from a member, in the caller's transaction (the declaration,
    or the intake whose subject's name matched a member's). False, logged, when nobody can be told."""
    if not supervisors:
        log.warning("conflict notice not sent, nobody to tell: kind=%s", CONFLICT)
        return False
    outbox.add(session, CONFLICT, reference=reference, recipients=list(supervisors), params={"declared": declared})
    return True


# ---------------------------------------------------------------- the reporter


def looks_like_email(contact: str | None) -> bool:
    contact = (contact or "").strip()
    return 3 <= len(contact) <= 254 and _EMAIL.fullmatch(contact) is not None


def reporter_update_mail(config: Mapping[str, Any], address: str) -> Mail:
    return Mail(
        to=[address],
        subject="An update is waiting for you",
        body=(f"There is an update on the report you made. Sign in with your receipt at {_base_url(config)}/status\n"),
        kind=REPORTER_UPDATE,
    )


def seal_address(secrets: ServerSecrets, address: str) -> bytes:
    """A reporter's address as the outbox keeps it until sent (portal.sealing.seal_reporter_address)."""
    return sealing.seal_reporter_address(secrets.receipt_pepper, address)


def open_address(secrets: ServerSecrets, sealed: bytes) -> str:
    return sealing.open_reporter_address(secrets.receipt_pepper, sealed)


def queue_reporter_update(session: Session, secrets: ServerSecrets, contact: str | None) -> bool:
    """Owe a reporter who gave an email address the mail that an update is waiting (no reference, nothing else),
    in the caller's transaction. Their address is sealed in the outbox row, which goes once the mail is sent.

    False (and nothing queued) when the contact is not a plain email address.
    """
    if not looks_like_email(contact):
        return False
    assert contact is not None
    outbox.add(session, REPORTER_UPDATE, address_sealed=seal_address(secrets, contact.strip()))
    return True
