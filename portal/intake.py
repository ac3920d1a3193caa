"""Intake: turning a reporter's form into a sealed, routed case with its clocks and a receipt."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import crypto, patterns, routing, workflow
from .attachments import CleanFile
from .models import (
    Attachment,
    CaseEvent,
    Message,
    Queue,
    ReferenceCounter,
    Report,
    RoutingRule,
    WorkforceMember,
    new_id,
    utcnow,
)
from .secrets import ServerSecrets

REPORT_FIELDS = (
    "summary",
    "details",
    "subject_name",
    "subject_staff_number",
    "occurred_on",
    "location",
    "witnesses",
    "reporter_name",
    "reporter_contact",
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


@dataclass(frozen=True)
class IntakeSettings:
    acknowledge_within_days: int = 7
    update_every_days: int = 28
    hold_days: int = 365  # how long a report held until corroborated is kept before it is deleted


@dataclass(frozen=True)
class Submitted:
    report: Report
    receipt: str  # shown once to the reporter, then forgotten
    data_key: bytes  # for in-process follow-up only (demo, seeding); never stored unwrapped


def data_key_context(report_id: str) -> str:
    """What a wrapped data key is bound to: its report. A wrapped key copied to another row fails."""
    return f"report-dek|{report_id}"


def format_reference(year: int, sequence: int) -> str:
    return f"CR-{year:04d}-{sequence:06d}"


def next_reference(session: Session, year: int) -> str:
    """Atomically take the next sequence number of the year (row-locked UPDATE ... RETURNING)."""
    for _ in range(3):
        sequence = session.execute(
            update(ReferenceCounter)
            .where(ReferenceCounter.year == year)
            .values(last=ReferenceCounter.last + 1)
            .returning(ReferenceCounter.last)
        ).scalar()
        if sequence is not None:
            return format_reference(year, sequence)
        try:
            with session.begin_nested():
                session.add(ReferenceCounter(year=year, last=1))
            return format_reference(year, 1)
        except IntegrityError:
            continue  # another worker created the year's counter first: take the next number
    raise RuntimeError("could not allocate a case reference")


def submission_index(secrets: ServerSecrets, token: str) -> bytes | None:
    return crypto.blind_index(secrets.receipt_pepper, "submission", token.strip())


def already_submitted(session: Session, secrets: ServerSecrets, token: str) -> str | None:
    """The reference of the report this form token already made, if any."""
    index = submission_index(secrets, token)
    if index is None:
        return None
    return session.scalar(select(Report.reference).where(Report.submission_index == index))


def load_rules(session: Session) -> list[routing.Rule]:
    rows = session.scalars(select(RoutingRule).order_by(RoutingRule.position)).all()
    return [routing.Rule(r.kind, r.target, r.reason, dict(r.params or {}), r.enabled) for r in rows]


def seal_report_fields(report: Report, dek: bytes, values: dict[str, str]) -> None:
    """Seal each content field under the data key, bound to its column and row; empty optional ones stay NULL."""
    for name in REPORT_FIELDS:
        value = values.get(name) or ""
        required = name in ("summary", "details")
        sealed = (
            crypto.seal_text(dek, value, table="reports", column=name, row=report.id) if value or required else None
        )
        setattr(report, f"{name}_sealed", sealed)


def seal_attachment(report: Report, dek: bytes, clean: CleanFile, message_id: str | None = None) -> Attachment:
    attachment = Attachment(
        id=new_id(),
        report_id=report.id,
        message_id=message_id,
        content_type=clean.content_type,
        size=len(clean.data),
    )
    attachment.filename_sealed = crypto.seal_text(
        dek, clean.filename, table="attachments", column="filename", row=attachment.id
    )
    attachment.content_sealed = crypto.seal_field(
        dek, clean.data, table="attachments", column="content", row=attachment.id
    )
    return attachment


def seal_message(report: Report, dek: bytes, author: str, body: str, at: datetime | None = None) -> Message:
    message = Message(id=new_id(), report_id=report.id, author=author, created_at=at or utcnow())
    message.body_sealed = crypto.seal_text(dek, body, table="messages", column="body", row=message.id)
    return message


def wrap_data_key(report: Report, dek: bytes, queue: Queue, recovery_public_key: bytes) -> None:
    context = data_key_context(report.id)
    report.dek_for_queue = crypto.seal_to(queue.public_key, dek, context=context)
    report.dek_for_recovery = crypto.seal_to(recovery_public_key, dek, context=context)


def submit_report(
    session: Session,
    new: NewReport,
    secrets: ServerSecrets,
    settings: IntakeSettings,
    now: datetime | None = None,
) -> Submitted:
    """Seal, route and store a new report, start its clocks, and return it with its one-time receipt.

    The caller commits. Nothing here keeps the receipt or any plaintext.
    """
    now = now or utcnow()
    if new.mode == "anonymous":
        new.reporter_name = new.reporter_contact = ""
    with session.no_autoflush:  # the reads below need nothing pending: one flush at the end, not nine
        return _submit(session, new, secrets, settings, now)


def _submit(
    session: Session, new: NewReport, secrets: ServerSecrets, settings: IntakeSettings, now: datetime
) -> Submitted:
    staff_index = crypto.staff_number_index(secrets.blind_index_key, new.subject_staff_number)
    name_index = crypto.name_index(secrets.blind_index_key, new.subject_name)
    member = workforce_member(session, staff_index)
    subject_command = new.subject_command or (member.command if member else None)
    earlier = patterns.earlier_concerns(session, staff_index, name_index)
    flags = patterns.assess(earlier, now, patterns.load_rules(session))
    held_matches = held_reports_about(session, staff_index, name_index)

    queues = {q.code: q for q in session.scalars(select(Queue)).all()}
    holding = new.hold_until_corroborated and not held_matches
    if holding:
        decision = routing.RoutingDecision(routing.DPS, ["Held until someone else raises a concern about the person."])
    else:
        facts = routing.ReportFacts(
            new.category,
            subject_command,
            new.fear_of_reprisal,
            len(earlier),
            pattern_flagged=bool(flags),
            corroborates_held=bool(held_matches),
        )
        decision = routing.route_report(facts, load_rules(session), queues)
    clocks = workflow.intake_clocks(now, settings.acknowledge_within_days, settings.update_every_days)

    report = Report(
        id=new_id(),
        received_at=now,
        mode=new.mode,
        category=new.category,
        state="received",
        queue_id=queues[decision.queue].id,
        routing_reasons=decision.reasons,
        iopc_flags=routing.iopc_referral_flags(new.category),
        iopc_flagged=bool(routing.iopc_referral_flags(new.category)),
        reporter_wants_email=new.wants_email_updates and new.mode != "anonymous" and "@" in new.reporter_contact,
        fear_of_reprisal=new.fear_of_reprisal,
        subject_command=subject_command,
        subject_rank_band=member.rank_band if member else None,
        subject_ethnicity=member.ethnicity if member else None,
        subject_probationer=member.probationer if member else None,
        subject_staff_index=staff_index,
        subject_name_index=name_index,
        submission_index=submission_index(secrets, new.submission_token),
        earlier_concerns=len(earlier),
        pattern_flags=flags,
        held=holding,
        held_until=now + timedelta(days=settings.hold_days) if holding else None,
        acknowledge_due_at=clocks.acknowledge_due_at,
        next_update_due_at=clocks.next_update_due_at,
    )
    dek = crypto.new_data_key()
    receipt = crypto.generate_receipt()
    normalised = crypto.normalise_receipt(receipt)
    assert normalised is not None
    report.receipt_index = crypto.receipt_lookup_index(secrets.receipt_pepper, normalised)
    report.dek_for_receipt = crypto.wrap_key(crypto.receipt_key(normalised), dek, context=data_key_context(report.id))
    wrap_data_key(report, dek, queues[decision.queue], secrets.recovery_public_key)
    values = {name: getattr(new, name) for name in REPORT_FIELDS if name != "occurred_on"}
    values["occurred_on"] = new.occurred_on.isoformat() if new.occurred_on else ""
    seal_report_fields(report, dek, values)
    # The year's counter is row-locked until commit: take the number as late as possible.
    report.reference = next_reference(session, now.year)
    session.add(report)
    session.flush()  # children refer to the report row; without relationships the order is ours to set
    session.add(CaseEvent(report_id=report.id, at=now, kind="received", state="received"))
    for clean in new.attachments:
        session.add(seal_attachment(report, dek, clean))
    for held in held_matches:
        release_held(session, held, settings, now, reason="corroborated")
    session.flush()
    return Submitted(report, receipt, dek)


def workforce_member(session: Session, staff_index: bytes | None) -> WorkforceMember | None:
    """The directory entry for a staff number, if the directory has it."""
    if staff_index is None:
        return None
    return session.scalar(select(WorkforceMember).where(WorkforceMember.staff_number_index == staff_index))


def held_reports_about(session: Session, staff_index: bytes | None, name_index: bytes | None) -> list[Report]:
    """Reports held until corroborated that are about the same person."""
    condition = patterns.subject_condition(staff_index, name_index)
    if condition is None:
        return []
    return list(session.scalars(select(Report).where(condition, Report.held.is_(True))))


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
