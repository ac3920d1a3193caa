"""Who may read, act on, be assigned or be told about a case, and the record of every reading: in one place.

Every route and job that shows, changes or announces a case asks this module; there is no other copy.

- **Membership**: an enabled account holding the current generation of the case's queue key
  (portal.sealing.queue_keys). A held report is in no queue: nobody reads it until it is released.
- **Conflict of interest**: the officer's staff number is the subject's (blind index, compared in memory:
  the officer's index is stored only sealed, so the database alone cannot join officers to reports); or the
  officer's name is the subject's (their own name, or the name the workforce directory gives their number,
  against the name the reporter gave; or the directory's name for the number the reporter gave against the
  officer's names); or the officer declared a conflict on the case. A name match without a number is only
  probable: the case is hidden all the same, a supervisor is told, and a supervisor who knows the two are
  namesakes can clear it ("cleared"). A staff-number match or a declaration cannot be cleared.
- **Audit of reading**: `record_opening` is how every route that shows case content records it, whatever
  the response; a queue page records one entry per summary it opened.

Nothing here knows about Flask: callers pass the session, the officer and the blind-index key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from portal import sealing
from portal.core import crypto
from portal.sealing import queue_keys
from portal.storage import audit
from portal.storage.models import CaseConflict, Officer, Queue, Report, WorkforceMember

# Why an officer may not see a case. The routes answer all of these alike (404), as for a stranger.
NOT_MEMBER = "not a member of the case's queue"
DISABLED = "account disabled"
HELD = "held until corroborated: in no queue"
STAFF_NUMBER = "the officer's staff number is the subject's"
NAME = "the officer's name is the subject's (probable: no staff number links them)"
DECLARED = "the officer declared a conflict"

# The audit actions of opening case content. Every one names its case.
OPENINGS = ("view-case", "view-summary", "download-attachment")


@dataclass(frozen=True)
class Identity:
    """An officer as conflict checks see them. The subject-domain indexes exist only in memory."""

    officer_id: int
    role: str
    disabled: bool
    staff_index: bytes | None
    name_indexes: frozenset[bytes]
    declared_tag: bytes  # the keyed tags of this officer's recorded conflict decisions (crypto.conflict_tag)
    cleared_tag: bytes


def identity(session: Session, officer: Officer, blind_index_key: bytes) -> Identity:
    """Work out the officer's subject-domain indexes: their staff number's (unsealed), their name's, and
    the name the workforce directory gives their number."""
    staff_index = crypto.open_officer_index(blind_index_key, officer.staff_index_sealed)
    names = {crypto.name_index(blind_index_key, officer.name)}
    if staff_index is not None:
        directory_name = session.scalar(
            select(WorkforceMember.name_index).where(WorkforceMember.staff_number_index == staff_index)
        )
        names.add(directory_name)
    return _identity(officer, staff_index, names, blind_index_key)


def _identity(officer: Officer, staff_index: bytes | None, names: set[bytes | None], key: bytes) -> Identity:
    return Identity(
        officer.id,
        officer.role,
        officer.disabled,
        staff_index,
        frozenset(n for n in names if n),
        crypto.conflict_tag(key, "declared", officer.id),
        crypto.conflict_tag(key, "cleared", officer.id),
    )


def identities(session: Session, officers: list[Officer], blind_index_key: bytes) -> list[Identity]:
    """Identities of several officers, with one directory look-up for all of them."""
    staff = {o.id: crypto.open_officer_index(blind_index_key, o.staff_index_sealed) for o in officers}
    wanted = {index for index in staff.values() if index is not None}
    directory = (
        dict(
            session.execute(
                select(WorkforceMember.staff_number_index, WorkforceMember.name_index).where(
                    WorkforceMember.staff_number_index.in_(wanted)
                )
            ).all()
        )
        if wanted
        else {}
    )
    found = []
    for officer in officers:
        index = staff[officer.id]
        names = {crypto.name_index(blind_index_key, officer.name), directory.get(index) if index else None}
        found.append(_identity(officer, index, names, blind_index_key))
    return found


# ---------------------------------------------------------------- conflicts


def _subject_directory_name(session: Session, report: Report) -> bytes | None:
    if report.subject_staff_index is None:
        return None
    return session.scalar(
        select(WorkforceMember.name_index).where(WorkforceMember.staff_number_index == report.subject_staff_index)
    )


def _conflict(
    who: Identity,
    staff_index: bytes | None,
    name_index: bytes | None,
    directory_name: bytes | None,
    recorded: set[str],
) -> str | None:
    """The one definition of a conflict of interest, on plain values."""
    if "declared" in recorded:
        return DECLARED
    if who.staff_index is not None and who.staff_index == staff_index:
        return STAFF_NUMBER
    names = {name_index, directory_name} - {None}
    if names & who.name_indexes and "cleared" not in recorded:
        return NAME
    return None


def _recorded(session: Session, people: list[Identity]) -> dict[tuple[str, int], set[str]]:
    """Recorded conflict decisions of these officers, by (report id, officer id): few rows, whatever the
    cases. Rows name officer and kind only by keyed tag; the tags are worked out here, in memory."""
    if not people:
        return {}
    by_tag = {}
    for who in people:
        by_tag[who.declared_tag] = (who.officer_id, "declared")
        by_tag[who.cleared_tag] = (who.officer_id, "cleared")
    recorded: dict[tuple[str, int], set[str]] = {}
    tags = list(by_tag)
    for start in range(0, len(tags), 5000):
        rows = session.execute(
            select(CaseConflict.report_id, CaseConflict.tag).where(CaseConflict.tag.in_(tags[start : start + 5000]))
        )
        for report_id, tag in rows:
            officer_id, kind = by_tag[bytes(tag)]
            recorded.setdefault((report_id, officer_id), set()).add(kind)
    return recorded


def conflicts(session: Session, report: Report, people: list[Identity]) -> dict[int, str]:
    """The officers among `people` with a conflict on the case, and why (by officer id)."""
    if not people:
        return {}
    directory_name = _subject_directory_name(session, report)
    recorded = _recorded(session, people)
    found = {}
    for who in people:
        kinds = recorded.get((report.id, who.officer_id), set())
        reason = _conflict(who, report.subject_staff_index, report.subject_name_index, directory_name, kinds)
        if reason:
            found[who.officer_id] = reason
    return found


@dataclass(frozen=True)
class Subject:
    """What a batch job knows of a case for conflict checks: clear columns only."""

    report_id: str
    queue_id: int
    staff_index: bytes | None
    name_index: bytes | None


def blocked_pairs(
    session: Session, subjects: list[Subject], people_by_queue: dict[int, list[Identity]]
) -> set[tuple[str, int]]:
    """The (report id, officer id) pairs with a conflict, for many cases and each one's queue members, in a
    bounded number of queries (the directory's names in chunks, and the recorded conflicts of the people)."""
    staff = sorted({s.staff_index for s in subjects if s.staff_index is not None})
    directory: dict[bytes, bytes | None] = {}
    for start in range(0, len(staff), 5000):
        chunk = staff[start : start + 5000]
        directory.update(
            session.execute(
                select(WorkforceMember.staff_number_index, WorkforceMember.name_index).where(
                    WorkforceMember.staff_number_index.in_(chunk)
                )
            ).all()
        )
    everyone = {p.officer_id: p for people in people_by_queue.values() for p in people}
    recorded = _recorded(session, list(everyone.values()))
    blocked = set()
    for subject in subjects:
        directory_name = directory.get(subject.staff_index) if subject.staff_index else None
        for who in people_by_queue.get(subject.queue_id, []):
            kinds = recorded.get((subject.report_id, who.officer_id), set())
            if _conflict(who, subject.staff_index, subject.name_index, directory_name, kinds):
                blocked.add((subject.report_id, who.officer_id))
    return blocked


def conflict_of(session: Session, who: Identity, report: Report) -> str | None:
    return conflicts(session, report, [who]).get(who.officer_id)


def not_conflicted(who: Identity) -> ColumnElement[bool]:
    """The SQL condition for lists and counts: the cases this officer has no conflict on."""
    declared = select(CaseConflict.report_id).where(CaseConflict.tag == who.declared_tag)
    conditions: list[ColumnElement[bool]] = [Report.id.not_in(declared)]
    if who.staff_index is not None:
        conditions.append(or_(Report.subject_staff_index.is_(None), Report.subject_staff_index != who.staff_index))
    if who.name_indexes:
        names = list(who.name_indexes)
        cleared = exists().where(CaseConflict.report_id == Report.id, CaseConflict.tag == who.cleared_tag)
        by_directory = exists().where(
            WorkforceMember.staff_number_index == Report.subject_staff_index, WorkforceMember.name_index.in_(names)
        )
        # Spelled so that a report naming nobody (NULL indexes) is "not named", never SQL's unknown, which
        # would drop it from every list of an officer who has a name.
        by_name = and_(Report.subject_name_index.is_not(None), Report.subject_name_index.in_(names))
        named = or_(by_name, by_directory)
        conditions.append(or_(~named, cleared))
    return and_(*conditions)


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


def may_read(session: Session, who: Identity, report: Report, *, member_queue_ids: set[int] | None = None) -> Decision:
    """May the officer open the case's content? The same answer serves acting on it."""
    if who.disabled:
        return Decision(False, DISABLED)
    if report.held:
        return Decision(False, HELD)
    queues = member_queue_ids if member_queue_ids is not None else queue_keys.member_queue_ids(session, who.officer_id)
    # A member of the case's queue, or of a queue that passed it on and kept its key (DPS supervising a PSU).
    if report.queue_id not in queues and not queues & queue_keys.kept_queue_ids(session, report.id):
        return Decision(False, NOT_MEMBER)
    reason = conflict_of(session, who, report)
    return Decision(False, reason) if reason else Decision(True)


may_act = may_read

NOT_SUBJECT_READER = "a person's history of concerns is for supervisors and DPS"
NO_CASE = "no such case"


def may_see_subject(session: Session, who: Identity, anchor: Report | None) -> Decision:
    """May the officer see every concern about the subject of the case `anchor` (clear metadata; content only
    where may_read lets them, case by case)? Supervisors and members of DPS, reaching it from a case: a member of
    DPS from any case (the central unit supervises the local ones), a supervisor from a case they may read. Never
    someone with a conflict of interest on the case (their staff number or name is the subject's, or they declared
    one); and, so that a refusal never tells them a case is about them, a supervisor who may not read the case is
    answered as the conflicted are (NOT_MEMBER, shown as for a stranger)."""
    if who.disabled:
        return Decision(False, DISABLED)
    queues = queue_keys.member_queue_ids(session, who.officer_id)
    in_dps = _dps_id(session) in queues
    if who.role != "supervisor" and not in_dps:
        return Decision(False, NOT_SUBJECT_READER)
    if anchor is None:
        return Decision(False, NO_CASE)
    if anchor.held:
        return Decision(False, HELD)
    if not in_dps:
        return may_read(session, who, anchor, member_queue_ids=queues)
    reason = conflict_of(session, who, anchor)
    return Decision(False, reason) if reason else Decision(True)


def eligible_officers(
    session: Session, report: Report, blind_index_key: bytes, queue_id: int | None = None
) -> list[Officer]:
    """The enabled members of the case's queue (or of `queue_id`, a queue it might be sent to) with no
    conflict on it: who may be assigned, and told; none means nobody there could read it."""
    if report.held:
        return []
    people = queue_keys.members(session, report.queue_id if queue_id is None else queue_id)
    blocked = conflicts(session, report, identities(session, people, blind_index_key))
    return [officer for officer in people if officer.id not in blocked]


def may_be_assigned(session: Session, officer: Officer, report: Report, blind_index_key: bytes) -> Decision:
    return may_read(session, identity(session, officer, blind_index_key), report)


def recipients(session: Session, report: Report, blind_index_key: bytes) -> list[str]:
    """Emails of those to tell about the case: eligible officers who want mail."""
    return [o.email for o in eligible_officers(session, report, blind_index_key) if o.notify_by_email]


def queue_has_reader(session: Session, queue_id: int) -> bool:
    """Does the queue have at least one enabled member (someone who can open what is sealed to it)?"""
    return bool(queue_keys.members(session, queue_id))


def data_key(session: Session, who: Identity, officer: Officer, private_key: bytes, report: Report) -> bytes:
    """The case's data key, for an officer who may read it. Raises queue_keys.AccessDenied otherwise."""
    if not may_read(session, who, report):
        raise queue_keys.AccessDenied(report.reference)
    queue = report.queue if report.queue is not None else session.get(Queue, report.queue_id)
    assert queue is not None
    mine = queue_keys.member_queue_ids(session, officer.id)
    if queue.id not in mine:  # through the key kept by a queue that passed the case on
        kept = sorted(mine & queue_keys.kept_queue_ids(session, report.id))
        if not kept:
            raise queue_keys.AccessDenied(report.reference)
        keeper = session.get(Queue, kept[0])
        assert keeper is not None
        return queue_keys.open_kept_key(session, officer, private_key, report.id, keeper)
    queue_private = queue_keys.open_queue_key(session, officer, private_key, queue, report.queue_key_generation)
    try:
        return sealing.open_wrapped(queue_private, report.dek_for_queue, report.id)
    except crypto.DecryptionError as exc:
        raise queue_keys.AccessDenied(report.reference) from exc


# ---------------------------------------------------------------- declared and probable conflicts


def _record(session: Session, report: Report, tag: bytes) -> None:
    if not session.scalar(select(CaseConflict.id).where(CaseConflict.report_id == report.id, CaseConflict.tag == tag)):
        session.add(CaseConflict(report_id=report.id, tag=tag))


def declare(session: Session, who: Identity, report: Report) -> None:
    """The officer says they know the subject or are involved: the case disappears for them."""
    _record(session, report, who.declared_tag)
    if report.assigned_officer_id == who.officer_id:
        report.assigned_officer_id = None


def clear_name_match(session: Session, report: Report, officer: Identity, by: Identity) -> None:
    """A supervisor's word that a probable name match is a namesake: the case shows for that officer again."""
    if by.role not in ("supervisor", "admin") or by.officer_id == officer.officer_id:
        raise queue_keys.AccessDenied(report.reference)
    _record(session, report, officer.cleared_tag)


def probable_matches(session: Session, report: Report, blind_index_key: bytes) -> list[int]:
    """The queue's members whose name matches the subject's with no staff number to link them: the case is
    hidden from them (worked out afresh at every check, never stored) and the caller tells a supervisor.
    Staff-number matches need nobody's word."""
    if report.held:
        return []
    people = queue_keys.members(session, report.queue_id)
    found = conflicts(session, report, identities(session, people, blind_index_key))
    return [officer_id for officer_id, reason in found.items() if reason == NAME]


def hidden_from(session: Session, report: Report, blind_index_key: bytes) -> list[tuple[Officer, str]]:
    """The queue's members the case is hidden from, and why: for a supervisor's view of the case."""
    people = queue_keys.members(session, report.queue_id)
    found = conflicts(session, report, identities(session, people, blind_index_key))
    return [(officer, found[officer.id]) for officer in people if officer.id in found]


def supervisors_to_tell(session: Session, report: Report, blind_index_key: bytes) -> list[str]:
    """Supervisors of the case's queue who may read it (else DPS's), for conflict notices."""
    for queue_id in (report.queue_id, _dps_id(session)):
        if queue_id is None:
            continue
        people = [o for o in queue_keys.members(session, queue_id) if o.role == "supervisor"]
        blocked = conflicts(session, report, identities(session, people, blind_index_key))
        found = [o.email for o in people if o.id not in blocked]
        if found:
            return found
    return []


def _dps_id(session: Session) -> int | None:
    from portal.core.routing import DPS

    return session.scalar(select(Queue.id).where(Queue.code == DPS))


# ---------------------------------------------------------------- the record of reading


def record_opening(
    session: Session, action: str, officer_id: int, report: Report, queue_code: str, **detail: Any
) -> None:
    """One audit entry for one opening of a case's content (its page, a summary on a queue page, a file)."""
    if action not in OPENINGS:
        raise ValueError(f"not an opening: {action}")
    audit.record(
        session, action, officer_id=officer_id, report_id=report.id, queue_code=queue_code, detail=detail or None
    )


def record_openings(session: Session, action: str, officer_id: int, reports: Sequence[Report], queue_code: str) -> None:
    """One audit entry for each case whose content a page showed (a queue page's summaries), as
    `record_opening` writes them one by one, appended together (portal.storage.audit.record_many)."""
    if action not in OPENINGS:
        raise ValueError(f"not an opening: {action}")
    pending = [audit.Pending(action, officer_id, report.id, queue_code) for report in reports]
    audit.record_many(session, pending)
