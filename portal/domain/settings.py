"""Operator settings kept in the database (the `settings` table), with the app's config as the fallback.

The clocks: how many days a unit has to acknowledge a new report, and how many days may pass between updates
to the reporter. They apply to reports received after a change; existing cases keep the dates they were given.
And the categories whose "no case to answer" waits for a second look (portal.domain.decisions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core.routing import CATEGORIES
from portal.domain.intake import ACKNOWLEDGE_SETTING, CORROBORATE_SETTING, UPDATE_SETTING, IntakeConfig, IntakeSettings
from portal.storage.instance_secrets import ServerSecrets
from portal.storage.models import Setting

MIN_DAYS = 1
MAX_DAYS = 365


class SettingsError(ValueError):
    """A setting out of range; the message is for the administrator."""


class NotInitialised(RuntimeError):
    """The server has no secrets yet: `flask portal init` has not run."""


NOT_INITIALISED = "not initialised: run `flask portal init` first"


def server_secrets(extensions: Mapping[str, Any]) -> ServerSecrets:
    """The server's secrets that create_app loaded (a Flask app's `extensions`); NotInitialised before the first
    `flask portal init`. The one test of "initialised" that the web pages and every command make."""
    secrets = extensions.get("portal_secrets")
    if secrets is None:
        raise NotInitialised(NOT_INITIALISED)
    return secrets


def _days(stored: str | None, fallback: Any) -> int:
    """A stored number of days if it is a sane one, otherwise the configured default."""
    try:
        value = int(stored) if stored is not None else int(fallback)
    except (TypeError, ValueError):
        value = int(fallback)
    return value if MIN_DAYS <= value <= MAX_DAYS else int(fallback)


def clock_settings(session: Session, config: Mapping[str, Any]) -> IntakeSettings:
    """The clocks for a new report: the settings rows, else ACKNOWLEDGE_WITHIN_DAYS / UPDATE_EVERY_DAYS."""
    rows = dict(
        session.execute(
            select(Setting.name, Setting.value).where(
                Setting.name.in_((ACKNOWLEDGE_SETTING, UPDATE_SETTING, CORROBORATE_SETTING))
            )
        ).all()
    )
    return _clocks(rows, config)


def clocks_from(intake_config: IntakeConfig, config: Mapping[str, Any]) -> IntakeSettings:
    """The same as clock_settings, from the settings rows portal.domain.intake.load_config has already read."""
    return _clocks(intake_config.settings, config)


def _clocks(rows: Mapping[str, str], config: Mapping[str, Any]) -> IntakeSettings:
    return IntakeSettings(
        acknowledge_within_days=_days(rows.get(ACKNOWLEDGE_SETTING), config.get("ACKNOWLEDGE_WITHIN_DAYS", 7)),
        update_every_days=_days(rows.get(UPDATE_SETTING), config.get("UPDATE_EVERY_DAYS", 28)),
        hold_days=int(config.get("HOLD_DAYS", 365)),
        corroborate_after=_count(rows.get(CORROBORATE_SETTING), config.get("HOLD_CORROBORATE_AFTER", 1)),
    )


def _count(stored: str | None, fallback: Any) -> int:
    """How many other reports release a held one: a stored number from 1 to 10, else the configured one."""
    try:
        value = int(stored) if stored is not None else int(fallback)
    except (TypeError, ValueError):
        value = int(fallback)
    return value if 1 <= value <= 10 else max(1, int(fallback))


def check_days(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_DAYS <= value <= MAX_DAYS:
        raise SettingsError(f"The {what} must be a whole number of days from {MIN_DAYS} to {MAX_DAYS}.")
    return value


def _put(session: Session, name: str, value: str) -> None:
    row = session.get(Setting, name)
    if row is None:
        session.add(Setting(name=name, value=value))
    else:
        row.value = value


def save_clock_settings(session: Session, acknowledge_days: int, update_days: int) -> None:
    """Store both clocks (the caller commits and audits). Raises SettingsError when out of range."""
    check_days(acknowledge_days, "days to acknowledge")
    check_days(update_days, "days between updates")
    _put(session, ACKNOWLEDGE_SETTING, str(acknowledge_days))
    _put(session, UPDATE_SETTING, str(update_days))
    session.flush()


# ---------------------------------------------------------------- the second look

# The categories in which a "no case to answer" or "no further action" takes effect only when a second supervisor
# agrees (portal.domain.decisions). Stored as the codes joined by commas; an empty value names none.
SECOND_LOOK_SETTING = "decisions.second_look_categories"
SECOND_LOOK_DEFAULT = ("sexual-misconduct", "discrimination", "domestic-abuse")


def second_look_categories(session: Session) -> tuple[str, ...]:
    """The categories the setting names, in the order of portal.core.routing.CATEGORIES; the default when unset."""
    stored = session.scalar(select(Setting.value).where(Setting.name == SECOND_LOOK_SETTING))
    if stored is None:
        return SECOND_LOOK_DEFAULT
    named = set(stored.split(","))
    return tuple(code for code in CATEGORIES if code in named)


def save_second_look_categories(session: Session, categories: list[str] | tuple[str, ...]) -> None:
    """Store the categories (the caller commits and audits). Raises SettingsError for a code that is not a category."""
    unknown = [code for code in categories if code not in CATEGORIES]
    if unknown:
        raise SettingsError("Choose categories from the list.")
    _put(session, SECOND_LOOK_SETTING, ",".join(code for code in CATEGORIES if code in categories))
    session.flush()


# ---------------------------------------------------------------- the targets of every stage (portal.domain.clocks)

ASSESSMENT_SETTING = "clocks.assessment_days"
REPLY_SETTING = "clocks.reply_days"
REVIEW_SETTING = "clocks.review_days"
REG19_REMIND_SETTING = "clocks.reg19_remind_days"
ESCALATION_SETTING = "clocks.escalation_days"
HEAD_SETTING = "clocks.head_of_dps"
INVESTIGATION_SETTING = "clocks.investigation_days."  # + a severity code
INVESTIGATION_DEFAULTS = {"practice-requiring-improvement": 60, "misconduct": 120, "gross-misconduct": 180}
INVESTIGATION_UNASSESSED = "misconduct"  # the target of an investigation whose severity is not recorded yet
ESCALATION_DEFAULT = (0, 7, 14)
ESCALATION_STEPS = ("the assigned officer", "the queue's supervisors", "the head of DPS")


@dataclass(frozen=True)
class ClockTargets:
    """Every clock's length, in days: acknowledge, assessment decided, investigation by severity, a reporter's
    message answered, a review request answered, the Regulation 19 reminder ahead of its date; the days after a
    breach at which each escalation step is told; and the head of DPS (officers' emails; none: DPS's supervisors)."""

    acknowledge_days: int = 7
    assessment_days: int = 15
    investigation_days: Mapping[str, int] = field(default_factory=lambda: dict(INVESTIGATION_DEFAULTS))
    reply_days: int = 5
    review_days: int = 7
    reg19_remind_days: int = 14
    escalation_days: tuple[int, ...] = ESCALATION_DEFAULT
    head_of_dps: tuple[str, ...] = ()

    def investigation(self, severity: str | None) -> int:
        return self.investigation_days.get(severity or "", self.investigation_days[INVESTIGATION_UNASSESSED])


def clock_targets(session: Session, config: Mapping[str, Any]) -> ClockTargets:
    """The targets: the settings rows, else the defaults (acknowledgement: the intake clock's setting)."""
    rows = dict(session.execute(select(Setting.name, Setting.value).where(Setting.name.like("clocks.%"))).all())
    acknowledge = clock_settings(session, config).acknowledge_within_days
    return ClockTargets(
        acknowledge_days=acknowledge,
        assessment_days=_days(rows.get(ASSESSMENT_SETTING), 15),
        investigation_days={
            code: _days(rows.get(INVESTIGATION_SETTING + code), days) for code, days in INVESTIGATION_DEFAULTS.items()
        },
        reply_days=_days(rows.get(REPLY_SETTING), 5),
        review_days=_days(rows.get(REVIEW_SETTING), 7),
        reg19_remind_days=_days(rows.get(REG19_REMIND_SETTING), 14),
        escalation_days=_escalation_days(rows.get(ESCALATION_SETTING)),
        head_of_dps=tuple(e for e in (rows.get(HEAD_SETTING) or "").split(",") if e),
    )


def _escalation_days(stored: str | None) -> tuple[int, ...]:
    try:
        days = tuple(int(part) for part in (stored or "").split(","))
    except ValueError:
        return ESCALATION_DEFAULT
    ok = len(days) == len(ESCALATION_STEPS) and all(0 <= d <= MAX_DAYS for d in days) and list(days) == sorted(days)
    return days if ok else ESCALATION_DEFAULT


def save_clock_targets(
    session: Session,
    *,
    assessment_days: int,
    investigation_days: Mapping[str, int],
    reply_days: int,
    review_days: int,
    escalation_days: tuple[int, ...],
    head_of_dps: tuple[str, ...] = (),
) -> None:
    """Store the targets (the caller commits and audits). Raises SettingsError when one is out of range."""
    check_days(assessment_days, "days to decide the assessment")
    check_days(reply_days, "days to answer the reporter")
    check_days(review_days, "days to answer a review request")
    for code in INVESTIGATION_DEFAULTS:
        check_days(investigation_days.get(code), "days to investigate")
    if _escalation_days(",".join(str(d) for d in escalation_days)) != tuple(escalation_days):
        raise SettingsError("Give the days after a breach of each escalation step, in order, from 0 to 365.")
    _put(session, ASSESSMENT_SETTING, str(assessment_days))
    _put(session, REPLY_SETTING, str(reply_days))
    _put(session, REVIEW_SETTING, str(review_days))
    for code in INVESTIGATION_DEFAULTS:
        _put(session, INVESTIGATION_SETTING + code, str(investigation_days[code]))
    _put(session, ESCALATION_SETTING, ",".join(str(d) for d in escalation_days))
    _put(session, HEAD_SETTING, ",".join(e.strip().lower() for e in head_of_dps if e.strip()))
    session.flush()
