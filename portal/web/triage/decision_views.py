"""Triage views of decisions: the severity assessment with its factors, the outcome with its message to the
reporter, and a supervisor's second look. Thin: portal.domain.casework and portal.domain.decisions decide."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user

from portal.domain import casework, decisions
from portal.domain.notify import queue_reporter_update
from portal.domain.settings import clock_settings, second_look_categories
from portal.sealing import open_report_fields
from portal.storage.models import Report, db
from portal.web.app import server_secrets
from portal.web.staff.auth import staff_required
from portal.web.triage import bp
from portal.web.triage.forms import AssessmentForm, OutcomeForm, SecondLookForm
from portal.web.triage.views import _audit, _case_page, me, open_case


@bp.post("/case/<reference>/assessment")
@staff_required()
def assessment(reference: str) -> Any:
    report, dek = open_case(reference)
    form = AssessmentForm()
    if not form.validate():
        return _case_page(report, dek, 400, assessment_form=form)
    factors = (
        form.culpability.data or "",
        form.harm.data or "",
        form.aggravating.data or [],
        form.mitigating.data or [],
    )
    try:
        decisions.check_factors(*factors)
        casework.record_assessment(report, dek, form.severity.data or "", form.rationale.data)
    except casework.CaseworkError as exc:
        field = {decisions.NO_CULPABILITY: form.culpability, decisions.NO_HARM: form.harm}.get(str(exc), form.severity)
        field.errors = [str(exc)]
        return _case_page(report, dek, 400, assessment_form=form)
    decisions.record_factors(db.session, report, current_user.officer.id, *factors)
    report.reg13 = bool(form.reg13.data)
    _audit("assessment-recorded", report, severity=report.severity, reg13=report.reg13, factors=True)
    db.session.commit()
    flash("Severity assessment recorded.")
    return redirect(url_for("triage.case", reference=reference), code=303)


@bp.post("/case/<reference>/outcome")
@staff_required()
def outcome(reference: str) -> Any:
    """The handler records the outcome with its message to the reporter; or (with `second_look` in the form) a
    supervisor agrees to, or sends back, an outcome waiting for a second look."""
    report, dek = open_case(reference)
    if request.form.get("second_look"):
        return _second_look(report, dek)
    form = OutcomeForm()
    before = report.state
    if not form.validate():
        return _case_page(report, dek, 400, outcome_form=form)
    try:
        waiting = decisions.record_finding(
            db.session,
            report,
            dek,
            current_user.officer.id,
            form.finding.data or "",
            form.sanction.data or "",
            form.words.data or "",
            second_look=second_look_categories(db.session),
            update_every_days=clock_settings(db.session, current_app.config).update_every_days,
        )
    except decisions.OutcomeProblems as exc:
        for name, problem in exc.problems.items():
            form[name].errors = [problem]
        return _case_page(report, dek, 400, outcome_form=form)
    if waiting is not None:
        proposed = {"finding": waiting.finding_proposed, "sanction": waiting.sanction_proposed}
        _audit("outcome-proposed", report, **proposed, second_look="pending")
        db.session.commit()
        flash("Outcome recorded. It takes effect, and the reporter gets your message, when another supervisor agrees.")
        return redirect(url_for("triage.case", reference=reference), code=303)
    _audit(
        "outcome-recorded",
        report,
        **{"from": before, "to": "resolved", "finding": report.finding, "sanction": report.sanction},
    )
    _audit("message-to-reporter", report)
    _commit_and_tell_reporter(report, dek)
    flash("Outcome recorded. The reporter can read what was decided on their status page.")
    return redirect(url_for("triage.case", reference=reference), code=303)


def _second_look(report: Report, dek: bytes) -> Any:
    form = SecondLookForm()
    before = report.state
    if not form.validate() or form.decision.data not in ("agree", "send-back"):
        form.decision.errors = list(form.decision.errors) or ["Choose whether you agree or send it back."]
        return _case_page(report, dek, 400, second_look_form=form)
    try:
        if form.decision.data == "agree":
            decision = decisions.agree(
                db.session,
                report,
                dek,
                me(),
                update_every_days=clock_settings(db.session, current_app.config).update_every_days,
            )
        else:
            decision = decisions.send_back(db.session, report, dek, me(), form.reasons.data or "")
    except decisions.SecondLookRefused as exc:
        db.session.rollback()
        abort(403, str(exc))
    except casework.CaseworkError as exc:
        (form.reasons if str(exc) == decisions.NO_REASONS else form.decision).errors = [str(exc)]
        return _case_page(report, dek, 400, second_look_form=form)
    if decision.status == "sent-back":
        _audit("outcome-sent-back", report, second_look="sent-back", decision=decision.id)
        db.session.commit()
        flash("Sent back. The handler can read your reasons on the case page; nothing has taken effect.")
        return redirect(url_for("triage.case", reference=report.reference), code=303)
    _audit(
        "outcome-recorded",
        report,
        **{"from": before, "to": "resolved", "finding": report.finding, "sanction": report.sanction},
        second_look="agreed",
        decision=decision.id,
    )
    _audit("message-to-reporter", report)
    _commit_and_tell_reporter(report, dek)
    flash("Agreed. The outcome has taken effect and the reporter can read what was decided.")
    return redirect(url_for("triage.case", reference=report.reference), code=303)


def _commit_and_tell_reporter(report: Report, dek: bytes) -> None:
    """Owe the reporter the mail that an update is waiting (no content), if they asked for it, and commit."""
    if report.reporter_wants_email and report.reporter_contact_sealed is not None:
        queue_reporter_update(db.session, server_secrets(), open_report_fields(report, dek)["reporter_contact"])
    db.session.commit()
