"""Intake: turning a reporter's form into a sealed, routed case with its clocks and a receipt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, text
from sqlalchemy.orm import Session

from portal import access, sealing
from portal.core import crypto, routing, workflow
from portal.core.attachments import CleanFile
from portal.domain import intake_config, new_cases, notify, patterns
from portal.domain.intake_config import (  # noqa: F401 - offered here too, as intake always has
    ACKNOWLEDGE_SETTING,
    CONFIG_SETTINGS,
    CONFIG_VERSION,
    CORROBORATE_SETTING,
    UPDATE_SETTING,
    IntakeConfig,
    QueueKey,
    last_config,
    load_config,
)
from portal.sealing import REPORT_FIELDS, queue_keys
from portal.storage.instance_secrets import ServerSecrets
from portal.storage.models import (
    Attachment,
    CaseEvent,
    Message,
    ReceiptStash,
    Report,
    RoutingRule,
    WorkforceMember,
    new_id,
    utcnow,
)


@dataclass
class NewReport:
    """What the reporter gave us, validated. Identity fields are dropped for anonymous reports."""

    mode: str
    category: str
    summary: str
    details: str
    subject_name: str = ""
    subject_staff_number: str = ""
    subject_command: str | None = None
    occurred_on: date | None = None
    location: str = ""
    witnesses: str = ""
    fear_of_reprisal: bool = False
    reporter_name: str = ""
    reporter_contact: str = ""
    attachments: list[CleanFile] = field(default_factory=list)
    hold_until_corroborated: bool = False  # kept from every queue until someone else reports the person
    wants_email_updates: bool = False  # only kept for confidential or named reports with an email address
    submission_token: str = ""  # the form's one-time token, so a re-sent form is not a second report


NOT_HELD = "Not held: others had already raised concerns about the person."
# How long a receipt is kept for a reporter whose response was lost (stash_receipt).
RECEIPT_KEPT = timedelta(minutes=30)


@dataclass(frozen=True)
class IntakeSettings:
    acknowledge_within_days: int = 7
    update_every_days: int = 28
    hold_days: int = 365  # how long a report held until corroborated is kept before it is deleted
    corroborate_after: int = 1  # other reports about the person that release a held one


@dataclass(frozen=True)
class Submitted:
    report: Report
    receipt: str  # shown once to the reporter, then forgotten
    data_key: bytes  # for in-process follow-up only (demo, seeding); never stored unwrapped
    queue_code: str = ""  # the queue it was routed to (the report row holds only the queue's id)
    # The reporter asked to hold it, but others had already raised concerns about the person: it went
    # forward at once, and the receipt says why.
    hold_declined: bool = False
    # Members of the queue whose name matches the subject's (portal.access): the case is hidden from them
    # (nothing stored says who); these supervisors are owed a mail (the outbox, in the case's transaction).
    probable_conflicts: list[int] = field(default_factory=list)
    supervisors_to_tell: list[str] = field(default_factory=list)


def load_config_and_sent(session: Session, secrets: ServerSecrets, token: str) -> tuple[IntakeConfig, str | None]:
    """load_config, and already_submitted for the form's token: one statement while the configuration has not
    changed (portal.domain.intake_config)."""
    return intake_config.load_config_and_sent(session, submission_index(secrets, token))


def submission_index(secrets: ServerSecrets, token: str) -> bytes | None:
    return crypto.blind_index(secrets.receipt_pepper, "submission", token.strip())


def already_submitted(session: Session, secrets: ServerSecrets, token: str) -> str | None:
    """The reference of the report this form token already made, if any."""
    index = submission_index(secrets, token)
    if index is None:
        return None
    return session.scalar(select(Report.reference).where(Report.submission_index == index))


@dataclass(frozen=True)
class Recovered:
    """A receipt shown again to a reporter whose response was lost, with what the receipt page says beside it."""

    receipt: str
    reference: str
    acknowledge_due: datetime
    mode: str
    held: bool
    held_until: datetime | None
    hold_declined: bool


def _stash_lookup(secrets: ServerSecrets, token: str) -> bytes | None:
    return crypto.blind_index(secrets.receipt_pepper, "receipt-stash", token.strip())


def stash_receipt(session: Session, secrets: ServerSecrets, token: str, receipt: str, now: datetime) -> None:
    """Keep a new case's receipt for RECEIPT_KEPT, wrapped under a key derived from the form's submission token,
    so that the same form sent again after a lost response shows it again (recover_receipt). The database holds a
    keyed hash of the token and the wrapped receipt: without the token (never stored) nothing opens it."""
    lookup = _stash_lookup(secrets, token)
    if lookup is None:
        return
    wrapped = sealing.seal_kept_receipt(token, secrets.receipt_pepper, receipt)
    values = {"lookup": lookup, "wrapped": wrapped, "expires_at": now + RECEIPT_KEPT}
    session.connection().execute(STASH_INSERT, values)  # at once, in the session's transaction


STASH_INSERT = insert(ReceiptStash.__table__)
EVENT_INSERT = insert(CaseEvent.__table__)


def recover_receipt(
    session: Session, secrets: ServerSecrets, token: str, now: datetime | None = None
) -> Recovered | None:
    """The receipt of the case this submission token made, if it is still kept: it is deleted as it is given
    (shown once more, never twice), and one past its time is deleted unread. The caller commits."""
    now = now or utcnow()
    lookup, index = _stash_lookup(secrets, token), submission_index(secrets, token)
    stash = session.get(ReceiptStash, lookup) if lookup is not None else None
    if stash is None:
        return None
    session.delete(stash)
    case = session.execute(
        select(
            Report.reference,
            Report.acknowledge_due_at,
            Report.mode,
            Report.held,
            Report.held_until,
            Report.routing_reasons,
        ).where(Report.submission_index == index)
    ).first()
    if stash.expires_at < now or case is None:
        return None
    try:
        receipt = sealing.open_kept_receipt(token, secrets.receipt_pepper, stash.wrapped)
    except crypto.DecryptionError:
        return None
    reasons = case.routing_reasons or []
    return Recovered(
        receipt, case.reference, case.acknowledge_due_at, case.mode, case.held, case.held_until, NOT_HELD in reasons
    )


def forget_expired_receipts(session: Session, now: datetime | None = None) -> int:
    """Delete the kept receipts past their time (the worker and send-reminders call it). The caller commits."""
    result = session.execute(delete(ReceiptStash).where(ReceiptStash.expires_at < (now or utcnow())))
    return int(getattr(result, "rowcount", 0) or 0)


def load_rules(session: Session) -> list[routing.Rule]:
    rows = session.scalars(select(RoutingRule).order_by(RoutingRule.position)).all()
    return [routing.Rule(r.kind, r.target, r.reason, dict(r.params or {}), r.enabled) for r in rows]


def seal_attachment(report: Report, dek: bytes, clean: CleanFile, message_id: str | None = None) -> Attachment:
    attachment = Attachment(
        id=new_id(),
        report_id=report.id,
        message_id=message_id,
        content_type=clean.content_type,
        size=len(clean.data),
    )
    sealing.seal(dek, attachment, "filename", clean.filename)
    sealing.seal(dek, attachment, "content", clean.data)
    return attachment


def seal_message(report: Report, dek: bytes, author: str, body: str, at: datetime | None = None) -> Message:
    message = Message(id=new_id(), report_id=report.id, author=author, created_at=at or utcnow())
    sealing.seal(dek, message, "body", body)
    return message


def report_values(new: NewReport) -> dict[str, str]:
    """The reporter's answers as the text sealed in a case's content fields."""
    values = {name: getattr(new, name) for name in REPORT_FIELDS if name != "occurred_on"}
    values["occurred_on"] = new.occurred_on.isoformat() if new.occurred_on else ""
    return values


def submit_report(
    session: Session,
    new: NewReport,
    secrets: ServerSecrets,
    settings: IntakeSettings,
    now: datetime | None = None,
    *,
    config: IntakeConfig | None = None,
) -> Submitted:
    """Seal, route and store a new report, start its clocks, and return it with its one-time receipt.

    `config`: the configuration the caller already read in this transaction (load_config), if any.
    In the same transaction: the queue's new-case mail and any conflict notice go into the outbox (sent by the
    worker, never by the request), and the receipt is kept wrapped under the submission token for a lost
    response (stash_receipt). The caller commits. Nothing here keeps the receipt or any plaintext readable
    without the reporter's token.
    """
    now = now or utcnow()
    if new.mode == "anonymous":
        new.reporter_name = new.reporter_contact = ""
    with session.no_autoflush:  # the reads below need nothing pending: one flush at the end, not nine
        return _submit(session, new, secrets, settings, now, config or load_config(session))


@dataclass(frozen=True)
class _Routing:
    """What intake found out about a new report's subject, and where the report goes."""

    staff_index: bytes | None
    name_index: bytes | None
    member: Any  # the subject's entry in the workforce directory (new_cases.subject_facts), if any
    subject_command: str | None
    earlier: int  # concerns already on record about the person
    flags: list[str]  # early-intervention rules that matched (portal.domain.patterns)
    holding: bool  # kept back until someone else comes forward
    releasing: list[Report]  # held reports this one corroborates
    decision: routing.RoutingDecision


