"""The reporter's draft between the question pages: kept on the server only sealed, under a key that lives only in
the reporter's session cookie (as reporter_access keeps an unlocked data key).

The answers (a dict of the form's fields, as typed) are sealed as one JSON blob; each chosen file is sealed apart,
its name apart from its bytes, so that the list of names opens without the files. A draft lives DRAFT_MINUTES from
its last change. It is deleted when the report is sent (intake.submit_report takes it from here), on "Exit this page",
and when it expires: on the next look at it, and by `sweep` (send-reminders / the worker). Nothing of it is in
clear in the database, the instance folder or a log; without the cookie's key nothing of it can be read.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal import sealing
from portal.core import crypto
from portal.core.attachments import CleanFile
from portal.storage.draft_models import DraftFile, ReportDraft
from portal.storage.models import utcnow

DRAFT_MINUTES = 60


@dataclass(frozen=True)
class DraftToken:
    """What goes in the reporter's cookie: which draft, and the key that opens it."""

    draft_id: str
    key: bytes


@dataclass(frozen=True)
class ChosenFile:
    id: str
    name: str


def _seal(token: DraftToken, column: str, row: str, data: bytes) -> bytes:
    return sealing.seal_draft_value(token.key, column, row, data)


def _open(token: DraftToken, column: str, row: str, blob: bytes) -> bytes:
    return sealing.open_draft_value(token.key, column, row, blob)


def start(session: Session, now: datetime | None = None) -> DraftToken:
    """A new, empty draft. The caller keeps the token in the reporter's cookie."""
    now = now or utcnow()
    token = DraftToken(secrets.token_urlsafe(32), os.urandom(crypto.KEY_BYTES))
    session.add(
        ReportDraft(
            id=token.draft_id,
            answers_sealed=_seal(token, "answers", token.draft_id, b"{}"),
            expires_at=now + timedelta(minutes=DRAFT_MINUTES),
        )
    )
    return token


def _live(session: Session, token: DraftToken, now: datetime) -> ReportDraft | None:
    draft = session.get(ReportDraft, token.draft_id)
    if draft is None:
        return None
    if draft.expires_at < now:
        delete_draft(session, token.draft_id)
        return None
    return draft


def answers(session: Session, token: DraftToken, now: datetime | None = None) -> dict[str, str] | None:
    """The answers so far; None if there is no such draft, it expired, or the key does not open it."""
    draft = _live(session, token, now or utcnow())
    if draft is None:
        return None
    try:
        return dict(json.loads(_open(token, "answers", draft.id, draft.answers_sealed)))
    except crypto.DecryptionError:
        return None


def save(session: Session, token: DraftToken, values: dict[str, str], now: datetime | None = None) -> bool:
    """Merge these answers into the draft and keep it another DRAFT_MINUTES. False if the draft is gone."""
    now = now or utcnow()
    current = answers(session, token, now)
    if current is None:
        return False
    current.update(values)
    draft = session.get(ReportDraft, token.draft_id)
    draft.answers_sealed = _seal(token, "answers", draft.id, json.dumps(current).encode())
    draft.expires_at = now + timedelta(minutes=DRAFT_MINUTES)
    return True


def add_file(session: Session, token: DraftToken, clean: CleanFile) -> str:
    """Seal a checked file into the draft; its id."""
    file_id = secrets.token_hex(16)
    position = session.scalar(
        select(func.coalesce(func.max(DraftFile.position), 0)).where(DraftFile.draft_id == token.draft_id)
    )
    meta = json.dumps({"name": clean.filename, "type": clean.content_type}).encode()
    session.add(
        DraftFile(
            id=file_id,
            draft_id=token.draft_id,
            position=int(position or 0) + 1,
            name_sealed=_seal(token, "file_name", file_id, meta),
            data_sealed=_seal(token, "file_data", file_id, clean.data),
        )
    )
    return file_id


def chosen_files(session: Session, token: DraftToken) -> list[ChosenFile]:
    """The names of the files in the draft, in the order chosen (their bytes stay sealed)."""
    rows = session.execute(
        select(DraftFile.id, DraftFile.name_sealed)
        .where(DraftFile.draft_id == token.draft_id)
        .order_by(DraftFile.position)
    ).all()
    return [ChosenFile(row.id, json.loads(_open(token, "file_name", row.id, row.name_sealed))["name"]) for row in rows]


def file_count(session: Session, token: DraftToken) -> int:
    return int(session.scalar(select(func.count()).where(DraftFile.draft_id == token.draft_id)) or 0)


def clean_files(session: Session, token: DraftToken) -> list[CleanFile]:
    """Every file of the draft, opened, for sending."""
    rows = session.scalars(
        select(DraftFile).where(DraftFile.draft_id == token.draft_id).order_by(DraftFile.position)
    ).all()
    files = []
    for row in rows:
        meta = json.loads(_open(token, "file_name", row.id, row.name_sealed))
        files.append(CleanFile(meta["name"], meta["type"], _open(token, "file_data", row.id, row.data_sealed)))
    return files


def remove_file(session: Session, token: DraftToken, file_id: str) -> None:
    session.execute(delete(DraftFile).where(DraftFile.draft_id == token.draft_id, DraftFile.id == file_id))


def delete_draft(session: Session, draft_id: str) -> None:
    """The draft and its files, gone (on sending, on exit, on expiry)."""
    session.execute(delete(DraftFile).where(DraftFile.draft_id == draft_id))
    session.execute(delete(ReportDraft).where(ReportDraft.id == draft_id))


def sweep(session: Session, now: datetime | None = None) -> int:
    """Delete every draft past its time, with its files (for send-reminders or the worker). How many."""
    now = now or utcnow()
    expired = select(ReportDraft.id).where(ReportDraft.expires_at < now)
    session.execute(delete(DraftFile).where(DraftFile.draft_id.in_(expired)))
    return session.execute(delete(ReportDraft).where(ReportDraft.expires_at < now)).rowcount or 0
