"""Who can read what each routing rule sends: a queue with no enabled member holds reports nobody can open.

Intake never sends a report to such a queue (portal.domain.intake.readable_queue sends it to DPS instead, with the
reason on the case); this module lets the administrator's page and `flask portal routing --dry-run` warn
about every rule whose target has nobody, before a report finds out. No Flask here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core import routing
from portal.sealing import queue_keys
from portal.storage.models import Queue, RoutingRule


@dataclass(frozen=True)
class TargetStaffing:
    queue_code: str
    members: int  # enabled members holding the current key


@dataclass(frozen=True)
class RuleStaffing:
    position: int
    kind: str
    target: str  # as written: a queue code or "PSU-{command}"
    enabled: bool
    targets: list[TargetStaffing]  # the queues it can send to

    @property
    def unstaffed(self) -> list[str]:
        return [t.queue_code for t in self.targets if t.members == 0]

    @property
    def single_reader(self) -> list[str]:
        return [t.queue_code for t in self.targets if t.members == 1]


def _expand(target: str, codes: list[str]) -> list[str]:
    if "{" not in target:
        return [target]
    prefix = target.split("{", 1)[0]
    return [code for code in codes if code.startswith(prefix) and code != routing.DPS]


def rule_staffing(session: Session) -> list[RuleStaffing]:
    """Every routing rule, in order, with each queue it can send to and that queue's enabled members."""
    counts = queue_keys.active_member_counts(session)
    queues = dict(session.execute(select(Queue.code, Queue.id).order_by(Queue.code)).all())
    found = []
    rules = session.scalars(select(RoutingRule).order_by(RoutingRule.position)).all()
    for position, rule in enumerate(rules, start=1):
        codes = _expand(rule.target, list(queues))
        targets = [TargetStaffing(code, counts.get(queues[code], 0)) for code in codes if code in queues]
        found.append(RuleStaffing(position, rule.kind, rule.target, rule.enabled, targets))
    return found


def unstaffed_queues(session: Session) -> list[str]:
    """Queues some enabled rule can send to that have no enabled member, by code."""
    return _targets(session, "unstaffed")


def single_reader_queues(session: Session) -> list[str]:
    """Queues some enabled rule can send to that have exactly one enabled member. A report about that member
    goes to DPS instead; the rules, the case's facts and the memberships are in the database in clear, so
    anyone with a copy of it could see that the case left its usual queue and guess whom it is about.
    A second member closes that: the case then stays with the one who is not conflicted."""
    return _targets(session, "single_reader")


def _targets(session: Session, which: str) -> list[str]:
    seen: list[str] = []
    for rule in rule_staffing(session):
        for code in getattr(rule, which) if rule.enabled else []:
            if code not in seen:
                seen.append(code)
    return seen


def after_removal(session: Session, queue: Queue, leaving_officer_ids: set[int]) -> int:
    """How many enabled members the queue would keep if these officers left it."""
    return len([o for o in queue_keys.members(session, queue.id) if o.id not in leaving_officer_ids])
