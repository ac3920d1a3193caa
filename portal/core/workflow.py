"""The case states, what each means for the reporter, and the clocks. Pure functions."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

# The states and the reporter's modes are codes the database constrains: one list of each, in portal.core.codes.
from portal.core.codes import FINAL_STATES as FINAL_STATES
from portal.core.codes import MODES as MODES
from portal.core.codes import STATES as STATES

# Which stage may follow which. A case can be referred out, and a referral can come back for a decision.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("acknowledged", "referred", "closed"),
    "acknowledged": ("assessment", "investigation", "referred", "resolved", "closed"),
    "assessment": ("investigation", "referred", "resolved", "closed"),
    "investigation": ("referred", "resolved", "closed"),
    "referred": ("investigation", "resolved", "closed"),
    "resolved": ("closed",),
    "closed": (),
}


class TransitionError(ValueError):
    """A stage change the workflow does not allow."""


def check_transition(current: str, new: str) -> None:
    if new not in TRANSITIONS.get(current, ()):
        raise TransitionError(f"a case cannot go from {current!r} to {new!r}")


# What the reporter reads: the stage, and what happens next.
REPORTER_WORDING: dict[str, tuple[str, str]] = {
    "received": (
        "Received",
        "Your report has arrived safely. The unit handling it will acknowledge it and tell you what happens next.",
    ),
    "acknowledged": (
        "Acknowledged",
        "Someone in the unit handling your report has read it. They will now assess what should "
        "happen and may ask you questions here.",
    ),
    "assessment": (
        "Being assessed",
        "The unit is deciding how serious the matter is and whether it needs investigating. They may "
        "ask you questions here.",
    ),
    "investigation": (
        "Being investigated",
        "An investigation is under way. You will get an update here at least every few weeks.",
    ),
    "referred": (
        "Referred to another body",
        "The matter has been referred to the Independent Office for Police Conduct (IOPC) or another "
        "body. We will keep you told here of what happens.",
    ),
    "resolved": (
        "Outcome decided",
        "An outcome has been recorded. You can read what was decided, and what you can do next, on this page.",
    ),
    "closed": ("Closed", "This case is closed. You can still read everything here."),
}


@dataclass(frozen=True)
class Clocks:
    acknowledge_due_at: datetime
    next_update_due_at: datetime


def intake_clocks(received_at: datetime, acknowledge_days: int, update_days: int) -> Clocks:
    """Clocks start at intake: acknowledgement due, and the first update due."""
    return Clocks(
        acknowledge_due_at=received_at + timedelta(days=acknowledge_days),
        next_update_due_at=received_at + timedelta(days=update_days),
    )


def next_contact_due(
    state: str, acknowledged_at: datetime | None, acknowledge_due_at: datetime, next_update_due_at: datetime
) -> datetime | None:
    """The date by which the reporter will next hear from the unit; None once the case is final."""
    if state in FINAL_STATES:
        return None
    if acknowledged_at is None:
        return min(acknowledge_due_at, next_update_due_at)
    return next_update_due_at


def after_update(now: datetime, update_days: int) -> datetime:
    """Each update to the reporter resets the clock: the next one is due this many days later."""
    return now + timedelta(days=update_days)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day some months later (the month's last day when it is shorter)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def regulation_19_due(received_at: datetime, now: datetime) -> datetime:
    """The next Regulation 19 progress report: 12 months after the case began, then every 6 months."""
    due = add_months(received_at, 12)
    while due < now:
        due = add_months(due, 6)
    return due


# ---------------------------------------------------------------- outcomes, in words the reporter understands

# One sentence for each finding and each sanction, and what the reporter may do next. Every outcome's message to
# the reporter is built from these and the unit's own words (outcome_message): nobody is told only a code.
FINDING_SENTENCES: dict[str, str] = {
    "case-to-answer": (
        "The unit found that the person you reported has a case to answer: what they did may have broken the "
        "standards expected of everyone who works for the police."
    ),
    "no-case-to-answer": (
        "The unit found no case to answer: the evidence did not show that the person you reported broke the "
        "standards expected of everyone who works for the police."
    ),
    "not-investigated": "The unit decided that your report will not be investigated further.",
}
SANCTION_SENTENCES: dict[str, str] = {
    "none": "No formal action was taken against them.",
    "reflective-practice": (
        "They must take part in reflective practice: a structured look, with their manager, at what went wrong "
        "and how they will do better."
    ),
    "management-advice": "They were given management advice: they were told clearly how they must behave from now on.",
    "written-warning": "They were given a written warning, which stays on their record for 18 months.",
    "final-written-warning": (
        "They were given a final written warning, which stays on their record for at least two years. Any further "
        "misconduct could lead to their dismissal."
    ),
    "dismissal": "They were dismissed: they no longer work for the police.",
}
WHAT_NEXT: dict[str, str] = {
    "case-to-answer": (
        "If the behaviour happens again, you can raise a new concern at any time: it will be linked to this one."
    ),
    "no-case-to-answer": (
        "If the behaviour continues or happens again, you can raise a new concern at any time: it will be linked "
        "to this one. If you have evidence the unit has not seen, send it below."
    ),
    "not-investigated": (
        "If the behaviour continues or happens again, you can raise a new concern at any time: it will be linked "
        "to this one. If you have evidence the unit has not seen, send it below."
    ),
}


def outcome_sentences(finding: str, sanction: str) -> str:
    """The finding, and the sanction where there is a case to answer, in plain English."""
    if finding != "case-to-answer":
        return FINDING_SENTENCES[finding]
    return f"{FINDING_SENTENCES[finding]} {SANCTION_SENTENCES[sanction]}"


def outcome_message(finding: str, sanction: str, unit_words_html: str) -> str:
    """The message that tells the reporter what was decided: the sentences above around the unit's own words
    (already sanitised HTML). The sentences are constants with nothing to escape."""
    return (
        f"<p><strong>{outcome_sentences(finding, sanction)}</strong></p>"
        f"{unit_words_html}"
        f"<p><strong>What happens next:</strong> {WHAT_NEXT[finding]}</p>"
    )


def needs_second_look(category: str, finding: str, severity: str | None, categories: tuple[str, ...]) -> bool:
    """A "no case to answer" or "no further action" in one of the named categories takes effect only when a
    second supervisor agrees."""
    return category in categories and (finding == "no-case-to-answer" or severity == "nfa")


# The severity assessment's structured factors (after the College of Policing's guidance on outcomes in police
# misconduct proceedings): culpability and harm, each on a short scale, and the aggravating and mitigating factors
# that apply. The handler's rationale explains how they weighed them.
CULPABILITY: dict[str, str] = {
    "high": "High: deliberate, planned, or an abuse of position",
    "medium": "Medium: reckless, or a serious lapse of judgement",
    "low": "Low: a genuine mistake or a brief lapse",
}
HARM: dict[str, str] = {
    "high": "High: serious harm to a person or to public confidence",
    "medium": "Medium: some harm, or serious harm that could easily have followed",
    "low": "Low: little or no harm",
}
AGGRAVATING: dict[str, str] = {
    "abuse-of-position": "Abuse of trust, position or powers",
    "planned": "Planned or premeditated",
    "vulnerable-person": "A vulnerable person targeted or harmed",
    "discriminatory": "Motivated by discrimination or hostility",
    "concealment": "Concealment, dishonesty or blaming others",
    "repeated": "Repeated, or over a long period",
    "leadership": "Done by someone in a leadership role",
}
MITIGATING: dict[str, str] = {
    "admitted-early": "Admitted early and openly",
    "single-lapse": "A single, spontaneous misjudgement",
    "under-direction": "Acting on another's direction",
    "remorse": "Genuine remorse and insight",
    "health": "Ill health or circumstances bearing on the conduct",
    "put-right": "Steps taken to put things right",
}
