"""Synthetic, realistic data for dashboards and load tests: a workforce directory and sealed cases.

The distributions follow the review's published figures (docs/DESIGN.md, findings 1-8; the interim
letter of 17 October 2022): ~400 days on average to finalise with ~20% over two years, 55-60% "no case
to answer", case to answer for 33% of all allegations but 29% of sexual misconduct and 20% of
discrimination, 20% of subjects with two or more cases and under 1% of them dismissed, Black staff 1.81x
and Asian staff 1.55x as likely as White staff to have allegations (Regulation 13: 2.26x and 2.23x), and
gross misconduct cases with a falling dismissal share.

Every case is sealed like a real one: its own data key, content sealed with portal.domain.intake's functions,
the key wrapped to its queue and to the recovery key (no receipt: nobody can open a seeded case from the
status page). What is in clear is what intake puts in clear.

Speed (1,000,000 cases in minutes on two cores): the plan (every clear value) is made in this process
from one seeded random generator, so a seed gives the same force and the same cases; the sealing, which
is nearly all the cost (two X25519 sealed boxes per case), runs in worker processes; rows go in with
psycopg's binary COPY on PostgreSQL and executemany on SQLite, in one transaction, never one ORM object
per row. Case references come in blocks: one counter update per year.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core import routing
from portal.demo import rows
from portal.demo.plan import CasePlan, Plan, Router, headcount_for, pattern_assessor, plan_cases
from portal.demo.writer import Writer
from portal.domain import new_cases
from portal.oversight import rollups
from portal.storage import bulk
from portal.storage.instance_secrets import ServerSecrets
from portal.storage.models import CaseEvent, Queue, Report, WorkforceMember, utcnow

MAX_REPORTS = 5_000_000  # references have six digits a year; nine years of five million still fit


class SeedError(ValueError):
    """Seeding cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class SeedResult:
    cases: int
    workforce: int
    subjects: int
    first_reference: str
    last_reference: str
    by_queue: dict[str, int]
    open_cases: int
    seconds: float


CHUNK = 2_000  # cases per sealing task (and per insert)
WORKFORCE_CHUNK = 10_000
IN_FLIGHT = 6  # tasks handed to workers ahead of the writer: bounds memory


def default_workers(reports: int) -> int:
    """Parallel sealing pays once the cases outweigh starting the workers (about a second)."""
    return 0 if reports < 5_000 else max(1, min(2, os.cpu_count() or 1))


