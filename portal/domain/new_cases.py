"""A new case's row and its reference, made one way by everything that makes cases: intake, the importers, the
synthetic-data generator (portal.demo) and the bench.

`new_case_row` gives every column of a `reports` row: the clear facts the caller decided, the ones that follow
from them (the IOPC flags of the category), and the model's default for every other column, so that a row
inserted in bulk (a Core insert, COPY) holds what the ORM would have written. `seal_row` seals the content
into it with portal.sealing.seal_new_case. `reserve_references` takes case numbers from the year's counter.
`subject_facts` is intake's first look-up of a new case's subject.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import false, literal, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import sealing
from portal.core import routing
from portal.storage.models import ReferenceCounter, Report, WorkforceMember, new_id

COLUMNS = tuple(column.name for column in Report.__table__.columns)  # every column of a `reports` row, in order
_DEFAULTS = {column.name: column.default for column in Report.__table__.columns}


def _column_default(default: Any) -> Any:
    """The value the ORM would give a column the caller did not set."""
    if default is None:
        return None
    if default.is_scalar:
        return default.arg
    return default.arg(None)  # SQLAlchemy's callable defaults take the execution context


# ---------------------------------------------------------------- references


def format_reference(year: int, sequence: int) -> str:
    return f"CR-{year:04d}-{sequence:06d}"


def reserve_references(session: Session, year: int, count: int = 1) -> int:
    """Take `count` consecutive sequence numbers of the year with one counter update; returns the first.

    The UPDATE ... RETURNING row-locks the year's counter until the caller's transaction ends, so no one else's
    numbers interleave with these: take them as late as possible. The year's first case creates its counter (in a
    savepoint: if another worker created it first, the loop takes from theirs).
    """
    for _ in range(3):
        last = session.execute(
            update(ReferenceCounter)
            .where(ReferenceCounter.year == year)
            .values(last=ReferenceCounter.last + count)
            .returning(ReferenceCounter.last)
        ).scalar()
        if last is not None:
            return int(last) - count + 1
        try:
            with session.begin_nested():
                session.add(ReferenceCounter(year=year, last=count))
            return 1
        except IntegrityError:
            continue
    raise RuntimeError(f"could not allocate case references for {year}")


def next_reference(session: Session, year: int) -> str:
    """The next case reference of the year, for one new case (intake).

    On PostgreSQL the number is taken in a statement of its own, committed at once on another connection of the
    pool (an upsert: the year's first case creates the counter): the counter's row is locked for that statement
    only, not until the case's transaction commits, so concurrent reports do not queue behind one another's
    inserts and commit. A report whose transaction then fails leaves its number unused: references stay unique
    and in order of taking, and may have gaps (docs/SPEC.md: `CR-YYYY-NNNNNN`, year received and sequence).
    Taken before anything is written, so the case's transaction holds no lock the counter could wait on.
    SQLite has one writer at a time anyway: there the number is taken in the caller's transaction
    (reserve_references), with no gap."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return format_reference(year, reserve_references(session, year))
    engine = getattr(bind, "engine", bind)
    counter = ReferenceCounter.__table__
    taken = (
        postgresql.insert(counter)
        .values(year=year, last=1)
        .on_conflict_do_update(index_elements=[counter.c.year], set_={"last": counter.c.last + 1})
        .returning(counter.c.last)
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return format_reference(year, int(connection.execute(taken).scalar_one()))


def subject_facts(session: Session, staff_index: bytes | None, name_index: bytes | None) -> tuple[Any, bool]:
    """In one statement: what the workforce directory says of the subject's staff number (command, rank band,
    ethnicity, probationer; None if not listed), and whether any report at all is held until corroborated (the
    partial index of held reports answers it): intake's wider match of held reports runs only when some are."""
    if staff_index is None and name_index is None:
        return None, False
    one = select(literal(1).label("one")).subquery("one")
    any_held = (
        select(literal(1))
        .select_from(Report)
        .where(text("reports.held"))  # the partial index's predicate, as in intake.held_reports
        .with_hint(Report, "INDEXED BY ix_reports_held_until", "sqlite")
        .exists()
    )
    joined = WorkforceMember.staff_number_index == staff_index if staff_index is not None else false()
    row = session.execute(
        select(
            any_held.label("any_held"),
            WorkforceMember.staff_number_index,
            WorkforceMember.command,
            WorkforceMember.rank_band,
            WorkforceMember.ethnicity,
            WorkforceMember.probationer,
        ).select_from(one.outerjoin(WorkforceMember, joined))
    ).one()
    return (row if row.staff_number_index is not None else None), bool(row.any_held)


# ---------------------------------------------------------------- the row


def new_case_row(
    *,
    received_at: datetime,
    mode: str,
    category: str,
    queue_id: int,
    source: str,
    acknowledge_due_at: datetime,
    next_update_due_at: datetime,
    routing_reasons: list[str],
    reference: str | None = None,
    state: str = "received",
    fear_of_reprisal: bool = False,
    subject_command: str | None = None,
    subject_rank_band: str | None = None,
    subject_ethnicity: str | None = None,
    subject_probationer: bool | None = None,
    subject_staff_index: bytes | None = None,
    subject_name_index: bytes | None = None,
    earlier_concerns: int = 0,
    pattern_flags: list[str] | None = None,
    iopc_flags: list[str] | None = None,
    held: bool = False,
    held_until: datetime | None = None,
    legacy_reference: str | None = None,
    acknowledged_at: datetime | None = None,
    finalised_at: datetime | None = None,
    reporter_wants_email: bool = False,
    severity: str | None = None,
    finding: str | None = None,
    sanction: str | None = None,
    reg13: bool = False,
    submission_index: bytes | None = None,
) -> dict[str, Any]:
    """Every column of a new case's `reports` row, content not yet sealed (seal_row does that).

    The IOPC flags are the category's (portal.core.routing) unless the caller gives others (an imported case has
    none: the legacy system dealt with referral); `iopc_flagged` always follows them.
    """
    flags = routing.iopc_referral_flags(category) if iopc_flags is None else iopc_flags
    given = {
        "id": new_id(),
        "reference": reference,
        "received_at": received_at,
        "mode": mode,
        "category": category,
        "state": state,
        "queue_id": queue_id,
        "routing_reasons": routing_reasons,
        "iopc_flags": flags,
        "iopc_flagged": bool(flags),
        "fear_of_reprisal": fear_of_reprisal,
        "source": source,
        "subject_command": subject_command,
        "subject_rank_band": subject_rank_band,
        "subject_ethnicity": subject_ethnicity,
        "subject_probationer": subject_probationer,
        "subject_staff_index": subject_staff_index,
        "subject_name_index": subject_name_index,
        "earlier_concerns": earlier_concerns,
        "pattern_flags": pattern_flags or [],
        "held": held,
        "held_until": held_until,
        "legacy_reference": legacy_reference,
        "acknowledge_due_at": acknowledge_due_at,
        "next_update_due_at": next_update_due_at,
        "acknowledged_at": acknowledged_at,
        "finalised_at": finalised_at,
        "reporter_wants_email": reporter_wants_email,
        "severity": severity,
        "finding": finding,
        "sanction": sanction,
        "reg13": reg13,
        "submission_index": submission_index,
    }
    return {name: given[name] if name in given else _column_default(_DEFAULTS[name]) for name in COLUMNS}


def seal_row(
    row: dict[str, Any],
    content: Mapping[str, str],
    queue: sealing.QueueKeyLike,
    recovery_public_key: bytes,
    *,
    generation: int = 1,
    receipt: str | None = None,
    severity_rationale: str | None = None,
) -> bytes:
    """Seal the case's content into its row, as portal.sealing.seal_new_case seals a Report; returns the data key."""
    holder = SimpleNamespace(id=row["id"])
    dek = sealing.seal_new_case(
        holder,  # type: ignore[arg-type]
        content,
        queue,
        recovery_public_key,
        generation=generation,
        receipt=receipt,
        severity_rationale=severity_rationale,
    )
    row.update(vars(holder))
    return dek


def received_event(report_id: str, at: datetime) -> dict[str, Any]:
    """The `case_events` row that starts every case's timeline."""
    return {"report_id": report_id, "at": at, "kind": "received", "state": "received"}
