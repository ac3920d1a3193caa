"""Operator settings kept in the database (the `settings` table), with the app's config as the fallback.

For now the clocks: how many days a unit has to acknowledge a new report, and how many days may pass
between updates to the reporter. They apply to reports received after a change; existing cases keep
the dates they were given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .intake import ACKNOWLEDGE_SETTING, CORROBORATE_SETTING, UPDATE_SETTING, IntakeConfig, IntakeSettings
from .models import Setting

MIN_DAYS = 1
MAX_DAYS = 365


class SettingsError(ValueError):
    """A setting out of range; the message is for the administrator."""


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
    """The same as clock_settings, from the settings rows portal.intake.load_config has already read."""
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