def seed(
    session: Session,
    secrets: ServerSecrets,
    reports: int,
    *,
    seed_value: int = 1,
    acknowledge_days: int = 7,
    update_days: int = 28,
    now: datetime | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedResult:
    """Create a synthetic force and `reports` sealed cases about it, and commit. Deterministic in its clear
    values for a given seed and `now`; content is sealed under fresh random keys, as in real intake.

    Refuses a database whose workforce directory already has people: the seeded force replaces nobody.
    References are taken in blocks and committed first; on any later failure everything else is rolled back
    (the numbers taken stay unused).
    """
    started = time.perf_counter()
    queues = _queues_to_seed(session, reports)
    now = (now or utcnow()).replace(microsecond=0)
    plan = plan_cases(
        reports,
        seed_value,
        now,
        Router(session, list(queues)),
        pattern_assessor(session),
        update_days=update_days,
    )
    session.rollback()  # end the read transaction: the counters are updated on their own
    _number(session, plan.cases)
    session.commit()
    context = rows.SealingContext(
        dialect=session.get_bind().dialect.name,
        queues=queues,
        recovery_public_key=secrets.recovery_public_key,
        blind_index_key=secrets.blind_index_key,
        salt=plan.salt,
        seed=seed_value,
        acknowledge_days=acknowledge_days,
    )
    _write(session, plan, context, default_workers(reports) if workers is None else workers, progress)
    by_queue_id = Counter(case.queue for case in plan.cases)
    return SeedResult(
        cases=len(plan.cases),
        workforce=len(plan.workforce),
        subjects=plan.subjects,
        first_reference=min((c.reference for c in plan.cases), key=_reference_order),
        last_reference=max((c.reference for c in plan.cases), key=_reference_order),
        by_queue=dict(by_queue_id),
        open_cases=sum(1 for c in plan.cases if c.finalised_at is None),
        seconds=time.perf_counter() - started,
    )


def _queues_to_seed(session: Session, reports: int) -> dict[str, tuple[int, bytes]]:
    """The queues' ids and public keys, once the database is one that can be seeded (else SeedError)."""
    if reports < 1 or reports > MAX_REPORTS:
        raise SeedError(f"--reports must be from 1 to {MAX_REPORTS:,}")
    if session.scalar(select(WorkforceMember.id).limit(1)) is not None:
        raise SeedError("the workforce directory is not empty: seed a fresh database (`flask portal init`)")
    if session.scalar(select(Report.id).where(Report.source == rows.SOURCE).limit(1)) is not None:
        raise SeedError("seeded cases are already loaded: seed a fresh database")
    if session.scalar(select(Queue.id).where(Queue.key_generation > 1).limit(1)) is not None:
        raise SeedError("a queue's key has been rotated: seed a fresh database (`flask portal init`)")
    queues = {q.code: (q.id, q.public_key) for q in session.scalars(select(Queue))}
    if routing.DPS not in queues:
        raise SeedError("no queues: run `flask portal init` first")
    return queues


def _number(session: Session, cases: list[CasePlan]) -> None:
    """Give every case its reference, in order of receipt within each year: one block of numbers per year."""
    per_year = Counter(case.received_at.year for case in cases)
    taken = {year: new_cases.reserve_references(session, year, count) for year, count in sorted(per_year.items())}
    for case in cases:
        year = case.received_at.year
        case.reference = new_cases.format_reference(year, taken[year])
        taken[year] += 1


def _tasks(plan: Plan, forked: bool) -> tuple[list[Any], list[Any]]:
    """The directory's chunks and the cases' sealing tasks. Forked workers read their cases from the shared
    plan; others are given theirs."""
    force = plan.workforce
    people = [
        (p, force.command[p], force.rank[p], force.ethnicity[p], force.probationer[p], force.joined[p])
        for p in range(len(force))
    ]
    workforce_tasks = [
        (n, people[i : i + WORKFORCE_CHUNK]) for n, i in enumerate(range(0, len(people), WORKFORCE_CHUNK))
    ]
    case_tasks = [
        (n, i, i + CHUNK, None if forked else plan.cases[i : i + CHUNK])
        for n, i in enumerate(range(0, len(plan.cases), CHUNK))
    ]
    return workforce_tasks, case_tasks


def _write(
    session: Session,
    plan: Plan,
    context: rows.SealingContext,
    workers: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Seal and write the directory and the cases in one transaction, and commit; nothing stays on failure."""
    dialect = context.dialect
    forked = workers > 0 and _start_method().get_start_method() == "fork"
    rows.share_plan(plan.cases if forked else [])
    workforce_tasks, case_tasks = _tasks(plan, forked)
    pool = None
    try:
        if dialect == "sqlite":
            # The whole load in cache (~3 KB a case with its events and indexes): pages that spill to the WAL
            # mid-transaction are read back for every later insert into their B-tree, doubling the cost.
            cache_kib = min(max(65_536, 4 * len(plan.cases)), 6_000_000)
            session.connection().exec_driver_sql(f"PRAGMA cache_size=-{cache_kib}")
        # A bulk load (portal.storage.bulk): triggers and secondary indexes off for it, their work done once at the end.
        with bulk.bulk_load(session, rebuild=rollups.rebuild):
            writers = (
                Writer(session, WorkforceMember, rows.WORKFORCE_COLUMNS),
                Writer(session, Report, rows.REPORT_COLUMNS),
                Writer(session, CaseEvent, rows.EVENT_COLUMNS),
            )
            if workers > 0:
                pool = _start_method().Pool(workers, initializer=rows.init_worker, initargs=(context,))
                _seal_and_write(writers, workforce_tasks, case_tasks, progress, pool)
            else:
                rows.init_worker(context)
                try:
                    _seal_and_write(writers, workforce_tasks, case_tasks, progress, None)
                finally:
                    rows.init_worker(None)
            # Each open case's stage due moment (portal.domain.clocks), in one UPDATE over the rows just written.
            from portal.domain import clocks

            clocks.recompute_stage_due(session, clocks.current_targets(session))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        rows.share_plan([])
        if pool is not None:
            pool.terminate()
            pool.join()
        if dialect == "sqlite":
            session.connection().exec_driver_sql("PRAGMA cache_size=-2000")
            session.commit()
    if dialect == "postgresql":
        _vacuum(session)


def _seal_and_write(
    writers: tuple[Writer, Writer, Writer],
    workforce_tasks: list[Any],
    case_tasks: list[Any],
    progress: Callable[[int], None] | None,
    pool: Any,
) -> None:
    """The directory's rows, then the cases' and their events', sealed by the pool's workers (in task order,
    a few in flight while this process writes) or here."""
    workforce_writer, report_writer, event_writer = writers
    if pool is not None:
        workforce_rows: Iterator[Any] = _ordered(pool, rows.workforce_chunk, workforce_tasks)
        case_rows: Iterator[Any] = _ordered(pool, rows.seal_chunk, case_tasks)
    else:
        workforce_rows = (rows.workforce_chunk(task) for task in workforce_tasks)
        case_rows = (rows.seal_chunk(task) for task in case_tasks)
    for chunk in workforce_rows:
        workforce_writer.write(chunk)
    for report_rows, event_rows in case_rows:
        report_writer.write(report_rows)
        event_writer.write(event_rows)
        if progress:
            progress(len(report_rows))


def _vacuum(session: Session) -> None:
    """As after any bulk load on PostgreSQL: fresh planner statistics, and the visibility map that lets the
    oversight figures read their covering indexes alone (index-only scans) rather than the wide rows. Until
    autovacuum came round, every figure would read the whole table. VACUUM runs outside a transaction."""
    session.commit()
    with session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in ("reports", "workforce", "case_events"):
            connection.exec_driver_sql(f"VACUUM (ANALYZE) {table}")


def _reference_order(reference: str) -> tuple[int, int]:
    _cr, year, number = reference.split("-")
    return int(year), int(number)


def _start_method() -> Any:
    """fork where there is one: the workers need nothing of this process but the plan and public keys, and
    spawn would re-run the caller's main script (a bench or a notebook) in each worker."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _ordered(pool: Any, function: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
    """Results in task order, with a few tasks in flight: the workers seal while this process writes."""
    pending: deque = deque()
    upcoming = iter(tasks)
    for task in upcoming:
        pending.append(pool.apply_async(function, (task,)))
        if len(pending) >= IN_FLIGHT:
            break
    while pending:
        result = pending.popleft().get()
        next_task = next(upcoming, None)
        if next_task is not None:
            pending.append(pool.apply_async(function, (next_task,)))
        yield result


__all__ = ["MAX_REPORTS", "SeedError", "SeedResult", "default_workers", "headcount_for", "seed"]
