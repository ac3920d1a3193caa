"""Editing the routing rules: validation of what an administrator types, and reordering. No Flask here.

The rules themselves are interpreted by portal.core.routing; this module only keeps the stored rows sane:
known command and category codes, a count that is a number, a target that is a queue, and reason
texts whose placeholders routing can fill.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core.routing import CATEGORIES, RULE_KINDS
from portal.storage.models import RoutingRule

PSU_TEMPLATE = "PSU-{command}"
PLACEHOLDERS = ("command", "category", "count")
# Kinds whose matching report always has a known command, so "PSU-{command}" names a real queue.
KINDS_KNOWING_COMMAND = ("subject-command-in", "subject-command-known")
# Which parameter each kind takes.
PARAMS_OF_KIND = {"subject-command-in": "commands", "category-in": "categories", "earlier-concerns-at-least": "count"}
MAX_COUNT = 1000
_SPLIT = re.compile(r"[\s,;]+")


class RuleError(ValueError):
    """Something wrong with an edit; `field` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RuleEdit:
    target: str
    reason: str
    params: dict


def split_codes(text: str | None) -> list[str]:
    """'PS, CE' or 'PS CE' -> ['PS', 'CE'], without repeats, in the order given."""
    seen: list[str] = []
    for part in _SPLIT.split(text or ""):
        if part and part not in seen:
            seen.append(part)
    return seen


def check_target(target: str, kind: str, queue_codes: Collection[str]) -> str:
    target = (target or "").strip()
    if target == PSU_TEMPLATE:
        if kind not in KINDS_KNOWING_COMMAND:
            raise RuleError(
                "target",
                "Only a rule that knows the person's command can send to "
                f"'{PSU_TEMPLATE}'. Choose a queue such as DPS.",
            )
        return target
    if target.upper() in queue_codes:
        return target.upper()
    raise RuleError("target", f"Send to an existing queue (such as DPS) or to '{PSU_TEMPLATE}'.")


def check_reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise RuleError("reason", "Give the reason handlers will see when this rule routes a case.")
    if len(reason) > 300:
        raise RuleError("reason", "Keep the reason to 300 characters or fewer.")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(reason) if name is not None]
    except ValueError:
        fields = ["?"]
    if any(name not in PLACEHOLDERS for name in fields):
        raise RuleError(
            "reason",
            "The reason may use only {command}, {category} and {count} in curly brackets; "
            "check the brackets are in pairs.",
        )
    return reason


def check_params(
    kind: str, commands: str | None, categories: str | None, count: str | None, command_codes: Collection[str]
) -> dict:
    wanted = PARAMS_OF_KIND.get(kind)
    if wanted == "commands":
        codes = [code.upper() for code in split_codes(commands)]
        unknown = [code for code in codes if code not in command_codes]
        if unknown:
            raise RuleError("commands", f"These are not command codes: {', '.join(unknown)}.")
        if not codes:
            raise RuleError("commands", "Give at least one command code, such as PS.")
        return {"commands": codes}
    if wanted == "categories":
        codes = [code.lower() for code in split_codes(categories)]
        unknown = [code for code in codes if code not in CATEGORIES]
        if unknown:
            raise RuleError("categories", f"These are not category codes: {', '.join(unknown)}.")
        if not codes:
            raise RuleError("categories", "Give at least one category code, such as corruption.")
        return {"categories": codes}
    if wanted == "count":
        text = (count or "").strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_COUNT:
            raise RuleError("count", f"Give the number of earlier concerns as a whole number from 1 to {MAX_COUNT}.")
        return {"count": int(text)}
    return {}


def check_edit(
    kind: str,
    *,
    target: str,
    reason: str,
    commands: str | None,
    categories: str | None,
    count: str | None,
    queue_codes: Collection[str],
    command_codes: Collection[str],
) -> RuleEdit:
    """The edit, cleaned; raises RuleError naming the first field that is wrong."""
    if kind not in RULE_KINDS:
        raise RuleError("target", "This rule is of a kind the portal does not know; it cannot be edited here.")
    return RuleEdit(
        target=check_target(target, kind, queue_codes),
        reason=check_reason(reason),
        params=check_params(kind, commands, categories, count, command_codes),
    )


def ordered(session: Session) -> list[RoutingRule]:
    return list(session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)))


def renumber(rules: Iterable[RoutingRule]) -> None:
    for position, rule in enumerate(rules, start=1):
        if rule.position != position:
            rule.position = position


def move(session: Session, rule_id: int, direction: str) -> int | None:
    """Move a rule one place up or down; returns its new position, or None if it cannot move that way."""
    rules = ordered(session)
    index = next((i for i, rule in enumerate(rules) if rule.id == rule_id), None)
    if index is None or direction not in ("up", "down"):
        return None
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(rules):
        return None
    rules[index], rules[other] = rules[other], rules[index]
    renumber(rules)
    session.flush()
    return other + 1


def describe_params(kind: str, params: dict | None) -> str:
    """The rule's parameters in words, for the table."""
    params = params or {}
    if kind == "subject-command-in":
        return "Commands: " + ", ".join(params.get("commands", [])) if params.get("commands") else "No commands"
    if kind == "category-in":
        labels = [CATEGORIES.get(code, (code,))[0] for code in params.get("categories", [])]
        return "Categories: " + ", ".join(labels) if labels else "No categories"
    if kind == "earlier-concerns-at-least":
        return f"At least {params.get('count', 2)} earlier concerns"
    return "None"


def add_first(session: Session, kind: str, edit: RuleEdit) -> RoutingRule:
    """A new rule, checked first (position 1; the others move down one)."""
    rule = RoutingRule(position=0, kind=kind, params=edit.params, target=edit.target, reason=edit.reason, enabled=True)
    session.add(rule)
    session.flush()
    renumber([rule, *[other for other in ordered(session) if other.id != rule.id]])
    session.flush()
    return rule
