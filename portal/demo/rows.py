"""Sealing, in worker processes: the `reports` and `case_events` rows of planned cases (portal.demo.plan), their
content written and sealed like a real report's (portal.domain.new_cases), and the directory's rows, converted to
what the database driver takes, ready for portal.demo.writer."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import JSON, LargeBinary

from portal.core import crypto
from portal.demo.plan import CasePlan
from portal.demo.words import (
    DETAIL_CLOSINGS,
    DETAIL_MIDDLES,
    DETAIL_OPENINGS,
    NAME_SPACE,
    PLACES,
    RATIONALES,
    STATIONS,
    SUMMARIES,
    name_for,
    staff_number_for,
)
from portal.domain import new_cases
from portal.storage.models import CaseEvent, Report, WorkforceMember, utcnow

SOURCE = "seed"  # portal.core.codes.SOURCES

REPORT_COLUMNS = new_cases.COLUMNS
EVENT_COLUMNS = ("report_id", "at", "kind", "state")
WORKFORCE_COLUMNS = (
    "staff_number_index",
    "name_index",
    "command",
    "rank_band",
    "ethnicity",
    "probationer",
    "joined_on",
    "updated_at",
)


class _QueueKey:
    def __init__(self, public_key: bytes) -> None:
        self.public_key = public_key


@dataclass
class SealingContext:
    """What a sealing worker needs: keys (all public, or the blind-index key), and how to write values."""

    dialect: str
    queues: dict[str, tuple[int, bytes]]  # code -> (id, public key)
    recovery_public_key: bytes
    blind_index_key: bytes
    salt: int
    seed: int
    acknowledge_days: int


_context: SealingContext | None = None
# The plan, set before forking the workers: they read their chunks from it instead of having each
# chunk pickled to them (a million plans pickled would cost the writing process ~10 s).
_shared_plan: list[CasePlan] = []
_converters: dict[str, list[tuple[int, Callable[[Any], Any]]]] = {}
_index_cache: dict[int, tuple[bytes | None, bytes | None]] = {}


def init_worker(context: SealingContext | None) -> None:
    global _context
    _context = context
    _converters.clear()
    _index_cache.clear()


def _converters_for(table: str, columns: Sequence[str]) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, converter) for the columns whose values need one before they go to the driver: SQLAlchemy's
    own bind processors on SQLite (datetimes and JSON as text), JSON as text for PostgreSQL's COPY."""
    found = _converters.get(table)
    if found is not None:
        return found
    assert _context is not None
    model = {"reports": Report, "case_events": CaseEvent, "workforce": WorkforceMember}[table]
    if _context.dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        dialect: Any = sqlite.dialect()
    else:
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.dialect()
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for position, name in enumerate(columns):
        column = model.__table__.columns[name]
        if isinstance(column.type, JSON):
            converters.append((position, _json_text))  # what SQLAlchemy's JSON type writes, memoised
        elif _context.dialect == "sqlite":
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None and not isinstance(column.type, LargeBinary):
                converters.append((position, processor))
    _converters[table] = converters
    return converters


_json_memo: dict[tuple, str] = {}


def _json_text(value: list[str]) -> str:
    key = tuple(value)
    text = _json_memo.get(key)
    if text is None:
        text = _json_memo[key] = json.dumps(value)
    return text


def _convert(row: tuple, converters: Sequence[tuple[int, Callable[[Any], Any]]]) -> tuple:
    values = list(row)
    for position, converter in converters:
        value = values[position]
        if value is not None:
            values[position] = converter(value)
    return tuple(values)


def _indexes(person: int, has_number: bool, has_name: bool) -> tuple[bytes | None, bytes | None]:
    """A subject's blind indexes, computed once per person per worker."""
    assert _context is not None
    key = person * 4 + has_number * 2 + has_name
    found = _index_cache.get(key)
    if found is None:
        staff = crypto.staff_number_index(_context.blind_index_key, staff_number_for(person, _context.salt))
        name = crypto.name_index(_context.blind_index_key, name_for(person, _context.salt))
        found = _index_cache[key] = (staff if has_number else None, name if has_name else None)
    return found


def _content(rng: random.Random, plan: CasePlan, salt: int) -> dict[str, str]:
    """Synthetic content for one case: what a reporter might write, never real."""
    station = rng.choice(STATIONS)
    details = " ".join(
        (
            rng.choice(DETAIL_OPENINGS),
            rng.choice(DETAIL_MIDDLES),
            rng.choice(DETAIL_MIDDLES),
            rng.choice(DETAIL_CLOSINGS),
        )
    )
    values = {
        "summary": rng.choice(SUMMARIES[plan.category]),
        "details": f"At {station}: {details}",
        "subject_name": name_for(plan.person, salt) if plan.has_name else "",
        "subject_staff_number": staff_number_for(plan.person, salt) if plan.has_number else "",
        "occurred_on": (plan.received_at.date() - timedelta(days=rng.randint(0, 90))).isoformat(),
        "location": f"{station} police station, {rng.choice(PLACES)}" if rng.random() < 0.8 else "",
        "witnesses": "Two colleagues on the same team saw it." if rng.random() < 0.3 else "",
        "reporter_name": "",
        "reporter_contact": "",
    }
    if plan.mode != "anonymous":
        reporter = name_for(rng.randrange(NAME_SPACE), salt ^ 0x5EED)
        values["reporter_name"] = reporter
        if rng.random() < 0.7:
            values["reporter_contact"] = reporter.lower().replace(" ", ".") + "@example.org"
    return values


