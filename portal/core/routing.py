"""Routing rules: from a report's facts to the queue that handles it and the reasons why.

Pure functions over plain values; the rules are data (the routing_rules table) so an administrator can
reorder and edit them. The first rule that matches and names an existing queue wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

DPS = "DPS"

CATEGORIES: dict[str, tuple[str, str]] = {
    # code: (label, one-line description for the reporter)
    "sexual-misconduct": (
        "Sexual misconduct",
        "Including abuse of position for a sexual purpose, sexual harassment or assault.",
    ),
    "domestic-abuse": ("Domestic abuse", "Abuse or controlling behaviour towards a partner or family member."),
    "discrimination": (
        "Discrimination",
        "Racism, misogyny, homophobia, ableism or other discrimination.",
    ),
    "bullying": ("Bullying or harassment", "Bullying, harassment or victimisation of a colleague or anyone else."),
    "corruption": (
        "Corruption or dishonesty",
        "Dishonesty, misuse of police systems or information, or inappropriate associations.",
    ),
    "criminality": ("A criminal offence", "Conduct that may be a crime, on or off duty."),
    "use-of-force": ("Use of force", "Force that was unnecessary, excessive or unlawful."),
    "discreditable-conduct": (
        "Discreditable conduct",
        "Behaviour that brings the police into disrepute, including on social media.",
    ),
    "duties": ("Duties and fitness for work", "Neglect of duties, orders not followed, or unfit for work."),
    "other": ("Something else", "Anything that does not fit the categories above."),
}

SERIOUS_CATEGORIES = ("sexual-misconduct", "domestic-abuse", "discrimination", "corruption", "criminality")


@dataclass(frozen=True)
class ReportFacts:
    """What routing may look at: all of it clear metadata, no content."""

    category: str
    subject_command: str | None = None
    fear_of_reprisal: bool = False
    earlier_concerns: int = 0
    pattern_flagged: bool = False  # an early-intervention rule matched (portal.domain.patterns)
    corroborates_held: bool = False  # a report held until corroborated is about the same person


@dataclass(frozen=True)
class Rule:
    kind: str
    target: str  # a queue code, or "PSU-{command}"
    reason: str  # plain English for the handler; may use {command}, {count}
    params: dict = field(default_factory=dict)
    enabled: bool = True


@dataclass(frozen=True)
class RoutingDecision:
    queue: str
    reasons: list[str]


RULE_KINDS = {
    "subject-command-in": "the subject's command is one of a list",
    "category-in": "the category is one of a list",
    "fear-of-reprisal": "the reporter fears reprisal",
    "earlier-concerns-at-least": "the subject has at least a number of earlier concerns",
    "pattern-flagged": "an early-intervention pattern rule matched",
    "corroborates-held": "it corroborates a report held until corroborated",
    "subject-command-known": "the subject's command is known",
    "always": "every report",
}


def default_rules() -> list[Rule]:
    """The issue's default rules, in order."""
    return [
        Rule(
            "subject-command-in",
            DPS,
            "The person is in Professionalism (PS), so the case is handled centrally by DPS.",
            {"commands": ["PS"]},
        ),
        Rule(
            "category-in",
            DPS,
            "Serious category ({category}): handled centrally by DPS.",
            {"categories": list(SERIOUS_CATEGORIES)},
        ),
        Rule("fear-of-reprisal", DPS, "The reporter fears reprisal: handled away from their command by DPS."),
        Rule(
            "earlier-concerns-at-least",
            DPS,
            "The person has {count} earlier concerns on record: handled centrally by DPS.",
            {"count": 2},
        ),
        Rule(
            "pattern-flagged",
            DPS,
            "Early-intervention flag on the person's pattern of concerns: handled centrally by DPS.",
        ),
        Rule(
            "corroborates-held",
            DPS,
            "It corroborates a report that was held until someone else came forward: both go to DPS.",
        ),
        Rule(
            "subject-command-known",
            "PSU-{command}",
            "The person's command is {command}: sent to that command's Professional Standards Unit.",
        ),
        Rule("always", DPS, "No other rule applied: DPS assesses it."),
    ]


def _matches(rule: Rule, facts: ReportFacts) -> bool:
    params = rule.params or {}
    if rule.kind == "subject-command-in":
        return facts.subject_command is not None and facts.subject_command in params.get("commands", [])
    if rule.kind == "category-in":
        return facts.category in params.get("categories", [])
    if rule.kind == "fear-of-reprisal":
        return facts.fear_of_reprisal
    if rule.kind == "earlier-concerns-at-least":
        return facts.earlier_concerns >= int(params.get("count", 2))
    if rule.kind == "pattern-flagged":
        return facts.pattern_flagged
    if rule.kind == "corroborates-held":
        return facts.corroborates_held
    if rule.kind == "subject-command-known":
        return bool(facts.subject_command)
    if rule.kind == "always":
        return True
    raise ValueError(f"unknown routing rule kind {rule.kind!r}")


def _fill(template: str, values: dict[str, object]) -> str:
    """Put {command}, {category} and {count} into a rule's text; text an admin mistyped stays as it is."""
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError, AttributeError):
        return template


def route_report(facts: ReportFacts, rules: Iterable[Rule], queues: Iterable[str]) -> RoutingDecision:
    """The first enabled rule that matches and names an existing queue decides; DPS if none does."""
    existing = set(queues)
    values = {
        "command": facts.subject_command or "",
        "category": CATEGORIES.get(facts.category, (facts.category,))[0].lower(),
        "count": facts.earlier_concerns,
    }
    for rule in rules:
        if not rule.enabled or not _matches(rule, facts):
            continue
        target = _fill(rule.target, values)
        if target in existing:
            return RoutingDecision(target, [_fill(rule.reason, values)])
    return RoutingDecision(DPS, ["No rule named an existing queue: DPS assesses it."])


# IOPC mandatory referral: these categories may meet the criteria; the handler decides.
IOPC_FLAGS: dict[str, list[str]] = {
    "sexual-misconduct": [
        "Possible serious sexual offence",
        "Possible abuse of position for a sexual purpose",
    ],
    "corruption": ["Possible serious corruption"],
    "discrimination": ["Possible conduct aggravated by discrimination"],
    "use-of-force": ["Possible serious assault"],
    "criminality": ["Possible serious assault, sexual offence or corruption: check the referral criteria"],
    "domestic-abuse": ["Possible serious assault or sexual offence in a domestic setting"],
}


def iopc_referral_flags(category: str) -> list[str]:
    """Flags that tell the handler to consider a mandatory referral to the IOPC."""
    return list(IOPC_FLAGS.get(category, []))
