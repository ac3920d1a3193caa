"""Importing CSV files: the workforce directory, and historical cases from a legacy system.

Plain functions over a SQLAlchemy session, the server's secrets and a CSV source (a text stream, a
binary stream, or a path); nothing here knows about Flask requests. File formats: docs/SPEC.md.

Both imports are all-or-nothing. Every row is checked first; if any row is bad, `ImportProblem` is
raised listing every bad row as "line N: reason" (the header is line 1) and nothing has been written.
Otherwise the rows are written and one audit entry (action "import") is recorded in the caller's
transaction: the caller commits (or rolls back on any other error, so again nothing is kept). The workforce
file's rows are staged first in short transactions of their own (nobody sees them until the swap).

What is stored follows docs/DESIGN.md ("what stays in clear"):
- the workforce directory holds blind indexes of staff numbers and names (never the numbers or names)
  with command, rank band, ethnicity group, probationer flag and joining date;
- an imported case is sealed exactly like a new report: its own data key, the summary, subject name and
  staff number sealed under it, the key wrapped to the DPS queue and to the recovery key. Only codes,
  dates, the legacy reference and blind indexes are in clear. It has no receipt (nobody can follow a
  legacy case from the reporter's side).
"""

from __future__ import annotations

import bisect
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from portal.core import crypto
from portal.core.codes import ETHNICITY_GROUPS, FINDINGS, SANCTIONS, SEVERITIES
from portal.core.routing import CATEGORIES, DPS
from portal.domain import csv_rows, intake, new_cases
from portal.domain.csv_rows import ImportProblem
from portal.storage import audit
from portal.storage.instance_secrets import ServerSecrets
from portal.storage.models import CaseEvent, Queue, Report, WorkforceMember, WorkforceStaging, utcnow

# docs/SPEC.md, "Codes".
RANK_BANDS = ("constable", "sergeant", "inspector", "chief-inspector", "superintendent", "chief-officer", "staff")

WORKFORCE_COLUMNS = ("staff_number", "name", "command", "rank", "ethnicity", "probationer", "joined_on")
CASE_COLUMNS = (
    "reference",
    "received_on",
    "finalised_on",
    "category",
    "subject_staff_number",
    "subject_name",
    "command",
    "severity",
    "finding",
    "sanction",
    "reg13",
    "summary",
)

IMPORTED_REASON = "Imported from the legacy system"
IMPORTED_DETAILS = "Imported from the legacy system."
IMPORTED_MODE = "anonymous"  # the portal holds no reporter identity for a legacy case
BATCH = 1000  # rows written per flush (and per staging transaction)
STALE_STAGING = timedelta(hours=1)  # staging rows this old were left by an import that died
_LEGACY_REFERENCE_MAX = Report.__table__.c.legacy_reference.type.length
_ETHNICITY_BY_FOLDED = {group.casefold(): group for group in ETHNICITY_GROUPS}

Progress = Callable[[int, int], None]  # (rows just written, rows to write in all)


@dataclass(frozen=True)
class WorkforceImport:
    rows: int  # data rows in the file
    created: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class CasesImport:
    rows: int  # data rows in the file
    imported: int  # new cases made
    already_imported: int  # rows whose legacy reference was imported before: skipped, not changed
    linked_to_workforce: int  # imported cases whose subject's staff number is in the workforce directory
    finalised: int  # imported cases with finalised_on (state "closed"); the others are open ("assessment")


# ---------------------------------------------------------------- the workforce directory


def workforce_for(session: Session, staff_index: bytes | None) -> WorkforceMember | None:
    """The directory entry for a staff number's blind index (crypto.staff_number_index), if there is one."""
    if staff_index is None:
        return None
    return session.scalar(select(WorkforceMember).where(WorkforceMember.staff_number_index == staff_index))


_MEMBER_FIELDS = ("name_index", "command", "rank_band", "ethnicity", "probationer", "joined_on")


