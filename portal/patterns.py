"""Repeat patterns: linking a concern to earlier ones about the same person, and early-intervention flags.

Linking uses the blind index of the staff number, or of the name where no number was given (a weaker
match). The rules that raise a flag are settings; by default: 2 or more concerns in 12 months, 3 or more
ever, or any earlier concern of sexual misconduct, domestic abuse or discrimination.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Report, Setting

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


def save_rules(session: Session, rules: InterventionRules) -> None:
    value = json.dumps(asdict(rules), sort_keys=True)
    row = session.get(Setting, SETTING)
    if row is None:
        session.add(Setting(name=SETTING, value=value))
    else:
        row.value = value


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


@dataclass(frozen=True)
class Pattern:
    earlier: list[EarlierConcern] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def assess(earlier: list[EarlierConcern], now: datetime, rules: InterventionRules) -> list[str]:
    """The early-intervention flags a new concern raises, given the earlier ones (plain English)."""
    flags = []
    recent = [c for c in earlier if now - c.received_at <= timedelta(days=rules.within_days)]
    if len(recent) + 1 >= rules.count_within:
        flags.append(f"{len(recent) + 1} concerns within {rules.within_days} days")
    if len(earlier) + 1 >= rules.count_ever:
        flags.append(f"{len(earlier) + 1} concerns in all")
    serious = sorted({c.category for c in earlier if c.category in rules.serious_categories})
    if serious:
        flags.append("Earlier concern of " + ", ".join(s.replace("-", " ") for s in serious))
    return flags