def _case_row(plan: CasePlan, context: SealingContext) -> dict[str, Any]:
    """The case's row in clear (portal.domain.new_cases), as intake would have made it then."""
    staff_index, name_index = (
        _indexes(plan.person, plan.has_number, plan.has_name) if plan.person >= 0 else (None, None)
    )
    return new_cases.new_case_row(
        reference=plan.reference,
        received_at=plan.received_at,
        mode=plan.mode,
        category=plan.category,
        state=plan.state,
        queue_id=context.queues[plan.queue][0],
        source=SOURCE,
        routing_reasons=plan.routing_reasons,
        iopc_flags=plan.iopc_flags,
        fear_of_reprisal=plan.fear_of_reprisal,
        subject_command=plan.command,
        subject_rank_band=plan.rank_band,
        subject_ethnicity=plan.ethnicity,
        subject_probationer=plan.probationer,
        subject_staff_index=staff_index,
        subject_name_index=name_index,
        earlier_concerns=plan.earlier_concerns,
        pattern_flags=plan.pattern_flags,
        acknowledge_due_at=plan.received_at + timedelta(days=context.acknowledge_days),
        next_update_due_at=plan.next_update_due_at,
        acknowledged_at=plan.acknowledged_at,
        finalised_at=plan.finalised_at,
        severity=plan.severity,
        finding=plan.finding,
        sanction=plan.sanction,
        reg13=plan.reg13,
    )


def _events(plan: CasePlan, report_id: str) -> list[tuple]:
    """The case's timeline: received, acknowledged, and the step to where it stands today."""
    received = new_cases.received_event(report_id, plan.received_at)
    events = [tuple(received[name] for name in EVENT_COLUMNS)]
    if plan.acknowledged_at is not None:
        events.append((report_id, plan.acknowledged_at, "acknowledged", "acknowledged"))
    if plan.state not in ("received", "acknowledged"):
        at = plan.finalised_at or max(
            plan.acknowledged_at or plan.received_at, plan.next_update_due_at - timedelta(days=60)
        )
        events.append((report_id, at, "state-changed", plan.state))
    return events


def seal_chunk(task: tuple[int, int, int, list[CasePlan] | None]) -> tuple[list[tuple], list[tuple]]:
    """Seal one chunk of planned cases: rows for `reports` and for `case_events`, ready for the database.

    task: (chunk number, start, end, the plans or None when a forked worker reads them from _shared_plan).
    """
    assert _context is not None
    number, start, end, given = task
    plans = given if given is not None else _shared_plan[start:end]
    context = _context
    rng = random.Random(context.seed * 1_000_003 + number)
    report_converters = _converters_for("reports", REPORT_COLUMNS)
    event_converters = _converters_for("case_events", EVENT_COLUMNS)
    queue_keys = {code: _QueueKey(key) for code, (_id, key) in context.queues.items()}
    reports: list[tuple] = []
    events: list[tuple] = []
    for plan in plans:
        row = _case_row(plan, context)
        new_cases.seal_row(
            row,
            _content(rng, plan, context.salt),
            queue_keys[plan.queue],
            context.recovery_public_key,
            severity_rationale=RATIONALES[plan.severity] if plan.severity else None,
        )
        reports.append(_convert(tuple(row[name] for name in REPORT_COLUMNS), report_converters))
        events.extend(_convert(event, event_converters) for event in _events(plan, row["id"]))
    return reports, events


def workforce_chunk(task: tuple[int, list[tuple[int, str, str, str, bool, date]]]) -> list[tuple]:
    """Directory rows for a chunk of people: blind indexes of their synthetic numbers and names."""
    assert _context is not None
    _number, people = task
    converters = _converters_for("workforce", WORKFORCE_COLUMNS)
    stamp = utcnow()
    rows = []
    for person, command, rank_band, ethnicity, probationer, joined in people:
        staff_index, name_index = _indexes(person, True, True)
        rows.append(
            _convert((staff_index, name_index, command, rank_band, ethnicity, probationer, joined, stamp), converters)
        )
    return rows


def share_plan(cases: list[CasePlan]) -> None:
    """Set the plan forked workers read their chunks from (an empty list to let it go)."""
    global _shared_plan
    _shared_plan = cases