def import_workforce(
    session: Session,
    stream: csv_rows.Source,
    blind_index_key: bytes,
    *,
    officer_id: int | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> WorkforceImport:
    """Load or refresh the workforce directory from workforce.csv (all or nothing; the caller commits the swap).

    Each row is matched to the directory by the blind index of its staff number (typed any way: spaces,
    hyphens and case do not matter). A person already there is updated when anything differs; a new one
    is added. People in the directory but absent from the file are left alone: this is a refresh, not a
    replacement (a leaver stays counted until removed by other means).

    Checks on every row: a staff number; command a known command code; rank one of RANK_BANDS;
    ethnicity one of ETHNICITY_GROUPS (any case); probationer true/false; joined_on YYYY-MM-DD or empty
    (unknown); no staff number twice in the file. The name may be empty (no name index then).
    Raises ImportProblem listing every bad row; nothing is written then.
    """
    now = now or utcnow()
    problems = csv_rows.Problems()
    rows = csv_rows.read_rows(stream, WORKFORCE_COLUMNS, problems)
    members = _checked_members(rows, blind_index_key, csv_rows.known_commands(session), problems)
    problems.raise_if_any()
    created, updated, unchanged = _store_members(session, members, now, progress)
    summary = WorkforceImport(rows=len(rows), created=created, updated=updated, unchanged=unchanged)
    audit.record(
        session,
        "import",
        officer_id=officer_id,
        detail={
            "import": "workforce",
            "rows": summary.rows,
            "created": summary.created,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
        },
    )
    session.flush()
    return summary


def _checked_members(
    rows: list[tuple[int, dict[str, str]]], blind_index_key: bytes, commands: set[str], problems: csv_rows.Problems
) -> dict[bytes, dict[str, Any]]:
    """The directory's values of every good row, by the blind index of the staff number; each bad row's reasons
    go to `problems`."""
    first_line: dict[bytes, int] = {}
    members: dict[bytes, dict[str, Any]] = {}
    for line, cells in rows:
        reasons: list[str] = []
        staff_index = crypto.staff_number_index(blind_index_key, cells["staff_number"])
        if staff_index is None:
            reasons.append("the staff number is missing")
        elif staff_index in first_line:
            reasons.append(f"the same staff number is already on line {first_line[staff_index]}")
        else:
            first_line[staff_index] = line
        command = csv_rows.command(cells["command"], commands, reasons, optional=False)
        rank = csv_rows.code(cells["rank"], RANK_BANDS, "rank", reasons)
        ethnicity = _ETHNICITY_BY_FOLDED.get(" ".join(cells["ethnicity"].split()).casefold())
        if ethnicity is None:
            reasons.append(
                f"unknown ethnicity group {cells['ethnicity']!r} (one of {', '.join(ETHNICITY_GROUPS)})"
                if cells["ethnicity"]
                else "ethnicity is missing (use 'Not stated' when it is not known)"
            )
        probationer = csv_rows.parse_bool(cells["probationer"], "probationer", reasons)
        joined_on = csv_rows.parse_date(cells["joined_on"], "joined_on", reasons) if cells["joined_on"] else None
        if reasons:
            problems.add(line, reasons)
            continue
        assert staff_index is not None
        members[staff_index] = {
            "name_index": crypto.name_index(blind_index_key, cells["name"]),
            "command": command,
            "rank_band": rank,
            "ethnicity": ethnicity,
            "probationer": probationer,
            "joined_on": joined_on,
        }
    return members


def _store_members(
    session: Session, members: dict[bytes, dict[str, Any]], now: datetime, progress: Progress | None = None
) -> tuple[int, int, int]:
    """Stage the rows BATCH at a time, each batch its own short transaction (no lock held while a file loads: not
    SQLite's write lock, nor the figures triggers' row locks on PostgreSQL, both of which intake needs), then swap
    them in with one UPDATE and one INSERT ... SELECT in the caller's transaction, beside the audit entry. Returns
    how many people were created, updated and unchanged. Staging left by an import that died goes at the next."""
    batch = secrets.token_hex(16)
    session.execute(delete(WorkforceStaging).where(WorkforceStaging.staged_at < now - STALE_STAGING))
    rows = [{"batch": batch, "staged_at": now, "staff_number_index": key, **values} for key, values in members.items()]
    for chunk in csv_rows.chunks(rows, BATCH):
        session.execute(insert(WorkforceStaging), list(chunk))
        session.commit()
        if progress is not None:
            progress(len(chunk), len(rows))
    try:
        return _swap_in(session, batch, now, len(rows))
    except Exception:  # two imports adding the same person at once: this one's staging goes, the caller says why
        session.rollback()
        session.execute(delete(WorkforceStaging).where(WorkforceStaging.batch == batch))
        session.commit()
        raise


def _swap_in(session: Session, batch: str, now: datetime, rows: int) -> tuple[int, int, int]:
    staged, member = WorkforceStaging, WorkforceMember
    this_batch = staged.batch == batch
    known = select(member.id).where(member.staff_number_index == staged.staff_number_index).exists()
    created = session.scalar(select(func.count()).where(this_batch, ~known)) or 0
    differs = or_(*(column.is_distinct_from(getattr(staged, column.key)) for column in _member_columns()))
    changed = session.execute(
        update(member)
        .where(member.staff_number_index == staged.staff_number_index, this_batch, differs)
        .values({**{column.key: getattr(staged, column.key) for column in _member_columns()}, "updated_at": now})
        .execution_options(synchronize_session=False)
    )
    updated = int(getattr(changed, "rowcount", 0) or 0)
    names = [column.key for column in _member_columns()]
    session.execute(
        insert(member).from_select(
            ["staff_number_index", *names, "updated_at"],
            select(staged.staff_number_index, *(getattr(staged, name) for name in names), literal(now)).where(
                this_batch, ~known
            ),
        )
    )
    session.execute(delete(staged).where(this_batch))
    return created, updated, rows - created - updated


def _member_columns() -> list[Any]:
    return [getattr(WorkforceMember, name) for name in _MEMBER_FIELDS]


# ---------------------------------------------------------------- historical cases


@dataclass
class _Case:
    line: int
    reference: str
    received_on: date
    finalised_on: date | None
    category: str
    staff_number: str
    name: str
    command: str | None
    severity: str | None
    finding: str | None
    sanction: str | None
    reg13: bool
    summary: str
    staff_index: bytes | None
    name_index: bytes | None

    @property
    def received_at(self) -> datetime:
        return datetime.combine(self.received_on, time.min)


def _check_case(
    line: int, cells: dict[str, str], commands: set[str], secrets: ServerSecrets, today: date
) -> tuple[_Case | None, list[str]]:
    reasons: list[str] = []
    reference = cells["reference"]
    if not reference:
        reasons.append("reference is missing")
    elif len(reference) > _LEGACY_REFERENCE_MAX:
        reasons.append(f"reference is longer than {_LEGACY_REFERENCE_MAX} characters")
    received_on = csv_rows.parse_date(cells["received_on"], "received_on", reasons)
    finalised_on = (
        csv_rows.parse_date(cells["finalised_on"], "finalised_on", reasons) if cells["finalised_on"] else None
    )
    if received_on and received_on > today:
        reasons.append(f"received_on {received_on.isoformat()} is in the future")
    if finalised_on and finalised_on > today:
        reasons.append(f"finalised_on {finalised_on.isoformat()} is in the future")
    if received_on and finalised_on and finalised_on < received_on:
        reasons.append("finalised_on is before received_on")
    category = csv_rows.code(cells["category"], CATEGORIES, "category", reasons)
    command = csv_rows.command(cells["command"], commands, reasons, optional=True)
    severity = csv_rows.code(cells["severity"], SEVERITIES, "severity", reasons, optional=True)
    finding = csv_rows.code(cells["finding"], FINDINGS, "finding", reasons, optional=True)
    sanction = csv_rows.code(cells["sanction"], SANCTIONS, "sanction", reasons, optional=True)
    if cells["finalised_on"]:
        for name, value in (
            ("severity", cells["severity"]),
            ("finding", cells["finding"]),
            ("sanction", cells["sanction"]),
        ):
            if not value:
                reasons.append(
                    f"a finalised case needs its {name}" + (" ('none' if there was none)" if name == "sanction" else "")
                )
    if sanction not in (None, "none") and finding is not None and finding != "case-to-answer":
        reasons.append("a sanction other than 'none' needs the finding 'case-to-answer'")
    reg13 = csv_rows.parse_bool(cells["reg13"], "reg13", reasons, empty=False)
    if reasons:
        return None, reasons
    assert received_on is not None and category is not None
    return (
        _Case(
            line=line,
            reference=reference,
            received_on=received_on,
            finalised_on=finalised_on,
            category=category,
            staff_number=cells["subject_staff_number"],
            name=cells["subject_name"],
            command=command,
            severity=severity,
            finding=finding,
            sanction=sanction,
            reg13=reg13,
            summary=cells["summary"],
            staff_index=crypto.staff_number_index(secrets.blind_index_key, cells["subject_staff_number"]),
            name_index=crypto.name_index(secrets.blind_index_key, cells["subject_name"]),
        ),
        [],
    )


def _already_imported(session: Session, references: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in csv_rows.chunks(references):
        found.update(session.scalars(select(Report.legacy_reference).where(Report.legacy_reference.in_(chunk))))
    return found


def _directory(session: Session, staff_indexes: list[bytes]) -> dict[bytes, Any]:
    found: dict[bytes, Any] = {}
    for chunk in csv_rows.chunks(staff_indexes):
        for row in session.execute(
            select(
                WorkforceMember.staff_number_index,
                WorkforceMember.command,
                WorkforceMember.rank_band,
                WorkforceMember.ethnicity,
                WorkforceMember.probationer,
            ).where(WorkforceMember.staff_number_index.in_(chunk))
        ):
            found[bytes(row.staff_number_index)] = row
    return found


def _received_times(session: Session, column: Any, indexes: list[bytes]) -> dict[bytes, list[datetime]]:
    """When each existing case (not held) about these blind indexes was received."""
    found: dict[bytes, list[datetime]] = {}
    for chunk in csv_rows.chunks(indexes):
        for index, received_at in session.execute(
            select(column, Report.received_at).where(column.in_(chunk), Report.held.is_(False))
        ):
            found.setdefault(bytes(index), []).append(received_at)
    return found


class _EarlierConcerns:
    """Earlier concerns about a case's subject, the way intake links them (patterns.subject_condition):
    by staff number when the case has one, else by name. "Earlier" means received on an earlier day,
    counting cases already in the database and rows of the same file."""

    def __init__(self, session: Session, cases: list[_Case]) -> None:
        staff = sorted({c.staff_index for c in cases if c.staff_index is not None})
        names = sorted({c.name_index for c in cases if c.staff_index is None and c.name_index is not None})
        self.by_staff = _received_times(session, Report.subject_staff_index, staff)
        self.by_name = _received_times(session, Report.subject_name_index, names)
        wanted_names = set(names)
        for case in cases:
            if case.staff_index is not None:
                self.by_staff.setdefault(case.staff_index, []).append(case.received_at)
            if case.name_index in wanted_names:
                self.by_name.setdefault(case.name_index, []).append(case.received_at)
        for times in (*self.by_staff.values(), *self.by_name.values()):
            times.sort()

    def count(self, case: _Case) -> int:
        if case.staff_index is not None:
            times = self.by_staff.get(case.staff_index, [])
        elif case.name_index is not None:
            times = self.by_name.get(case.name_index, [])
        else:
            return 0
        return bisect.bisect_left(times, case.received_at)


def import_cases(
    session: Session,
    stream: csv_rows.Source,
    secrets: ServerSecrets,
    settings: intake.IntakeSettings | None = None,
    *,
    officer_id: int | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> CasesImport:
    """Load historical cases from a legacy system's cases.csv (all or nothing; the caller commits).

    Each new row becomes a Report with source "import", its `legacy_reference` the file's reference and
    a new portal reference CR-<year received>-NNNNNN (numbered in order of receipt within the year). A
    row whose reference was imported before is skipped and counted (`already_imported`): importing the
    same file twice adds nothing, and a corrected row is not applied to a case already imported.

    The case: received_at/finalised_at at midnight of received_on/finalised_on; state "closed" when
    finalised, otherwise "assessment" (acknowledged on receipt); category, severity, finding, sanction and
    reg13 as given; subject_command the file's command, else the directory's; blind indexes of the staff
    number and name; the subject's rank band, ethnicity group and probationer flag copied from the
    workforce directory when the staff number is there. Queue DPS, routing reason IMPORTED_REASON; no
    IOPC flags (the legacy system dealt with referral); earlier_concerns counts the cases about the same
    person received on an earlier day (already stored or earlier in the file), matched as intake does.
    Clocks: acknowledgement due received + the acknowledgement days; the next update due received + the
    update days for a finalised case, but import time + the update days for an open one (its history of
    updates is not imported; a due date years ago would flag every open legacy case as overdue at once).

    Sealed like a new report: a fresh data key per case; summary (may be empty), details
    (IMPORTED_DETAILS), subject name and staff number sealed under it; the key wrapped to DPS's queue key
    and the recovery key; no receipt.

    Checks on every row: reference present, at most 40 characters, not twice in the file; received_on a
    date, not in the future; finalised_on empty or a date, not before received_on nor in the future;
    category a category code; command empty or a known command code; severity, finding and sanction
    empty or their codes, all three present when finalised_on is, and a sanction other than "none" only
    with "case-to-answer"; reg13 true, false or empty (false).

    `progress(written, total)` is called after each batch written (for a progress bar).
    """
    now = now or utcnow()
    settings = settings or intake.IntakeSettings()
    problems = csv_rows.Problems()
    rows = csv_rows.read_rows(stream, CASE_COLUMNS, problems)
    cases = _checked_cases(rows, csv_rows.known_commands(session), secrets, now.date(), problems)
    problems.raise_if_any()
    done = _already_imported(session, [c.reference for c in cases])
    new = sorted((c for c in cases if c.reference not in done), key=lambda c: (c.received_on, c.line))
    queue = session.scalar(select(Queue).where(Queue.code == DPS))
    if queue is None:
        raise ImportProblem(["the DPS queue does not exist: run `flask portal init` first"])
    linked = _store_cases(session, new, queue, secrets, settings, now, progress)
    summary = CasesImport(
        rows=len(rows),
        imported=len(new),
        already_imported=len(cases) - len(new),
        linked_to_workforce=linked,
        finalised=sum(1 for case in new if case.finalised_on is not None),
    )
    audit.record(
        session,
        "import",
        officer_id=officer_id,
        queue_code=DPS,
        detail={
            "import": "cases",
            "rows": summary.rows,
            "imported": summary.imported,
            "already_imported": summary.already_imported,
        },
    )
    session.flush()
    return summary


def _checked_cases(
    rows: list[tuple[int, dict[str, str]]],
    commands: set[str],
    secrets: ServerSecrets,
    today: date,
    problems: csv_rows.Problems,
) -> list[_Case]:
    """The good rows as cases; each bad row's reasons (a reference twice in the file too) go to `problems`."""
    first_line: dict[str, int] = {}
    cases: list[_Case] = []
    for line, cells in rows:
        case, reasons = _check_case(line, cells, commands, secrets, today)
        reference = cells["reference"]
        if reference in first_line:
            reasons.append(f"the same reference is already on line {first_line[reference]}")
        elif reference:
            first_line[reference] = line
        if reasons:
            problems.add(line, reasons)
        elif case is not None:
            cases.append(case)
    return cases


def _store_cases(
    session: Session,
    new: list[_Case],
    queue: Queue,
    secrets: ServerSecrets,
    settings: intake.IntakeSettings,
    now: datetime,
    progress: Progress | None,
) -> int:
    """Number, seal and insert the new cases (in order of receipt) with their events, a batch at a time; how many
    are about someone in the workforce directory."""
    directory = _directory(session, sorted({c.staff_index for c in new if c.staff_index is not None}))
    earlier = _EarlierConcerns(session, new)
    numbers: dict[int, int] = {}
    for year in sorted({c.received_on.year for c in new}):
        numbers[year] = new_cases.reserve_references(session, year, sum(1 for c in new if c.received_on.year == year))
    linked = 0
    for batch in csv_rows.chunks(new, BATCH):
        reports: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for case in batch:
            member = directory.get(case.staff_index) if case.staff_index is not None else None
            linked += member is not None
            sequence = numbers[case.received_on.year]
            numbers[case.received_on.year] += 1
            report = _new_case(case, sequence, member, earlier.count(case), queue, secrets, settings, now)
            reports.append(report)
            events.append(new_cases.received_event(report["id"], report["received_at"]))
            if report["finalised_at"] is not None:
                events.append(
                    {
                        "report_id": report["id"],
                        "at": report["finalised_at"],
                        "kind": "state-changed",
                        "state": "closed",
                    }
                )
        # Plain multi-row INSERTs: no ORM objects to build, track and flush for each case.
        session.execute(insert(Report), reports)
        session.execute(insert(CaseEvent), events)
        if progress is not None:
            progress(len(batch), len(new))
    return linked


def _new_case(
    case: _Case,
    sequence: int,
    member: Any,
    earlier: int,
    queue: Queue,
    secrets: ServerSecrets,
    settings: intake.IntakeSettings,
    now: datetime,
) -> dict[str, Any]:
    """The reports row of one imported case, sealed with intake's own functions, as column values."""
    received_at = case.received_at
    finalised_at = datetime.combine(case.finalised_on, time.min) if case.finalised_on else None
    update_from = received_at if finalised_at is not None else now
    row = new_cases.new_case_row(
        reference=new_cases.format_reference(case.received_on.year, sequence),
        legacy_reference=case.reference,
        source="import",
        received_at=received_at,
        mode=IMPORTED_MODE,
        category=case.category,
        state="closed" if finalised_at is not None else "assessment",
        queue_id=queue.id,
        routing_reasons=[IMPORTED_REASON],
        iopc_flags=[],
        subject_command=case.command or (member.command if member is not None else None),
        subject_rank_band=member.rank_band if member is not None else None,
        subject_ethnicity=member.ethnicity if member is not None else None,
        subject_probationer=member.probationer if member is not None else None,
        subject_staff_index=case.staff_index,
        subject_name_index=case.name_index,
        earlier_concerns=earlier,
        acknowledge_due_at=received_at + timedelta(days=settings.acknowledge_within_days),
        acknowledged_at=received_at,
        next_update_due_at=update_from + timedelta(days=settings.update_every_days),
        finalised_at=finalised_at,
        severity=case.severity,
        finding=case.finding,
        sanction=case.sanction,
        reg13=case.reg13,
    )
    content = {
        "summary": case.summary,
        "details": IMPORTED_DETAILS,
        "subject_name": case.name,
        "subject_staff_number": case.staff_number,
    }
    new_cases.seal_row(row, content, queue, secrets.recovery_public_key, generation=queue.key_generation)
    return row


__all__ = [
    "CASE_COLUMNS",
    "ETHNICITY_GROUPS",
    "RANK_BANDS",
    "WORKFORCE_COLUMNS",
    "CasesImport",
    "ImportProblem",
    "WorkforceImport",
    "import_cases",
    "import_workforce",
    "workforce_for",
]
