"""Queue keys: who holds them, granting them, and rotating them when someone leaves.

Each queue has an X25519 key pair per generation. A report's data key is sealed to one generation of its
queue's public key (`reports.queue_key_generation`). A membership row holds one generation's private key
sealed to the officer's public key; the row of the queue's current generation is what makes an officer a
member. Removing an officer (or disabling the account) rotates the pair: a new generation, sealed to every
remaining member and to the recovery key, takes the new reports; the retired pair stays recoverable in
`queue_key_generations`. A copy of the removed officer's old row opens only what was sealed before.

The data keys of the queue's existing cases are re-wrapped to the current generation by `rewrap`, which
needs the old private keys: from the recovery key (`flask portal rewrap`, or `revoke --recovery-key`), or
from a remaining member. Until then remaining members read older cases through their older rows.
Nothing here knows about Flask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, exists, func, select
from sqlalchemy.orm import Session

from portal import sealing
from portal.core import crypto
from portal.storage.clock_models import KeptKey
from portal.storage.models import Officer, Queue, QueueKeyGeneration, QueueMembership, Report, utcnow

REWRAP_BATCH = 2000


class AccessDenied(Exception):
    """The officer holds no key that opens this; says nothing more."""


def key_context(code: str, generation: int) -> str:
    """What a sealed queue private key is bound to: the queue and the generation (the first keeps its old name)."""
    return f"queue-key|{code}" if generation == 1 else f"queue-key|{code}|g{generation}"


def current_membership():  # noqa: ANN201 -- a SQL condition, used in joins
    """Membership rows of their queue's current generation: being a member means holding one."""
    return QueueMembership.generation == Queue.key_generation


def member_queue_ids(session: Session, officer_id: int) -> set[int]:
    """The queues the officer is a member of now."""
    return set(
        session.scalars(
            select(QueueMembership.queue_id)
            .join(Queue, Queue.id == QueueMembership.queue_id)
            .where(QueueMembership.officer_id == officer_id, current_membership())
        )
    )


def member_queues(session: Session, officer_id: int) -> list[Queue]:
    """The queues the officer is a member of now, by code."""
    return list(
        session.scalars(
            select(Queue)
            .join(QueueMembership, QueueMembership.queue_id == Queue.id)
            .where(QueueMembership.officer_id == officer_id, current_membership())
            .order_by(Queue.code)
        )
    )


def members(session: Session, queue_id: int, *, active_only: bool = True) -> list[Officer]:
    """The queue's current members (enabled accounts unless asked otherwise), by name."""
    query = (
        select(Officer)
        .join(QueueMembership, QueueMembership.officer_id == Officer.id)
        .join(Queue, Queue.id == QueueMembership.queue_id)
        .where(QueueMembership.queue_id == queue_id, current_membership())
        .order_by(Officer.name, Officer.id)
    )
    if active_only:
        query = query.where(Officer.disabled.is_(False))
    return list(session.scalars(query))


def active_member_counts(session: Session) -> dict[int, int]:
    """How many enabled members each queue has now, by queue id (queues with none are absent)."""
    rows = session.execute(
        select(QueueMembership.queue_id, func.count())
        .join(Queue, Queue.id == QueueMembership.queue_id)
        .join(Officer, Officer.id == QueueMembership.officer_id)
        .where(current_membership(), Officer.disabled.is_(False))
        .group_by(QueueMembership.queue_id)
    )
    return {queue_id: count for queue_id, count in rows}


def open_queue_key(
    session: Session, officer: Officer, private_key: bytes, queue: Queue, generation: int | None = None
) -> bytes:
    """The queue's private key of a generation (the current one by default) through the officer's row."""
    generation = queue.key_generation if generation is None else generation
    sealed = session.scalar(
        select(QueueMembership.queue_private_key_sealed).where(
            QueueMembership.officer_id == officer.id,
            QueueMembership.queue_id == queue.id,
            QueueMembership.generation == generation,
        )
    )
    if sealed is None or (generation != queue.key_generation and queue.id not in member_queue_ids(session, officer.id)):
        raise AccessDenied(queue.code)
    try:
        return crypto.open_sealed(private_key, sealed, context=key_context(queue.code, generation))
    except crypto.DecryptionError as exc:
        raise AccessDenied(queue.code) from exc


