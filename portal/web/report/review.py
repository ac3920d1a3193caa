"""The reporter's "Ask for the handling to be reviewed" (issue 17, step 4): a short form on the status page, with no
JavaScript, that reaches the queue's supervisors and the head of DPS as an escalation with its own clock
(portal.domain.escalation.request_review). Counted by the same rate limit as opening a report with a receipt."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, url_for
from flask_wtf import FlaskForm

from portal.domain import escalation
from portal.storage.models import Report, db
from portal.web.report import bp, limits
from portal.web.report.views import _current_access


class ReviewForm(FlaskForm):
    """A button only: nothing the reporter types is needed to ask (their messages say the rest)."""


@bp.app_template_global("reporter_clock")
def reporter_clock(reference: str) -> escalation.ReporterClock | None:
    """For the status page: whether the date the reporter was given has passed, and their open review request."""
    report = db.session.query(Report).filter_by(reference=reference).one_or_none()
    return None if report is None else escalation.reporter_clock(db.session, report)


@bp.app_template_global("review_form")
def review_form() -> ReviewForm:
    return ReviewForm()


@bp.post("/status/review")
@limits.status_limits
def status_review() -> Any:
    found = _current_access()
    if found is None:  # the access ran out: the status page asks for the receipt again
        return redirect(url_for("report.status"), code=303)
    report, _dek = found
    if not ReviewForm().validate():
        flash("Your request was not sent: the page had expired. Press the button again.")
        return redirect(url_for("report.status") + "#review", code=303)
    if escalation.request_review(db.session, current_app.config, report):
        db.session.commit()
        flash(
            "You have asked for the handling of your report to be reviewed. The supervisors of the unit and the head "
            "of the Directorate of Professional Standards have been told, and you will have an answer here."
        )
    else:
        flash("You have already asked for a review. You will have an answer here.")
    return redirect(url_for("report.status") + "#review", code=303)
