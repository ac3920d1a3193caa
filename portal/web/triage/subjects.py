"""A person's history of concerns: GET /triage/subject/<reference>, "the subject of case X" (never a name or a
staff number in the URL). Thin: portal.access.may_see_subject decides who may see it (a supervisor or a member of
DPS, without a conflict of interest on the case), portal.domain.subjects finds and opens what is shown."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template
from flask_login import current_user
from sqlalchemy import select

from portal import access
from portal.core import codes
from portal.core.routing import CATEGORIES
from portal.domain import subjects
from portal.storage.models import Report, db
from portal.web.staff.auth import staff_required
from portal.web.triage import bp
from portal.web.triage.views import me


@bp.get("/subject/<reference>")
@staff_required()
def subject(reference: str) -> Any:
    anchor = db.session.scalar(select(Report).where(Report.reference == reference.strip().upper()))
    decision = access.may_see_subject(db.session, me(), anchor)
    if not decision:
        # The role decides first (403, whatever the case); a missing case or a conflict looks like a stranger's (404).
        abort(403 if decision.reason == access.NOT_SUBJECT_READER else 404)
    assert anchor is not None
    signed_in = current_user.signed_in
    found = subjects.history(db.session, anchor, me(), signed_in.officer, signed_in.private_key)
    db.session.commit()  # the record of the view and of the summaries opened
    return render_template(
        "triage/subject.html",
        history=found,
        categories=CATEGORIES,
        severities=codes.SEVERITIES,
        findings=codes.FINDINGS,
        sanctions=codes.SANCTIONS,
    )