def officer_generation_keys(session: Session, officer: Officer, private_key: bytes, queue: Queue) -> dict[int, bytes]:
    """Every generation of the queue's key the officer holds, opened (a current member only)."""
    if queue.id not in member_queue_ids(session, officer.id):
        raise AccessDenied(queue.code)
    rows = session.execute(
        select(QueueMembership.generation, QueueMembership.queue_private_key_sealed).where(
            QueueMembership.officer_id == officer.id, QueueMembership.queue_id == queue.id
        )
    )
    return {g: crypto.open_sealed(private_key, sealed, context=key_context(queue.code, g)) for g, sealed in rows}


def recovery_generation_keys(session: Session, queue: Queue, recovery_private: bytes) -> dict[int, bytes]:
    """Every generation of the queue's key, through the offline recovery key."""
    keys = {
        queue.key_generation: crypto.open_sealed(
            recovery_private, queue.private_key_for_recovery, context=key_context(queue.code, queue.key_generation)
        )
    }
    for old in session.scalars(select(QueueKeyGeneration).where(QueueKeyGeneration.queue_id == queue.id)):
        keys[old.generation] = crypto.open_sealed(
            recovery_private, old.private_key_for_recovery, context=key_context(queue.code, old.generation)
        )
    return keys


def _seal_row(
    session: Session, queue: Queue, officer: Officer, generation: int, private: bytes, by: Officer | None
) -> None:
    sealed = crypto.seal_to(officer.public_key, private, context=key_context(queue.code, generation))
    row = session.scalar(
        select(QueueMembership).where(
            QueueMembership.officer_id == officer.id,
            QueueMembership.queue_id == queue.id,
            QueueMembership.generation == generation,
        )
    )
    if row is None:
        row = QueueMembership(
            officer_id=officer.id, queue_id=queue.id, generation=generation, queue_private_key_sealed=sealed
        )
        session.add(row)
    else:
        row.queue_private_key_sealed = sealed
    row.granted_by_officer_id = by.id if by else None
    row.granted_at = utcnow()


def grant(
    session: Session, queue: Queue, keys: Mapping[int, bytes], officer: Officer, granted_by: Officer | None
) -> None:
    """Make the officer a member: every generation given in `keys` (the current one is required), each
    checked against the public key it belongs to, sealed to the officer's public key."""
    publics = dict(
        session.execute(
            select(QueueKeyGeneration.generation, QueueKeyGeneration.public_key).where(
                QueueKeyGeneration.queue_id == queue.id
            )
        ).all()
    )
    publics[queue.key_generation] = queue.public_key
    if queue.key_generation not in keys:
        raise AccessDenied(queue.code)
    for generation, private in keys.items():
        if publics.get(generation) is None or crypto.public_key_of(private) != bytes(publics[generation]):
            raise AccessDenied(queue.code)
    session.flush()
    for generation, private in keys.items():
        _seal_row(session, queue, officer, generation, private, granted_by)


@dataclass(frozen=True)
class Rotation:
    queue_code: str
    generation: int  # the new one
    members: int  # remaining members granted it
    pending_cases: int  # cases still sealed to an older generation (rewrap re-wraps them)


def rotate(session: Session, queue: Queue, recovery_public_key: bytes, now: datetime | None = None) -> Rotation:
    """A new key pair for the queue. New reports are sealed to it; every remaining enabled member (holding the
    current generation) is granted it; the recovery key holds it; the retired pair is kept for recovery.
    The new private key is forgotten on return: nobody on the server holds it."""
    old = queue.key_generation
    session.add(
        QueueKeyGeneration(
            queue_id=queue.id,
            generation=old,
            public_key=queue.public_key,
            private_key_for_recovery=queue.private_key_for_recovery,
            retired_at=now or utcnow(),
        )
    )
    remaining = members(session, queue.id)
    pair = crypto.generate_keypair()
    new = old + 1
    queue.public_key = pair.public
    queue.private_key_for_recovery = crypto.seal_to(
        recovery_public_key, pair.private, context=key_context(queue.code, new)
    )
    queue.key_generation = new
    session.flush()
    for officer in remaining:
        _seal_row(session, queue, officer, new, pair.private, None)
    pending = session.scalar(
        select(func.count()).select_from(Report).where(Report.queue_id == queue.id, Report.queue_key_generation < new)
    )
    return Rotation(queue.code, new, len(remaining), int(pending or 0))


def remove_member(session: Session, queue: Queue, officer: Officer, recovery_public_key: bytes) -> Rotation:
    """Take the officer out of the queue (every generation's row), then rotate the queue's key."""
    session.execute(
        delete(QueueMembership).where(QueueMembership.officer_id == officer.id, QueueMembership.queue_id == queue.id)
    )
    session.execute(
        Report.__table__.update()
        .where(Report.queue_id == queue.id, Report.assigned_officer_id == officer.id)
        .values(assigned_officer_id=None)
    )
    return rotate(session, queue, recovery_public_key)