def _route(
    session: Session,
    new: NewReport,
    secrets: ServerSecrets,
    settings: IntakeSettings,
    now: datetime,
    config: IntakeConfig,
) -> _Routing:
    staff_index = crypto.staff_number_index(secrets.blind_index_key, new.subject_staff_number)
    name_index = crypto.name_index(secrets.blind_index_key, new.subject_name)
    member, any_held = new_cases.subject_facts(session, staff_index, name_index)
    subject_command = new.subject_command or (member.command if member else None)
    earlier, held_ids = patterns.concerns_about(session, staff_index, name_index)
    flags = patterns.assess(earlier, now, config.pattern_rules)
    # Held reports are rare: their wider match (held_reports) runs only when there are any.
    held_matches = held_reports(session, held_ids, staff_index, name_index) if any_held or held_ids else []
    # Held means what the reporter was told: kept back only while nobody else has come forward about the person.
    on_record = len(earlier) + len(held_matches)
    holding = new.hold_until_corroborated and on_record < settings.corroborate_after
    releasing = held_matches if on_record >= settings.corroborate_after else []
    if holding:
        decision = routing.RoutingDecision(routing.DPS, ["Held until someone else raises a concern about the person."])
    else:
        facts = routing.ReportFacts(
            new.category,
            subject_command,
            new.fear_of_reprisal,
            len(earlier),
            pattern_flagged=bool(flags),
            corroborates_held=bool(releasing),
        )
        decision = routing.route_report(facts, config.rules, config.queues)
    if new.hold_until_corroborated and not holding:
        decision = routing.RoutingDecision(
            decision.queue,
            [*decision.reasons, NOT_HELD],
        )
    return _Routing(staff_index, name_index, member, subject_command, len(earlier), flags, holding, releasing, decision)


