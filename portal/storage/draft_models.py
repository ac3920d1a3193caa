"""The reporter's draft between the question pages (portal.domain.drafts): sealed answers and sealed files.

Nothing here is readable without the key that lives only in the reporter's session cookie: the answers and each
file (its name and its bytes, sealed apart so the list of names opens without the files) are sealed under it. A
draft lives 60 minutes from its last change, and is deleted on sending, on "Exit this page" and when it expires.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.storage.models import db


class ReportDraft(db.Model):
    __tablename__ = "report_drafts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    answers_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class DraftFile(db.Model):
    __tablename__ = "report_draft_files"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    draft_id: Mapped[str] = mapped_column(ForeignKey("report_drafts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    data_sealed: Mapped[bytes] = mapped_column(LargeBinary)


__all__ = ["DraftFile", "ReportDraft"]
