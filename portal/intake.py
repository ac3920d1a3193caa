"""Intake: turning a reporter's form into a sealed, routed case with its clocks and a receipt."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    LargeBinary,
    String,
    cast,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import access, crypto, patterns, routing, sealing, workflow
from .attachments import CleanFile
from .models import (
    Attachment,
    CaseEvent,
    Command,
    Message,
    Queue,
    ReferenceCounter,
    Report,
    RoutingRule,
    Setting,
    WorkforceMember,
    new_id,
    utcnow,
)
from .sealing import REPORT_FIELDS
from .secrets import ServerSecrets


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


# The clocks an operator sets (portal.settings edits them). Named here so that one read serves an intake.
ACKNOWLEDGE_SETTING = "clock.acknowledge_within_days"
UPDATE_SETTING = "clock.update_every_days"
# How many other reports about the same person release a report held until corroborated (default one).
CORROBORATE_SETTING = "held.corroborate_after"


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
    # Who to tell about the new case (notify.tell_of_new_case, after the commit), when the caller asked for
    # them; None when not asked for, or when the report is held (nobody is told about a held report). When
    # there are any, the report owes its new-case mail until the caller's notify.tell_of_new_case settles it.
    recipients: list[str] | None = None
    # The reporter asked to hold it, but others had already raised concerns about the person: it went
    # forward at once, and the receipt says why.
    hold_declined: bool = False
    # Members of the queue whose name matches the subject's (portal.access): the case is hidden from them
    # (nothing stored says who); the caller tells these supervisors after the commit.
    probable_conflicts: list[int] = field(default_factory=list)
    supervisors_to_tell: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QueueKey:
    """What an intake needs of a queue: its id, and the public key a new report's data key is sealed to."""

    id: int
    code: str
    public_key: bytes
    generation: int = 1  # of the queue's key pair (portal.queue_keys)


@dataclass(frozen=True)
class IntakeConfig:
    """The operator's configuration an intake reads: see load_config. Shared, so never changed in place."""

    commands: tuple[tuple[str, str], ...]  # active commands as (code, name), by name: the report form's list
    queues: Mapping[str, QueueKey]  # by code
    rules: tuple[routing.Rule, ...]  # the routing rules, in order
    pattern_rules: patterns.InterventionRules
    settings: Mapping[str, str]  # the stored clock settings, by name (portal.settings.clocks_from reads them)


def _config_statement() -> Any:
    """Active commands, queues, routing rules and the intake's settings rows, as one UNION ALL.

    Every branch has the same ten columns; a branch fills those it has and leaves the rest NULL:
    command (code, name); queue (code, number=id, blob=public key, position=key generation); rule (code=kind,
    target, reason, params as JSON text, position, number=id, flag=enabled); setting (code=name, target=value).
    """
    text, number = String(), Integer()
    columns = {
        "kind": text,
        "code": text,
        "name": text,
        "target": text,
        "reason": text,
        "params": text,
        "position": number,
        "number": number,
        "flag": Boolean(),
        "blob": LargeBinary(),
    }

    def branch(kind: str, **values: Any) -> Any:
        unknown = set(values) - set(columns)
        assert not unknown, unknown
        given = {"kind": literal_column(f"'{kind}'", String), **values}
        # A typed NULL: PostgreSQL settles a UNION's column types pairwise, and NULL with NULL is text.
        return select(*(given.get(name, cast(null(), kind_)).label(name) for name, kind_ in columns.items()))

    commands = branch("c", code=Command.code, name=Command.name, flag=Command.active).where(Command.active)
    queues = branch("q", code=Queue.code, number=Queue.id, blob=Queue.public_key, position=Queue.key_generation)
    rules = branch(
        "r",
        code=RoutingRule.kind,
        target=RoutingRule.target,
        reason=RoutingRule.reason,
        params=cast(RoutingRule.params, String),
        position=RoutingRule.position,
        number=RoutingRule.id,
        flag=RoutingRule.enabled,
    )
    settings = branch("s", code=Setting.name, target=Setting.value).where(Setting.name.in_(CONFIG_SETTINGS))
    # By kind; commands by name (in the database's collation, as the form always listed them), rules in order.
    return union_all(commands, queues, rules, settings).order_by(
        literal_column("kind"), literal_column("name"), literal_column("position"), literal_column("number")
    )


CONFIG_SETTINGS = (ACKNOWLEDGE_SETTING, UPDATE_SETTING, CORROBORATE_SETTING, patterns.SETTING)
CONFIG_STATEMENT = _config_statement()


def load_config(session: Session) -> IntakeConfig:
    """The commands, queues, routing rules, pattern rules and clocks an intake uses, in one statement.

    Read afresh for every request, so a change is seen by the next request in every worker, however it
    was made (administration pages, the command line, an importer, SQL). Only the parsing is reused: rows
    equal to ones this process has already parsed give back the same IntakeConfig.
    """
    return _parse_config(tuple(map(tuple, session.execute(CONFIG_STATEMENT))))


