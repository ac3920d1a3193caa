"""Email notifications to staff and reporters. Content-free by construction.

A notification says that something happened and where to look, never what: staff mail carries only the
case reference, the queue code and a link to the case (sign-in needed); mail to a reporter carries only a
link to the status page, not even the reference, because a reporter's mailbox may be read by the very
person they reported. No summary, detail, category, name, receipt or reporter identity is ever put in a
message, and nothing here opens a sealed column.

Who is told about a case is decided by portal.access: an officer with a conflict of interest on it (their
staff number or name is the subject's, or they declared one) is never told about the case at all, even when
they belong to the queue.

Mail is best effort. With MAIL_SERVER unset nothing is sent and one log line says so (the kind of
notification and the number of recipients, never an address). SMTP failures are logged the same way and
never raised to the caller: a report is saved whether or not the mail goes.

No Flask in here: functions take the config as a plain mapping and an SQLAlchemy Session.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from . import access, queue_keys
from .models import Officer, Queue, QueueMembership, Report, utcnow
from .workflow import FINAL_STATES, STATES

log = logging.getLogger("portal.notify")

DEFAULT_TIMEOUT_SECONDS = 5.0
SUPERVISOR = "supervisor"
OPEN_STATES = tuple(state for state in STATES if state not in FINAL_STATES)

# Kinds of notification, for the log.
NEW_CASE = "new-case"
BREACH = "breach"
REPORTER_UPDATE = "reporter-update"
CONFLICT = "conflict"

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
    results = [False] * len(mails)
    pending = [i for i, mail in enumerate(mails) if mail.to]
    if not pending:
        return results
    if not mail_configured(config):
        for i in pending:
            log.info(
                "notification not sent (MAIL_SERVER unset): kind=%s recipients=%d", mails[i].kind, len(mails[i].to)
            )
        return results
    timeout = float(config.get("MAIL_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS)
    done: set[int] = set()
    try:
        with smtplib.SMTP(str(config["MAIL_SERVER"]), int(config.get("MAIL_PORT") or 25), timeout=timeout) as smtp:
            if config.get("MAIL_STARTTLS"):
                smtp.starttls(context=ssl.create_default_context())
            for i in pending:
                mail = mails[i]
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
                        "notification not sent (SMTP %s): kind=%s recipients=%d",
                        type(exc).__name__,
                        mail.kind,
                        len(mail.to),
                    )
                    done.add(i)
                    smtp.rset()
                    continue
                done.add(i)
                results[i] = True
                if refused:
                    log.warning(
                        "notification partly refused: kind=%s recipients=%d refused=%d",
                        mail.kind,
                        len(mail.to),
                        len(refused),
                    )
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        # Connection refused or timed out, the server went away, or a message could not be built.
        for i in pending:
            if i not in done:
                log.warning(
                    "notification not sent (%s): kind=%s recipients=%d",
                    type(exc).__name__,
                    mails[i].kind,
                    len(mails[i].to),
                )
    return results


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


def notify_new_case(session: Session, config: Mapping[str, Any], report: Report) -> int:
    """Tell the members of the report's queue that a case has arrived. Returns how many were mailed.

    Call it after the report is committed. The report stops owing its new-case mail when the mail is
    accepted, when nobody is to be told, or when mail is off; that mark is committed here. It never raises:
    the reporter must get their receipt, and their page, whatever happens to the mail.
    """
    try:
        recipients = new_case_recipients(session, report, blind_index_key(config))
        if recipients:
            queue_code = session.scalar(select(Queue.code).where(Queue.id == report.queue_id)) or "?"
        else:
            queue_code = "?"
        return tell_of_new_case(session, config, report.id, report.reference, report.queue_id, queue_code, recipients)
    except Exception as exc:  # a database hiccup here must not cost the reporter their receipt
        log.warning("notification failed (%s): kind=%s", type(exc).__name__, NEW_CASE)
        session.rollback()
        return 0


def new_case_recipients(session: Session, report: Report, index_key: bytes) -> list[str]:
    """Who send_new_case will tell about a new case in its queue: those portal.access lets read it and who
    want mail (never its subject). A new report's intake reads it before its commit, in the same
    transaction, and sends after the commit."""
    return access.recipients(session, report, index_key)


def send_new_case(
    config: Mapping[str, Any], reference: str, queue_id: int, queue_code: str, recipients: list[str]
) -> int:
    """Mail the recipients that case `reference` has arrived in the queue. Call it only after the commit.
    Returns how many were mailed; never raises. Marks nothing: tell_of_new_case does both."""
    try:
        if not recipients:
            log.warning("notification not sent, nobody to tell: kind=%s queue_id=%s", NEW_CASE, queue_id)
            return 0
        mail = new_case_mail(config, reference, queue_code, recipients)
        return len(recipients) if send(config, mail) else 0
    except Exception as exc:  # the receipt matters more than the mail
        log.warning("notification failed (%s): kind=%s", type(exc).__name__, NEW_CASE)
        return 0


def tell_of_new_case(
    session: Session,
    config: Mapping[str, Any],
    report_id: str,
    reference: str,
    queue_id: int,
    queue_code: str,
    recipients: list[str],
) -> int:
    """Send the new-case mail of a committed report and, once that is settled, commit that it is.

    Settled: the server accepted the mail, nobody is to be told, or mail is off (the log line stands in for
    the mail, as for breaches). After an SMTP failure the report still owes its mail, and `send-reminders`
    (notify_owed_new_cases) sends it later. Returns how many were mailed; never raises.
    """
    mailed = send_new_case(config, reference, queue_id, queue_code, recipients)
    if not recipients:
        return 0  # nobody to tell: intake left nothing owed
    if not mailed and mail_configured(config):
        return 0  # still owed
    try:
        settle_new_cases(session, [report_id])
        session.commit()
    except Exception as exc:  # the mail went; at worst it goes again from send-reminders
        log.warning("notification not marked as sent (%s): kind=%s", type(exc).__name__, NEW_CASE)
        session.rollback()
    return mailed


def settle_new_cases(session: Session, report_ids: Sequence[str]) -> None:
    """Mark the reports as no longer owing their new-case mail. The caller commits."""
    if report_ids:
        session.execute(
            update(Report)
            .where(Report.id.in_(list(report_ids)), Report.new_case_owed)
            .values(new_case_owed=False)
            .execution_options(synchronize_session=False)
        )


# How long the intake's own attempt has before send-reminders may send the mail too (an attempt is over in
# one SMTP timeout), and after how long an owed mail is given up: by then the acknowledgement clock has run
# out and the breach notice (notify_breaches) tells the queue's supervisors instead.
NEW_CASE_GRACE = timedelta(minutes=2)
NEW_CASE_GIVE_UP = timedelta(days=7)


def owed_new_cases() -> Any:
    """The cases that still owe their queue a new-case mail (a partial index holds only these)."""
    return (
        select(
            Report.id,
            Report.reference,
            Report.queue_id,
            Queue.code,
            Report.subject_staff_index,
            func.coalesce(Report.released_at, Report.received_at),
            Report.subject_name_index,
        )
        .join(Queue, Queue.id == Report.queue_id)
        .where(Report.new_case_owed, Report.held.is_(False))
        .order_by(Report.received_at)
        # Without it SQLite walks every case in received order (it cannot know the partial index is tiny).
        .with_hint(Report, "INDEXED BY ix_reports_new_case_owed", "sqlite")
    )


def notify_owed_new_cases(session: Session, config: Mapping[str, Any], now: datetime | None = None) -> int:
    """Send the new-case mails still owed: cases whose first attempt failed (at intake or after a re-route),
    and released held reports.

    Three queries whatever the number of cases, like notify_breaches: the owed cases (on PostgreSQL locked
    FOR UPDATE SKIP LOCKED, so two runs at once do not both mail), the mailable members of their queues,
    and one UPDATE of the settled ones. A case younger than NEW_CASE_GRACE is left to its intake; one owed
    for longer than NEW_CASE_GIVE_UP is settled unsent (logged). The caller commits.

    Returns the number of cases whose mail the server accepted.
    """
    now = now or utcnow()
    rows = session.execute(owed_new_cases().with_for_update(of=Report, skip_locked=True)).all()
    due = [row for row in rows if row[5] <= now - NEW_CASE_GRACE]
    if not due:
        return 0
    settled: list[str] = []
    live = []
    for row in due:
        if row[5] < now - NEW_CASE_GIVE_UP:
            log.warning("new-case notice given up after %d days: queue=%s", NEW_CASE_GIVE_UP.days, row[3])
            settled.append(row[0])
        else:
            live.append(row)
    members = _mailable_members(session, blind_index_key(config), {row[2] for row in live})
    subjects = [access.Subject(row[0], row[2], row[4], row[6]) for row in live]
    blocked = _blocked(session, subjects, members)
    mails: list[Mail] = []
    to_mail: list[str] = []
    for report_id, reference, queue_id, queue_code, *_rest in live:
        recipients = [m.email for m in members if m.queue_id == queue_id and (report_id, m.officer_id) not in blocked]
        if recipients:
            mails.append(new_case_mail(config, reference, queue_code, recipients))
            to_mail.append(report_id)
        else:
            log.warning("notification not sent, nobody to tell: kind=%s queue_id=%s", NEW_CASE, queue_id)
            settled.append(report_id)
    results = send_all(config, mails)
    sent = [report_id for report_id, ok in zip(to_mail, results, strict=True) if ok]
    if not mail_configured(config):
        settled.extend(to_mail)
    settle_new_cases(session, sent + settled)
    return len(sent)


# ---------------------------------------------------------------- breaches of the clocks


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """An open case past a clock, and not yet notified for that breach.

    A case breaches when acknowledgement is overdue (acknowledge_due_at passed, acknowledged_at NULL) or
    an update is overdue (next_update_due_at passed). It has been notified for a breach when
    breach_notified_at is at or after that breach's due time, so a later breach (an update falling due
    after the acknowledgement breach was reported, or after the clock was reset) is notified again.
    """
    ack_breach = and_(
        Report.acknowledged_at.is_(None),
        Report.acknowledge_due_at <= now,
        or_(Report.breach_notified_at.is_(None), Report.breach_notified_at < Report.acknowledge_due_at),
    )
    update_breach = and_(
        Report.next_update_due_at <= now,
        or_(Report.breach_notified_at.is_(None), Report.breach_notified_at < Report.next_update_due_at),
    )
    # A positive IN on the open states (not NOT IN the final ones) lets the state index serve.
    # Held reports are not cases yet: their clocks start when they are released.
    return and_(Report.state.in_(OPEN_STATES), Report.held.is_(False), or_(update_breach, ack_breach))


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
class _Member:
    queue_id: int
    officer_id: int
    email: str
    role: str
    identity: access.Identity


def _mailable_members(
    session: Session, index_key: bytes, queue_ids: set[int], *criteria: ColumnElement[bool]
) -> list[_Member]:
    """The current, enabled members of the queues who want mail (and meet `criteria`), in one query, with
    their identities for conflict checks (worked out in memory)."""
    if not queue_ids:
        return []
    rows = session.execute(
        select(QueueMembership.queue_id, Officer)
        .join(Officer, Officer.id == QueueMembership.officer_id)
        .join(Queue, Queue.id == QueueMembership.queue_id)
        .where(
            QueueMembership.queue_id.in_(queue_ids),
            queue_keys.current_membership(),
            Officer.disabled.is_(False),
            Officer.notify_by_email.is_(True),
            *criteria,
        )
        .order_by(Officer.id)
    ).all()
    people = access.identities(session, [officer for _queue_id, officer in rows], index_key)
    return [
        _Member(queue_id, officer.id, officer.email, officer.role, who)
        for (queue_id, officer), who in zip(rows, people, strict=True)
    ]


def _blocked(session: Session, subjects: list[access.Subject], members: list[_Member]) -> set[tuple[str, int]]:
    by_queue: dict[int, list[access.Identity]] = {}
    for member in members:
        by_queue.setdefault(member.queue_id, []).append(member.identity)
    return access.blocked_pairs(session, subjects, by_queue)


def _breach_recipients(candidate: _Candidate, members: Iterable[_Member], blocked: set[tuple[str, int]]) -> list[str]:
    """The assigned officer and the supervisors, among the queue's mailable members, minus anyone conflicted."""
    emails: list[str] = []
    for member in members:
        if member.queue_id != candidate.queue_id:
            continue
        if (candidate.id, member.officer_id) in blocked:
            continue
        if (member.role == SUPERVISOR or member.officer_id == candidate.assigned_officer_id) and (
            member.email not in emails
        ):
            emails.append(member.email)
    return emails