def _new_report(
    new: NewReport, routed: _Routing, secrets: ServerSecrets, settings: IntakeSettings, now: datetime, queue_id: int
) -> Report:
    """The case's row in clear (portal.domain.new_cases), not yet sealed nor numbered."""
    clocks = workflow.intake_clocks(now, settings.acknowledge_within_days, settings.update_every_days)
    member = routed.member
    return Report(
        **new_cases.new_case_row(
            received_at=now,
            mode=new.mode,
            category=new.category,
            queue_id=queue_id,
            source="portal",
            acknowledge_due_at=clocks.acknowledge_due_at,
            next_update_due_at=clocks.next_update_due_at,
            routing_reasons=routed.decision.reasons,
            fear_of_reprisal=new.fear_of_reprisal,
            reporter_wants_email=new.wants_email_updates and new.mode != "anonymous" and "@" in new.reporter_contact,
            subject_command=routed.subject_command,
            subject_rank_band=member.rank_band if member else None,
            subject_ethnicity=member.ethnicity if member else None,
            subject_probationer=member.probationer if member else None,
            subject_staff_index=routed.staff_index,
            subject_name_index=routed.name_index,
            submission_index=submission_index(secrets, new.submission_token),
            earlier_concerns=routed.earlier,
            pattern_flags=routed.flags,
            held=routed.holding,
            held_until=now + timedelta(days=settings.hold_days) if routed.holding else None,
        )
    )