@lru_cache(maxsize=8)
def _parse_config(rows: tuple[tuple[Any, ...], ...]) -> IntakeConfig:
    commands: list[tuple[str, str]] = []
    queues: dict[str, QueueKey] = {}
    rules: list[routing.Rule] = []
    stored: dict[str, str] = {}
    for kind, code, name, target, reason, params, position, number, flag, blob in rows:
        if kind == "c":
            commands.append((code, name))
        elif kind == "q":
            queues[code] = QueueKey(number, code, bytes(blob), position or 1)
        elif kind == "r":
            values = json.loads(params) if params is not None else None
            rules.append(routing.Rule(code, target, reason, dict(values or {}), bool(flag)))
        elif kind == "s":
            stored[code] = target
    return IntakeConfig(
        commands=tuple(commands),
        queues=MappingProxyType(queues),
        rules=tuple(rules),
        pattern_rules=patterns.parse_rules(stored.pop(patterns.SETTING, None)),
        settings=MappingProxyType(stored),
    )


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
    read_recipients: bool = False,
) -> Submitted:
    """Seal, route and store a new report, start its clocks, and return it with its one-time receipt.

    `config`: the configuration the caller already read in this transaction (load_config), if any.
    `read_recipients`: also read who to tell about the new case, before the year's counter is locked; the
    caller then sends the mail after its commit (notify.tell_of_new_case), and until then the report owes it
    (`new_case_owed`, which `send-reminders` would settle). The caller commits. Nothing here
    keeps the receipt or any plaintext.
    """
    now = now or utcnow()
    if new.mode == "anonymous":
        new.reporter_name = new.reporter_contact = ""
    with session.no_autoflush:  # the reads below need nothing pending: one flush at the end, not nine
        return _submit(session, new, secrets, settings, now, config or load_config(session), read_recipients)


def _submit(
    session: Session,
    new: NewReport,
    secrets: ServerSecrets,
    settings: IntakeSettings,
    now: datetime,
    config: IntakeConfig,
    read_recipients: bool,
) -> Submitted:
    staff_index = crypto.staff_number_index(secrets.blind_index_key, new.subject_staff_number)
    name_index = crypto.name_index(secrets.blind_index_key, new.subject_name)
    member = workforce_facts(session, staff_index)
    subject_command = new.subject_command or (member.command if member else None)
    earlier, held_ids = patterns.concerns_about(session, staff_index, name_index)
    flags = patterns.assess(earlier, now, config.pattern_rules)
    held_matches = held_reports(session, held_ids, staff_index, name_index)
    queues = config.queues
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
        decision = routing.route_report(facts, config.rules, queues)
    if new.hold_until_corroborated and not holding:
        decision = routing.RoutingDecision(
            decision.queue,
            [*decision.reasons, "Not held: others had already raised concerns about the person."],
        )
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
    queue = readable_queue(session, report, decision, queues, secrets.blind_index_key, holding)
    recipients = None
    if read_recipients and not holding:
        recipients = access.recipients(session, report, secrets.blind_index_key)
    # Owed while someone is to be told and has not been yet; a held report's is owed for its release.
    report.new_case_owed = bool(holding or recipients)
    receipt = crypto.generate_receipt()
    normalised = crypto.normalise_receipt(receipt)
    assert normalised is not None
    report.receipt_index = crypto.receipt_lookup_index(secrets.receipt_pepper, normalised)
    dek = sealing.seal_new_case(
        report, report_values(new), queue, secrets.recovery_public_key, generation=queue.generation, receipt=normalised
    )
    # The year's counter is row-locked until commit: take the number as late as possible.
    report.reference = next_reference(session, now.year)
    session.add(report)
    session.flush()  # children refer to the report row; without relationships the order is ours to set
    session.add(CaseEvent(report_id=report.id, at=now, kind="received", state="received"))
    for clean in new.attachments:
        session.add(seal_attachment(report, dek, clean))
    for held in releasing:
        release_held(session, held, settings, now, reason="corroborated")
    session.flush()
    probable, supervisors = probable_conflicts(session, report, secrets.blind_index_key)
    declined = new.hold_until_corroborated and not holding
    return Submitted(report, receipt, dek, queue.code, recipients, declined, probable, supervisors)


def probable_conflicts(session: Session, report: Report, index_key: bytes) -> tuple[list[int], list[str]]:
    """Members of the case's queue whose name matches its subject's (the case is hidden from them), and the
    supervisors to tell. Nothing is stored or audited about who matched: a row naming them beside the case
    would name the subject to anyone with the database. Nothing for a held report or one that names nobody."""
    if report.held or report.subject_name_index is None and report.subject_staff_index is None:
        return [], []
    probable = access.probable_matches(session, report, index_key)
    return probable, access.supervisors_to_tell(session, report, index_key) if probable else []


def readable_queue(
    session: Session,
    report: Report,
    decision: routing.RoutingDecision,
    queues: Mapping[str, QueueKey],
    index_key: bytes,
    holding: bool,
) -> QueueKey:
    """The queue the rules chose, if someone there can read the case (an enabled member without a conflict
    of interest); otherwise DPS, with the reason on the case. A held report waits for DPS in any case."""
    queue = queues[decision.queue]
    if holding or queue.code == routing.DPS or access.eligible_officers(session, report, index_key):
        return queue
    dps = queues[routing.DPS]
    report.queue_id = dps.id
    report.routing_reasons = [
        *report.routing_reasons,
        f"Sent to {routing.DPS}: {queue.code} has no member who can read it.",
    ]
    return dps


def workforce_facts(session: Session, staff_index: bytes | None) -> Any:
    """What the workforce directory says of a staff number (command, rank band, ethnicity, probationer)."""
    if staff_index is None:
        return None
    return session.execute(
        select(
            WorkforceMember.command,
            WorkforceMember.rank_band,
            WorkforceMember.ethnicity,
            WorkforceMember.probationer,
        ).where(WorkforceMember.staff_number_index == staff_index)
    ).first()


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
    report.new_case_owed = True  # DPS is owed its new-case mail (portal.notify)
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
