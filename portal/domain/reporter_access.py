"""The reporter's side of a case after intake: unlocking it with the receipt, reading it, replying.

An unlocked data key is kept server-side only sealed under a random key that lives in the reporter's
session cookie, for a limited time. The receipt itself is used once per unlock and never kept.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal import sealing
from portal.core import crypto, workflow
from portal.core.attachments import CleanFile
from portal.domain.intake import seal_attachment, seal_message
from portal.storage.models import Attachment, CaseEvent, Message, Report, ReporterAccess, utcnow

# Used when a receipt is not even well-formed, so that the look-up costs the same as a real one.
_DECOY_RECEIPT = "0" * crypto.RECEIPT_CHARS


@dataclass(frozen=True)
class AccessToken:
    """What goes in the reporter's cookie: which access row, and the key that opens it."""

    access_id: str
    key: bytes


def unlock(session: Session, receipt_text: str, pepper: bytes, minutes: int) -> AccessToken | None:
    """Open a case with its receipt. None for any wrong receipt, well-formed or not, by the same path."""
    normalised = crypto.normalise_receipt(receipt_text)
    index = crypto.receipt_lookup_index(pepper, normalised or _DECOY_RECEIPT)
    report = session.execute(select(Report.id, Report.dek_for_receipt).where(Report.receipt_index == index)).first()
    if report is None or normalised is None or report.dek_for_receipt is None:
        return None
    try:
        dek = sealing.open_with_receipt(normalised, report.dek_for_receipt, report.id)
    except crypto.DecryptionError:
        return None
    access_key = os.urandom(crypto.KEY_BYTES)
    access_id = secrets.token_urlsafe(32)
    session.execute(delete(ReporterAccess).where(ReporterAccess.expires_at < utcnow()))
    session.add(
        ReporterAccess(
            id=access_id,
            report_id=report.id,
            dek_sealed=sealing.wrap_for_reporter_session(access_key, dek, access_id),
            expires_at=utcnow() + timedelta(minutes=minutes),
        )
    )
    return AccessToken(access_id, access_key)


def resume(session: Session, token: AccessToken) -> tuple[Report, bytes] | None:
    """The report and its data key for a live access token; None if expired, signed out or altered."""
    access = session.get(ReporterAccess, token.access_id)
    if access is None or access.expires_at < utcnow():
        return None
    try:
        dek = sealing.open_for_reporter_session(token.key, access.dek_sealed, access.id)
    except crypto.DecryptionError:
        return None
    report = session.get(Report, access.report_id)
    return (report, dek) if report is not None else None


def sign_out(session: Session, access_id: str) -> None:
    session.execute(delete(ReporterAccess).where(ReporterAccess.id == access_id))


@dataclass(frozen=True)
class ThreadItem:
    at: datetime
    author: str
    body: str
    attachments: list[str]


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    label: str


@dataclass(frozen=True)
class StatusView:
    reference: str
    state: str
    state_label: str
    state_explained: str
    received_at: datetime
    next_update_due: datetime | None
    summary: str
    attachments: list[str]
    thread: list[ThreadItem]
    timeline: list[TimelineItem]
    held: bool = False
    held_until: datetime | None = None


EVENT_LABELS = {
    "received": "Report received",
    "acknowledged": "Acknowledged by the unit handling it",
    "state-changed": "Stage changed",
    "reporter-replied": "You sent a message",
    "unit-messaged": "The unit sent you a message",
    "rerouted": "Passed to another unit",
    "released-corroborated": "Someone else raised a concern about the same person: your report went to DPS",
    "released-asked": "You released your report to DPS",
    "review-requested": "You asked for the handling to be reviewed",
}


def status_view(session: Session, report: Report, dek: bytes) -> StatusView:
    """Everything the status page shows. Decrypts only what it displays: summary, thread, file names."""
    messages = session.scalars(select(Message).where(Message.report_id == report.id).order_by(Message.created_at)).all()
    files = session.execute(
        select(Attachment.id, Attachment.message_id, Attachment.filename_sealed)
        .where(Attachment.report_id == report.id)
        .order_by(Attachment.created_at, Attachment.id)
    ).all()
    names_by_message: dict[str | None, list[str]] = {}
    for file in files:
        name = sealing.open_text(dek, file, "filename", table="attachments") or ""
        names_by_message.setdefault(file.message_id, []).append(name)
    thread = [
        ThreadItem(
            m.created_at,
            m.author,
            sealing.open_text(dek, m, "body") or "",
            names_by_message.get(m.id, []),
        )
        for m in messages
    ]
    events = session.scalars(
        select(CaseEvent).where(CaseEvent.report_id == report.id).order_by(CaseEvent.at, CaseEvent.id)
    ).all()
    timeline = [
        TimelineItem(
            e.at,
            f"Stage: {workflow.REPORTER_WORDING[e.state][0]}"
            if e.kind == "state-changed" and e.state in workflow.REPORTER_WORDING
            else EVENT_LABELS.get(e.kind, e.kind),
        )
        for e in events
    ]
    label, explained = workflow.REPORTER_WORDING[report.state]
    return StatusView(
        reference=report.reference,
        state=report.state,
        state_label=label,
        state_explained=explained,
        received_at=report.received_at,
        next_update_due=report.held_until
        if report.held
        else workflow.next_contact_due(
            report.state, report.acknowledged_at, report.acknowledge_due_at, report.next_update_due_at
        ),
        summary=sealing.open_text(dek, report, "summary") or "",
        attachments=names_by_message.get(None, []),
        thread=thread,
        timeline=timeline,
        held=report.held,
        held_until=report.held_until,
    )


def reply(session: Session, report: Report, dek: bytes, body: str, files: list[CleanFile]) -> Message:
    """The reporter answers a question or adds evidence."""
    now = utcnow()
    message = seal_message(report, dek, "reporter", body, at=now)
    session.add(message)
    session.flush()
    for clean in files:
        session.add(seal_attachment(report, dek, clean, message_id=message.id))
    session.add(CaseEvent(report_id=report.id, at=now, kind="reporter-replied"))
    return message