def _submit(
    session: Session,
    new: NewReport,
    secrets: ServerSecrets,
    settings: IntakeSettings,
    now: datetime,
    config: IntakeConfig,
) -> Submitted:
    routed = _route(session, new, secrets, settings, now, config)
    holding, decision = routed.holding, routed.decision
    report = _new_report(new, routed, secrets, settings, now, config.queues[decision.queue].id)
    queue, probable = readable_queue(session, report, decision, config.queues, secrets.blind_index_key, holding)
    supervisors = access.supervisors_to_tell(session, report, secrets.blind_index_key) if probable else []
    receipt = crypto.generate_receipt()
    normalised = crypto.normalise_receipt(receipt)
    assert normalised is not None
    report.receipt_index = crypto.receipt_lookup_index(secrets.receipt_pepper, normalised)
    dek = sealing.seal_new_case(
        report, report_values(new), queue, secrets.recovery_public_key, generation=queue.generation, receipt=normalised
    )
    # Every read first (earlier open cases' holders: the outbox rows wait in the session), then the reference
    # (new_cases.next_reference: on SQLite the year's counter stays locked until commit), then the writes.
    # No concern at all about the person was on record a moment ago (_route): no earlier case's holder to tell.
    if routed.earlier:
        patterns.tell_earlier_holders(session, report, secrets.blind_index_key, now)
    report.reference = new_cases.next_reference(session, now.year)
    session.add(report)
    session.flush()  # children refer to the report row; without relationships the order is ours to set
    # The rows nothing reads back in this request go in as they are made (Core: no unit of work to track them).
    session.connection().execute(EVENT_INSERT, new_cases.received_event(report.id, now))
    for clean in new.attachments:
        session.add(seal_attachment(report, dek, clean))
    for held in routed.releasing:
        release_held(session, held, settings, now, reason="corroborated")
    notify.queue_new_case(session, report, now)  # nothing for a held report: its release owes it
    stash_receipt(session, secrets, new.submission_token, receipt, now)
    if probable:
        notify.queue_conflict(session, report.reference, supervisors, declared=False)
    session.flush()
    declined = new.hold_until_corroborated and not holding
    return Submitted(report, receipt, dek, queue.code, declined, probable, supervisors)


def readable_queue(
    session: Session,
    report: Report,
    decision: routing.RoutingDecision,
    queues: Mapping[str, QueueKey],
    index_key: bytes,
    holding: bool,
) -> tuple[QueueKey, list[int]]:
    """The queue the rules chose, if someone there can read the case (an enabled member without a conflict
    of interest); otherwise DPS, with the reason on the case. A held report waits for DPS in any case.

    With it, the members of that queue whose name matches the subject's (probable conflicts: the case is
    hidden from them, and a supervisor is told). Nothing is stored or audited about who matched: a row naming
    them beside the case would name the subject to anyone with the database. One look at the queue's members
    and their conflicts serves both answers (portal.access's checks, not a copy of them)."""
    queue = queues[decision.queue]
    if holding:
        return queue, []
    people, found = _screen(session, report, index_key)
    if queue.code != routing.DPS and len(found) == len(people):  # nobody there can read it
        queue = queues[routing.DPS]
        report.queue_id = queue.id
        report.routing_reasons = [
            *report.routing_reasons,
            f"Sent to {routing.DPS}: {decision.queue} has no member who can read it.",
        ]
        people, found = _screen(session, report, index_key)
    probable = [officer_id for officer_id, reason in found.items() if reason == access.NAME]
    return queue, probable


