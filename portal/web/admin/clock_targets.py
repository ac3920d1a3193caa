"""The targets of every stage on the administrator's clocks page (issue 17): assessment, investigation by severity,
answering a reporter's message and a review request, the escalation steps and the head of DPS. Thin:
portal.domain.settings keeps them, portal.domain.clocks uses them."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, g, redirect, url_for
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, NumberRange, Optional

from portal.domain import settings as store
from portal.storage.models import db
from portal.web.admin import bp
from portal.web.admin.common import audit_change
from portal.web.admin.forms import WholeNumberField, _days_field

STEP_LABELS = ("Step 1, the assigned officer", "Step 2, the queue's supervisors", "Step 3, the head of DPS")


def _after_field(label: str) -> WholeNumberField:
    message = "Give a whole number of days from 0 to 365."
    return WholeNumberField(f"{label}: days after the breach", validators=[NumberRange(0, 365, message)])


class TargetsForm(FlaskForm):
    assessment_days = _days_field("Days to decide the assessment, from acknowledgement")
    investigation_pri = _days_field("Days to investigate: practice requiring improvement")
    investigation_misconduct = _days_field("Days to investigate: misconduct")
    investigation_gross = _days_field("Days to investigate: gross misconduct")
    reply_days = _days_field("Days to answer a reporter's message")
    review_days = _days_field("Days to answer a reporter's review request")
    step1 = _after_field(STEP_LABELS[0])
    step2 = _after_field(STEP_LABELS[1])
    step3 = _after_field(STEP_LABELS[2])
    head_of_dps = StringField(
        "The head of DPS: their staff email addresses, separated by commas",
        validators=[Optional(), Length(max=200, message="Keep the list under 200 characters.")],
    )


SEVERITY_FIELDS = {
    "practice-requiring-improvement": "investigation_pri",
    "misconduct": "investigation_misconduct",
    "gross-misconduct": "investigation_gross",
}


def _values(targets: store.ClockTargets) -> dict[str, Any]:
    values: dict[str, Any] = {
        "assessment_days": targets.assessment_days,
        "reply_days": targets.reply_days,
        "review_days": targets.review_days,
        "head_of_dps": ", ".join(targets.head_of_dps),
    }
    values.update({field: targets.investigation_days[code] for code, field in SEVERITY_FIELDS.items()})
    values.update({f"step{n + 1}": days for n, days in enumerate(targets.escalation_days)})
    return values


@bp.app_template_global("targets_form")
def targets_form() -> TargetsForm:
    """The form as it was sent back with errors, else showing the targets as they are."""
    if "targets_form" in g:
        return g.targets_form
    return TargetsForm(formdata=None, data=_values(store.clock_targets(db.session, current_app.config)))


def save(settings_page: Any) -> Any:
    """POST of the targets form (the clocks page's view dispatches here); `settings_page` re-shows the page."""
    form = TargetsForm()
    old = _values(store.clock_targets(db.session, current_app.config))
    steps = (form.step1.data, form.step2.data, form.step3.data)
    valid = form.validate()
    if valid and list(steps) != sorted(steps):
        form.step3.errors = ["Give the steps in order: each no sooner than the one before."]
        valid = False
    if not valid:
        g.targets_form = form
        return settings_page()
    heads = tuple(e.strip().lower() for e in (form.head_of_dps.data or "").split(",") if e.strip())
    store.save_clock_targets(
        db.session,
        assessment_days=form.assessment_days.data,
        investigation_days={code: getattr(form, field).data for code, field in SEVERITY_FIELDS.items()},
        reply_days=form.reply_days.data,
        review_days=form.review_days.data,
        escalation_days=steps,
        head_of_dps=heads,
    )
    new = _values(store.clock_targets(db.session, current_app.config))
    changed = {name: {"old": old[name], "new": new[name]} for name in new if old[name] != new[name]}
    changed.pop("head_of_dps", None)  # addresses stay out of the trail; that it changed is enough
    audit_change("settings-changed", setting="clock-targets", head_changed=old["head_of_dps"] != new["head_of_dps"],
                 **changed)  # fmt: skip
    db.session.commit()
    flash("Saved. The targets apply to every open case from now on.")
    return redirect(url_for("admin.clock_settings") + "#targets-title", code=303)
