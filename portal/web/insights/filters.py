"""The dashboard's filters from the query string: a period and a command, checked, with plain-English errors."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from portal.oversight.queries import InsightFilters

EARLIEST = date(1990, 1, 1)
LATEST = date(2100, 12, 31)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class FilterForm:
    """What was entered (kept to show again), the filters it means, and an error per field."""

    entered: dict[str, str]
    filters: InsightFilters
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def query(self) -> dict[str, str]:
        """The filters as query-string arguments, for links to the exports."""
        values = {
            "from": self.filters.date_from.isoformat() if self.filters.date_from else "",
            "to": self.filters.date_to.isoformat() if self.filters.date_to else "",
            "command": self.filters.command or "",
        }
        return {key: value for key, value in values.items() if value}


def _date(text: str, label: str) -> tuple[date | None, str | None]:
    if not text:
        return None, None
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError
        value = date.fromisoformat(text)
    except ValueError:
        return None, f"Enter the {label} as a real date, for example 2025-04-01."
    if not EARLIEST <= value <= LATEST:
        return None, f"Enter a {label} between {EARLIEST.year} and {LATEST.year}."
    return value, None


def parse(args: Mapping[str, str], commands: Iterable[str]) -> FilterForm:
    """Read `from`, `to` (YYYY-MM-DD, as a date input sends them) and `command` (a known command code)."""
    entered = {name: (args.get(name) or "").strip()[:40] for name in ("from", "to", "command")}
    errors: dict[str, str] = {}
    date_from, problem = _date(entered["from"], "start date")
    if problem:
        errors["from"] = problem
    date_to, problem = _date(entered["to"], "end date")
    if problem:
        errors["to"] = problem
    if date_from and date_to and date_from > date_to:
        errors["to"] = "The end date must be the same as or after the start date."
    command = entered["command"].upper()
    if command and command not in set(commands):
        errors["command"] = "Choose a command from the list."
    if errors:
        return FilterForm(entered, InsightFilters(), errors)
    return FilterForm(entered, InsightFilters(date_from, date_to, command or None))