def rewrap(session: Session, queue: Queue, keys: Mapping[int, bytes], batch: int = REWRAP_BATCH) -> int:
    """Re-wrap the data keys of the queue's cases sealed to older generations to the current one, in batches
    (the caller commits; each batch is flushed). Then drops membership rows of generations no case uses.
    `keys`: the older generations' private keys by generation. Returns how many cases were re-wrapped."""
    current = queue.key_generation
    done = 0
    last_id = ""
    table = Report.__table__
    while True:
        rows = session.execute(
            select(Report.id, Report.queue_key_generation, Report.dek_for_queue)
            .where(Report.queue_id == queue.id, Report.queue_key_generation < current, Report.id > last_id)
            .order_by(Report.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        updates = []
        for report_id, generation, sealed in rows:
            private = keys.get(generation)
            if private is None:
                continue  # a generation this caller cannot open stays as it is
            updates.append({"b_id": report_id, "dek": sealing.rewrap(private, sealed, queue.public_key, report_id)})
        if updates:
            session.execute(
                table.update()
                .where(table.c.id == bindparam("b_id"))
                .values(dek_for_queue=bindparam("dek"), queue_key_generation=current),
                updates,
            )
        done += len(updates)
        last_id = rows[-1].id
    _rewrap_kept(session, queue, keys)
    drop_unused_generations(session, queue)
    return done


def _rewrap_kept(session: Session, queue: Queue, keys: Mapping[int, bytes]) -> None:
    """The data keys the queue kept of cases it passed on (KeptKey), to its current generation too."""
    for kept in session.scalars(
        select(KeptKey).where(KeptKey.queue_id == queue.id, KeptKey.generation < queue.key_generation)
    ):
        private = keys.get(kept.generation)
        if private is not None:
            kept.dek_wrapped = sealing.rewrap(private, kept.dek_wrapped, queue.public_key, kept.report_id)
            kept.generation = queue.key_generation
    session.flush()


def keep_data_key(session: Session, report_id: str, dek: bytes, queue: Queue) -> None:
    """Keep the case's data key wrapped to `queue` (which is passing the case on), so that its members still read it."""
    kept = session.get(KeptKey, (report_id, queue.id))
    if kept is None:
        kept = KeptKey(report_id=report_id, queue_id=queue.id)
        session.add(kept)
    kept.dek_wrapped = sealing.wrap_to(queue.public_key, dek, report_id)
    kept.generation = queue.key_generation


def forget_kept_key(session: Session, report_id: str, queue_id: int) -> None:
    """The case is back in that queue: its own wrap serves, the kept one goes."""
    session.execute(delete(KeptKey).where(KeptKey.report_id == report_id, KeptKey.queue_id == queue_id))


def kept_queue_ids(session: Session, report_id: str) -> set[int]:
    """The queues that passed the case on and kept its data key."""
    return set(session.scalars(select(KeptKey.queue_id).where(KeptKey.report_id == report_id)))


def open_kept_key(session: Session, officer: Officer, private_key: bytes, report_id: str, queue: Queue) -> bytes:
    """The case's data key through the key `queue` kept, for one of its members. Raises AccessDenied otherwise."""
    kept = session.get(KeptKey, (report_id, queue.id))
    if kept is None:
        raise AccessDenied(queue.code)
    queue_private = open_queue_key(session, officer, private_key, queue, kept.generation)
    try:
        return sealing.open_wrapped(queue_private, kept.dek_wrapped, report_id)
    except crypto.DecryptionError as exc:
        raise AccessDenied(queue.code) from exc


def drop_unused_generations(session: Session, queue: Queue) -> None:
    """Membership rows of older generations that no case of the queue is sealed to any more are deleted."""
    in_use = select(Report.id).where(
        Report.queue_id == queue.id, Report.queue_key_generation == QueueMembership.generation
    )
    kept = select(KeptKey.report_id).where(
        KeptKey.queue_id == queue.id, KeptKey.generation == QueueMembership.generation
    )
    session.execute(
        delete(QueueMembership)
        .where(
            QueueMembership.queue_id == queue.id,
            QueueMembership.generation < queue.key_generation,
            ~exists(in_use),
            ~exists(kept),
        )
        .execution_options(synchronize_session=False)
    )