def _screen(session: Session, report: Report, index_key: bytes) -> tuple[list[Any], dict[int, str]]:
    """The enabled members of the report's queue, and the conflicts among them (access.conflicts), by officer."""
    people = queue_keys.members(session, report.queue_id)
    if report.subject_name_index is None and report.subject_staff_index is None:
        return people, {}  # names nobody: no conflict to find
    return people, access.conflicts(session, report, access.identities(session, people, index_key))


def held_reports(
    session: Session, ids: list[str], staff_index: bytes | None = None, name_index: bytes | None = None
) -> list[Report]:
    """Held reports about the same person as a new report. patterns.concerns_about finds those with the same
    key (`ids`); a held report also matches by name where the workforce directory, or the held report's own
    staff number, links the name to the number. Two staff numbers that differ are two people. Held reports
    are few (a partial index holds them), so the wider match costs one small query."""
    conditions = []
    if name_index is not None:
        conditions.append(Report.subject_name_index == name_index)
        named = select(WorkforceMember.staff_number_index).where(WorkforceMember.name_index == name_index)
        conditions.append(Report.subject_staff_index.in_(named))
    if staff_index is not None:
        conditions.append(Report.subject_staff_index == staff_index)
        numbered = select(WorkforceMember.name_index).where(WorkforceMember.staff_number_index == staff_index)
        conditions.append(Report.subject_name_index.in_(numbered))
    if ids:
        conditions.append(Report.id.in_(ids))
    if not conditions:
        return []
    found = session.scalars(
        select(Report)
        # `held` spelled as the partial index's predicate, so that SQLite may (and must) use that small index.
        .where(text("reports.held"), or_(*conditions))
        .with_hint(Report, "INDEXED BY ix_reports_held_until", "sqlite")
    ).all()
    return [
        held
        for held in found
        if staff_index is None or held.subject_staff_index is None or held.subject_staff_index == staff_index
    ]


def release_held(session: Session, report: Report, settings: IntakeSettings, now: datetime, *, reason: str) -> None:
    """A held report joins DPS's queue as a new case: its clocks start now. `reason`: corroborated or asked."""
    clocks = workflow.intake_clocks(now, settings.acknowledge_within_days, settings.update_every_days)
    report.held = False
    report.held_until = None
    report.released_at = now
    report.acknowledge_due_at = clocks.acknowledge_due_at
    report.next_update_due_at = clocks.next_update_due_at
    explanation = {
        "corroborated": "Released: someone else raised a concern about the same person.",
        "asked": "Released by the reporter before anyone else came forward.",
    }[reason]
    report.routing_reasons = [*report.routing_reasons, explanation]
    notify.queue_new_case(session, report, now)  # DPS is owed its new-case mail, in this transaction
    session.add(CaseEvent(report_id=report.id, at=now, kind=f"released-{reason}"))


def withdraw_held(session: Session, report: Report) -> None:
    """The reporter withdraws a held report: nobody has seen it, so it is deleted with everything in it."""
    if not report.held:
        raise ValueError("only a held report can be withdrawn")
    session.delete(report)


def expire_held(session: Session, now: datetime | None = None) -> int:
    """Delete held reports past their time (the reporter was warned on the status page). Returns how many."""
    now = now or utcnow()
    expired = session.scalars(select(Report).where(Report.held.is_(True), Report.held_until < now)).all()
    for report in expired:
        session.delete(report)
    return len(expired)
