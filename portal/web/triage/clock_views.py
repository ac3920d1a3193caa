"""The clocks' pages of the triage workspace: what is escalated to me, a Regulation 19 notice recorded (issue 17)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from portal.domain import clocks, escalation
from portal.storage import audit
from portal.storage.models import db
from portal.web.staff.auth import staff_required
from portal.web.triage import bp
from portal.web.triage.forms import Reg19Form, options
from portal.web.triage.views import _case_page, open_case


@bp.get("/escalated")
@staff_required()
def escalated() -> Any:
    """The open cases whose late clocks were escalated to the signed-in officer, newest first: the references only
    (as the mails said), each linking to the case page, which checks access as always."""
    return render_template("triage/escalated.html", items=escalation.escalated_to(db.session, current_user.officer.id))


@bp.post("/case/<reference>/reg19")
@staff_required()
def reg19(reference: str) -> Any:
    """Record a Regulation 19 notice as given: the date, to whom, by whom (the signed-in officer); audited."""
    report, dek = open_case(reference)
    form = Reg19Form()
    form.given_to.choices = options(clocks.REG19_GIVEN_TO, "Choose")
    if not form.validate():
        return _case_page(report, dek, 400, reg19_form=form)
    try:
        notice = clocks.record_reg19(
            db.session, report, form.given_on.data, form.given_to.data, current_user.officer.id
        )
    except clocks.ClockError as exc:
        form.given_on.errors = [str(exc)]
        return _case_page(report, dek, 400, reg19_form=form)
    audit.record(
        db.session,
        "reg19-notice-recorded",
        officer_id=current_user.officer.id,
        report_id=report.id,
        queue_code=report.queue.code,
        detail={
            "due": notice.due_at.date().isoformat(),
            "given_on": notice.given_on.isoformat(),
            "to": notice.given_to,
        },
    )
    db.session.commit()
    flash(f"Regulation 19 notice recorded as given on {notice.given_on:%d %B %Y}.")
    return redirect(url_for("triage.case", reference=reference) + "#clocks-title", code=303)
