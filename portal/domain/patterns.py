"""Repeat patterns: linking a concern to earlier ones about the same person, and early-intervention flags.

Linking uses the blind index of the staff number, or of the name where no number was given (a weaker
match). The rules that raise a flag are settings; by default: 2 or more concerns in 12 months, 3 or more
ever, or any earlier concern of sexual misconduct, domestic abuse or discrimination.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import access
from portal.domain import notify
from portal.oversight.definitions import in_open_state
from portal.storage import outbox
from portal.storage.models import Report, Setting

SETTING = "patterns.rules"


@dataclass(frozen=True)
class EarlierConcern:
    reference: str
    received_at: datetime
    category: str
    state: str
    finding: str | None
    queue_id: int
    by_name_only: bool


@dataclass(frozen=True)
class InterventionRules:
    within_days: int = 365
    count_within: int = 2  # concerns (this one included) within `within_days`
    count_ever: int = 3  # concerns (this one included) ever
    serious_categories: tuple[str, ...] = ("sexual-misconduct", "domestic-abuse", "discrimination")

    def describe(self) -> list[str]:
        return [
            f"{self.count_within} or more concerns within {self.within_days} days",
            f"{self.count_ever} or more concerns ever",
            "any earlier concern of " + ", ".join(c.replace("-", " ") for c in self.serious_categories),
        ]


def load_rules(session: Session) -> InterventionRules:
    return parse_rules(session.scalar(select(Setting.value).where(Setting.name == SETTING)))


def parse_rules(raw: str | None) -> InterventionRules:
    """The rules stored as JSON in the settings row; the defaults when there is none or it is unreadable."""
    if not raw:
        return InterventionRules()
    try:
        values: Mapping[str, Any] = json.loads(raw)
        return InterventionRules(
            within_days=int(values["within_days"]),
            count_within=int(values["count_within"]),
            count_ever=int(values["count_ever"]),
            serious_categories=tuple(values["serious_categories"]),
        )
    except (ValueError, KeyError, TypeError):
        return InterventionRules()


def subject_condition(staff_index: bytes | None, name_index: bytes | None) -> Any:
    """Same person: by staff number when known, else by name. None when nothing identifies them."""
    if staff_index is not None:
        return Report.subject_staff_index == staff_index
    if name_index is not None:
        return Report.subject_name_index == name_index
    return None


def earlier_concerns(
    session: Session, staff_index: bytes | None, name_index: bytes | None, *, exclude_id: str | None = None
) -> list[EarlierConcern]:
    """Every other concern about the person that is a case (held reports are not, until released)."""
    condition = subject_condition(staff_index, name_index)
    if condition is None:
        return []
    query = (
        select(Report.reference, Report.received_at, Report.category, Report.state, Report.finding, Report.queue_id)
        .where(condition, Report.held.is_(False))
        .order_by(Report.received_at)
    )
    if exclude_id is not None:
        query = query.where(Report.id != exclude_id)
    by_name = staff_index is None
    return [EarlierConcern(*row, by_name_only=by_name) for row in session.execute(query)]


def concerns_about(
    session: Session, staff_index: bytes | None, name_index: bytes | None
) -> tuple[list[EarlierConcern], list[str]]:
    """For a new report, in one statement: the earlier concerns about the person (as earlier_concerns),
    and the ids of the reports about them held until corroborated."""
    condition = subject_condition(staff_index, name_index)
    if condition is None:
        return [], []
    # No ORDER BY in SQL: the planner must keep to the blind-index index; the few rows are sorted here.
    rows = session.execute(
        select(
            Report.reference,
            Report.received_at,
            Report.category,
            Report.state,
            Report.finding,
            Report.queue_id,
            Report.held,
            Report.id,
        ).where(condition)
    ).all()
    by_name = staff_index is None
    earlier = [EarlierConcern(*row[:6], by_name_only=by_name) for row in rows if not row.held]
    earlier.sort(key=lambda concern: concern.received_at)
    return earlier, [row.id for row in rows if row.held]


def assess(earlier: list[EarlierConcern], now: datetime, rules: InterventionRules) -> list[str]:
    """The early-intervention flags a new concern raises, given the earlier ones (plain English)."""
    recent = [c for c in earlier if now - c.received_at <= timedelta(days=rules.within_days)]
    serious = {c.category for c in earlier}
    return _flags(len(recent) + 1, len(earlier) + 1, serious, rules, "Earlier concern of ")


def thresholds_met(concerns: list[Any], now: datetime, rules: InterventionRules) -> list[str]:
    """The early-intervention thresholds a person's whole history meets (each concern has `received_at` and
    `category`): the same rules as `assess`, counted over every concern on record (a person's page)."""
    recent = [c for c in concerns if now - c.received_at <= timedelta(days=rules.within_days)]
    return _flags(len(recent), len(concerns), {c.category for c in concerns}, rules, "A concern of ")


def _flags(recent: int, ever: int, categories: set[str], rules: InterventionRules, serious_prefix: str) -> list[str]:
    flags = []
    if recent >= rules.count_within:
        flags.append(f"{recent} concerns within {rules.within_days} days")
    if ever >= rules.count_ever:
        flags.append(f"{ever} concerns in all")
    serious = sorted(c for c in categories if c in rules.serious_categories)
    if serious:
        flags.append(serious_prefix + ", ".join(s.replace("-", " ") for s in serious))
    return flags


# ---------------------------------------------------------------- telling the holders of earlier open cases

EARLIER_CONCERN = "earlier-concern"  # the outbox's kind of this notice
MAIL_KINDS = (EARLIER_CONCERN,)


def tell_earlier_holders(session: Session, report: Report, index_key: bytes, now: datetime | None = None) -> int:
    """A new concern about a person has arrived: owe the holders of each earlier OPEN case about them a mail
    (the outbox, in the caller's transaction: intake's). The holder is the case's assigned officer, else its
    queue's members; only those who want mail and have no conflict on the case (portal.access). Someone told of
    the new case anyway (a member of its queue, who sees the earlier concerns on its page) gets no second mail.
    One row per earlier case, naming only that case's reference and its recipients. Returns how many rows."""
    condition = subject_condition(report.subject_staff_index, report.subject_name_index)
    if report.held or condition is None:
        return 0
    earlier = session.execute(
        select(
            Report.id,
            Report.reference,
            Report.queue_id,
            Report.assigned_officer_id,
            Report.subject_staff_index,
            Report.subject_name_index,
        ).where(condition, Report.held.is_(False), Report.id != report.id, in_open_state())
    ).all()
    if not earlier:
        return 0
    members = notify.mailable_members(session, index_key, {e.queue_id for e in earlier} | {report.queue_id})
    cases = [*earlier, report]
    subjects = [access.Subject(c.id, c.queue_id, c.subject_staff_index, c.subject_name_index) for c in cases]
    blocked = notify.blocked_of(session, subjects, members)
    told_anyway = {
        m.officer_id for m in members if m.queue_id == report.queue_id and (report.id, m.officer_id) not in blocked
    }
    owed = 0
    for case in sorted(earlier, key=lambda e: e.reference):
        eligible = [m for m in members if m.queue_id == case.queue_id and (case.id, m.officer_id) not in blocked]
        if case.assigned_officer_id is not None:
            eligible = [m for m in eligible if m.officer_id == case.assigned_officer_id]
        emails = sorted({m.email for m in eligible if m.officer_id not in told_anyway})
        if emails:
            outbox.add(session, EARLIER_CONCERN, now=now, reference=case.reference, recipients=emails)
            owed += 1
    return owed


def earlier_concern_mail(config: Mapping[str, Any], reference: str, to: list[str]) -> notify.Mail:
    """The notice: the earlier case's reference and a link to it (sign-in needed), nothing of either concern."""
    return notify.Mail(
        to=to,
        subject=f"A new concern about the person in case {reference}",
        body=(
            f"A new concern has arrived about the person your case {reference} is about.\n\n"
            "It is listed under the earlier concerns on your case's page (sign-in needed):\n"
            f"{notify.case_link(config, reference)}#earlier-concerns\n\n"
            "By design this email holds no details of either concern or of the person.\n"
        ),
        kind=EARLIER_CONCERN,
    )


def compose(config: Mapping[str, Any], rows: list[Any]) -> dict[int, notify.Mail | None]:
    """The mail of each claimed outbox row of this module's kind (portal.domain.outbox sends it), by row id."""
    return {
        row.id: earlier_concern_mail(config, row.reference, list(row.recipients or []))
        for row in rows
        if row.kind in MAIL_KINDS
    }
