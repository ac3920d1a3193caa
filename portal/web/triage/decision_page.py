"""The decisions panel of the case page (portal.web.triage.views._case_page renders it; the routes that act on it
are portal.web.triage.decision_views): the severity assessment with its factors, what similar cases reached, the
outcome with its message to the reporter, and the second look."""

from __future__ import annotations

from typing import Any

from portal import access
from portal.core import workflow
from portal.domain import decisions
from portal.domain.settings import second_look_categories
from portal.storage.models import Report, db
from portal.web.triage.forms import AssessmentForm, OutcomeForm, SecondLookForm


def decision_context(report: Report, dek: bytes, forms: dict[str, Any], who: access.Identity) -> dict[str, Any]:
    """The case page's decisions: the assessment with its factors, what similar cases reached, the outcome form,
    and the second look (what waits, who may give it, and any reasons it was sent back)."""
    factors = decisions.factors_of(db.session, report)
    assessment_form = forms.get("assessment_form") or AssessmentForm(
        severity=report.severity or "",
        culpability=factors.culpability if factors else "",
        harm=factors.harm if factors else "",
        aggravating=factors.aggravating if factors else [],
        mitigating=factors.mitigating if factors else [],
    )
    second_look = decisions.latest(db.session, report, dek)
    waiting = second_look is not None and second_look.decision.status == "pending"
    decision_forms = [f for f in (assessment_form, forms.get("outcome_form"), forms.get("second_look_form")) if f]
    return {
        "assessment_form": assessment_form,
        "outcome_form": forms.get("outcome_form") or OutcomeForm(),
        "second_look_form": forms.get("second_look_form") or SecondLookForm(),
        "decision_errors": any(f.errors for f in decision_forms),
        "factors": factors,
        "factor_labels": {
            "culpability": workflow.CULPABILITY,
            "harm": workflow.HARM,
            "aggravating": workflow.AGGRAVATING,
            "mitigating": workflow.MITIGATING,
        },
        "similar": decisions.similar_outcomes(db.session, report.category),
        "second_look": second_look,
        "waiting": waiting,
        "may_review": waiting and decisions.may_review(db.session, report, who),
        "needs_second_look": report.category in second_look_categories(db.session),
    }
