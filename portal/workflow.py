"""The case states, what each means for the reporter, and the clocks. Pure functions."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

STATES = ("received", "acknowledged", "assessment", "investigation", "referred", "resolved", "closed")
FINAL_STATES = ("resolved", "closed")

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
        "An outcome has been recorded. The unit's message explains what was decided.",
    ),
    "closed": ("Closed", "This case is closed. You can still read everything here."),
}

MODES: dict[str, tuple[str, str]] = {
    "anonymous": (
        "Anonymously",
        "We do not ask who you are and keep nothing that identifies you. You follow your report with "
        "the receipt you get at the end.",
    ),
    "confidential": (
        "Confidentially",
        "You tell us who you are. Your name is locked away with your report: only the unit handling it "
        "can see it, and it is not shared without telling you first.",
    ),
    "named": (
        "Openly, with your name",
        "You tell us who you are and you are happy for your name to be used while the concern is dealt with.",
    ),
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
