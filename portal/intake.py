"""Intake: turning a reporter's form into a sealed, routed case with its clocks and a receipt."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import crypto, routing, workflow
from .attachments import CleanFile
from .models import (
    Attachment,
    CaseEvent,
    Message,
    Queue,
    ReferenceCounter,
    Report,
    RoutingRule,
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
    wants_email_updates: bool = False  # only kept for confidential or named reports with an email address
    submission_token: str = ""  # the form's one-time token, so a re-sent form is not a second report


@dataclass(frozen=True)
class IntakeSettings:
    acknowledge_within_days: int = 7
    update_every_days: int = 28


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


def count_earlier_concerns(session: Session, staff_index: bytes | None, name_index: bytes | None) -> int:
    """Earlier concerns about the same person: by staff number, or by name where no number was given."""
    if staff_index is not None:
        condition = Report.subject_staff_index == staff_index
    elif name_index is not None:
        condition = Report.subject_name_index == name_index
    else:
        return 0
    return session.scalar(select(func.count()).select_from(Report).where(condition)) or 0


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
    staff_index = crypto.staff_number_index(secrets.blind_index_key, new.subject_staff_number)
    name_index = crypto.name_index(secrets.blind_index_key, new.subject_name)
    earlier = count_earlier_concerns(session, staff_index, name_index)

    queues = {q.code: q for q in session.scalars(select(Queue)).all()}
    facts = routing.ReportFacts(new.category, new.subject_command, new.fear_of_reprisal, earlier)
    decision = routing.route_report(facts, load_rules(session), queues)
    clocks = workflow.intake_clocks(now, settings.acknowledge_within_days, settings.update_every_days)

    report = Report(
        id=new_id(),
        reference=next_reference(session, now.year),
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
        subject_command=new.subject_command or None,
        subject_staff_index=staff_index,
        subject_name_index=name_index,
        submission_index=submission_index(secrets, new.submission_token),
        earlier_concerns=earlier,
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
    session.add(report)
    session.flush()  # children refer to the report row; without relationships the order is ours to set
    session.add(CaseEvent(report_id=report.id, at=now, kind="received", state="received"))
    for clean in new.attachments:
        session.add(seal_attachment(report, dek, clean))
    session.flush()
    return Submitted(report, receipt, dek)
