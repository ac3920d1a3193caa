"""Showing dates to people: stored times are UTC; people read them in the force's local time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask

LOCAL = ZoneInfo("Europe/London")


def local(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(LOCAL)


def day(moment: datetime | None) -> str:
    """'2 December 2026'"""
    if moment is None:
        return ""
    shown = local(moment)
    return f"{shown.day} {shown:%B %Y}"


def day_time(moment: datetime | None) -> str:
    """'2 December 2026 at 14:05' in UK time (GMT or BST)."""
    if moment is None:
        return ""
    shown = local(moment)
    return f"{shown.day} {shown:%B %Y} at {shown:%H:%M}"


def install(app: Flask) -> None:
    app.jinja_env.filters["day"] = day
    app.jinja_env.filters["day_time"] = day_time