def notify_breaches(session: Session, config: Mapping[str, Any], now: datetime | None = None) -> int:
    """Mail the assigned officer and the queue's supervisors about each newly overdue case.

    Three queries whatever the number of cases: the overdue cases (clear columns only, never content;
    on PostgreSQL locked FOR UPDATE SKIP LOCKED, so two runs at once do not both mail), the mailable
    members of their queues, and one UPDATE of breach_notified_at. A case is marked notified when its mail
    was accepted by the server, when nobody could be told, or when MAIL_SERVER is unset (the log line
    stands in for the mail); after an SMTP failure it is left for the next run. The caller commits.

    Returns the number of cases whose mail was accepted by the server.
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

    assigned = {c.assigned_officer_id for c in candidates if c.assigned_officer_id is not None}
    wanted = Officer.role == SUPERVISOR
    if assigned:
        wanted = or_(wanted, Officer.id.in_(assigned))
    members = _mailable_members(session, blind_index_key(config), {c.queue_id for c in candidates}, wanted)
    blocked = _blocked(
        session,
        [access.Subject(c.id, c.queue_id, c.subject_staff_index, c.subject_name_index) for c in candidates],
        members,
    )

    mails: list[Mail] = []
    to_mail: list[_Candidate] = []
    settled: list[str] = []  # nobody to tell: mark it, so it is not looked at on every run
    for candidate in candidates:
        recipients = _breach_recipients(candidate, members, blocked)
        if recipients:
            mails.append(breach_mail(config, candidate.reference, candidate.queue_code, recipients))
            to_mail.append(candidate)
        else:
            log.warning("breach not notified, nobody to tell: queue=%s", candidate.queue_code)
            settled.append(candidate.id)

    results = send_all(config, mails)
    sent = [c.id for c, ok in zip(to_mail, results, strict=True) if ok]
    if not mail_configured(config):
        settled.extend(c.id for c in to_mail)
    marked = sent + settled
    if marked:
        session.execute(
            update(Report)
            .where(Report.id.in_(marked))
            .values(breach_notified_at=now)
            .execution_options(synchronize_session="fetch")
        )
    return len(sent)


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


def notify_conflict(config: Mapping[str, Any], reference: str, supervisors: list[str], *, declared: bool) -> bool:
    """Tell supervisors that a case is hidden from a member. Never raises; logged when nobody can be told."""
    if not supervisors:
        log.warning("conflict notice not sent, nobody to tell: kind=%s", CONFLICT)
        return False
    try:
        return send(config, conflict_mail(config, reference, supervisors, declared=declared))
    except Exception as exc:  # the officer's declaration stands whatever happens to the mail
        log.warning("notification failed (%s): kind=%s", type(exc).__name__, CONFLICT)
        return False


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


def notify_reporter_update(config: Mapping[str, Any], contact: str | None) -> bool:
    """Tell a reporter who gave an email address that an update is waiting. No reference, nothing else.

    False (and nothing sent) when the contact is not a plain email address, or when sending fails.
    """
    if not looks_like_email(contact):
        return False
    assert contact is not None
    return send(config, reporter_update_mail(config, contact.strip()))
