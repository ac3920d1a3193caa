"""Importing CSV files: the workforce directory, and historical cases from a legacy system.

Plain functions over a SQLAlchemy session, the server's secrets and a CSV source (a text stream, a
binary stream, or a path); nothing here knows about Flask requests. File formats: shared/SPEC.md.

Both imports are all-or-nothing. Every row is checked first; if any row is bad, `ImportProblem` is
raised listing every bad row as "line N: reason" (the header is line 1) and nothing has been written.
Otherwise the rows are written and one audit entry (action "import") is recorded in the caller's
transaction: the caller commits (or rolls back on any other error, so again nothing is kept).

What is stored follows shared/DESIGN.md ("what stays in clear"):
- the workforce directory holds blind indexes of staff numbers and names (never the numbers or names)
  with command, rank band, ethnicity group, probationer flag and joining date;
- an imported case is sealed exactly like a new report: its own data key, the summary, subject name and
  staff number sealed under it, the key wrapped to the DPS queue and to the recovery key. Only codes,
  dates, the legacy reference and blind indexes are in clear. It has no receipt (nobody can follow a
  legacy case from the reporter's side).
"""

from __future__ import annotations

import bisect
import csv
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import IO, Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from . import audit, crypto, intake, sealing
from .casework import FINDINGS, SANCTIONS, SEVERITIES
from .models import CaseEvent, Command, Queue, ReferenceCounter, Report, WorkforceMember, new_id, utcnow
from .routing import CATEGORIES, DPS
from .secrets import ServerSecrets

# shared/SPEC.md, "Codes".
RANK_BANDS = ("constable", "sergeant", "inspector", "chief-inspector", "superintendent", "chief-officer", "staff")
ETHNICITY_GROUPS = ("White", "Black", "Asian", "Mixed", "Other", "Not stated")

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
BATCH = 1000  # rows written per flush
_IN_CHUNK = 500  # values per IN (...) when looking rows up
_LEGACY_REFERENCE_MAX = Report.__table__.c.legacy_reference.type.length
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ETHNICITY_BY_FOLDED = {group.casefold(): group for group in ETHNICITY_GROUPS}
_BOOLEANS = {"true": True, "false": False}

Source = IO[str] | IO[bytes] | str | os.PathLike[str]
Progress = Callable[[int, int], None]  # (rows just written, rows to write in all)


class ImportProblem(ValueError):
    """The file has bad rows (or no usable header); nothing was imported.

    `problems` lists every one as "line N: reason", in line order.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        shown = "; ".join(self.problems[:3]) + (f"; and {count - 3} more" if count > 3 else "")
        super().__init__(f"{count} problem{'s' if count != 1 else ''}: {shown}")


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


# ---------------------------------------------------------------- reading CSV


@contextmanager
def _text(source: Source) -> Iterator[IO[str]]:
    """A text stream over the source: UTF-8 (a byte-order mark is dropped), newlines left to csv."""
    if isinstance(source, str | os.PathLike):
        with open(source, encoding="utf-8-sig", newline="") as handle:
            yield handle
    elif isinstance(source, io.TextIOBase):
        yield source  # type: ignore[misc]
    else:
        wrapper = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]
        try:
            yield wrapper
        finally:
            wrapper.detach()  # leave the caller's stream open


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, reasons: str | list[str]) -> None:
        text = reasons if isinstance(reasons, str) else "; ".join(reasons)
        self.items.append((line, f"line {line}: {text}"))

    def raise_if_any(self) -> None:
        if self.items:
            raise ImportProblem([text for _, text in sorted(self.items, key=lambda item: item[0])])


def _read(source: Source, columns: Sequence[str], problems: _Problems) -> list[tuple[int, dict[str, str]]]:
    """The data rows as (line number, {column: stripped value}); bad header or unreadable text raise at once.

    Columns may come in any order; every one of `columns` must be there and no other. Empty lines are
    skipped. A row with the wrong number of fields is a problem. Line numbers count physical lines, so a
    quoted value spanning lines still reports where its row starts.
    """
    rows: list[tuple[int, dict[str, str]]] = []
    with _text(source) as text:
        reader = csv.reader(text, strict=True)
        previous = 0
        try:
            header = next(reader, None)
            if header is None:
                raise ImportProblem([f"line 1: the file is empty; the first line must be: {','.join(columns)}"])
            names = [name.strip().lstrip("\ufeff").strip().lower() for name in header]
            missing = [c for c in columns if c not in names]
            unknown = [n for n in names if n not in columns]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if missing or unknown or repeated:
                parts = []
                if missing:
                    parts.append("missing column(s) " + ", ".join(missing))
                if unknown:
                    parts.append("unknown column(s) " + ", ".join(repr(n) for n in unknown))
                if repeated:
                    parts.append("repeated column(s) " + ", ".join(repeated))
                raise ImportProblem([f"line 1: {'; '.join(parts)}; the first line must be: {','.join(columns)}"])
            previous = reader.line_num
            for cells in reader:
                line = previous + 1
                previous = reader.line_num
                if not cells:
                    continue
                if len(cells) != len(names):
                    problems.add(line, f"expected {len(names)} fields, found {len(cells)}")
                    continue
                rows.append((line, {name: value.strip() for name, value in zip(names, cells, strict=True)}))
        except UnicodeDecodeError:
            problems.add(previous + 1, "the file is not UTF-8 text; save it as CSV (UTF-8) and try again")
            problems.raise_if_any()
        except csv.Error as exc:
            problems.add(previous + 1, f"not readable as CSV ({exc})")
            problems.raise_if_any()
    return rows


def _parse_date(value: str, what: str, reasons: list[str]) -> date | None:
    if not _DATE.match(value):
        reasons.append(f"{what} must be a date written YYYY-MM-DD, not {value!r}" if value else f"{what} is missing")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        reasons.append(f"{what} {value!r} is not a real date")
        return None


def _parse_bool(value: str, what: str, reasons: list[str], *, empty: bool | None = None) -> bool:
    folded = value.lower()
    if folded in _BOOLEANS:
        return _BOOLEANS[folded]
    if not folded and empty is not None:
        return empty
    reasons.append(f"{what} must be true or false, not {value!r}")
    return False


def _code(value: str, known: Iterable[str], what: str, reasons: list[str], *, optional: bool = False) -> str | None:
    code = value.lower()
    if not code and optional:
        return None
    if code in known:
        return code
    reasons.append(f"unknown {what} {value!r}" if value else f"{what} is missing")
    return None


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _known_commands(session: Session) -> set[str]:
    return set(session.scalars(select(Command.code)))


def _command(value: str, commands: set[str], reasons: list[str], *, optional: bool) -> str | None:
    code = value.upper()
    if not code and optional:
        return None
    if code in commands:
        return code
    reasons.append(f"unknown command {value!r}" if value else "command is missing")
    return None


# ---------------------------------------------------------------- the workforce directory


def workforce_for(session: Session, staff_index: bytes | None) -> WorkforceMember | None:
    """The directory entry for a staff number's blind index (crypto.staff_number_index), if there is one."""
    if staff_index is None:
        return None
    return session.scalar(select(WorkforceMember).where(WorkforceMember.staff_number_index == staff_index))


_MEMBER_FIELDS = ("name_index", "command", "rank_band", "ethnicity", "probationer", "joined_on")


def import_workforce(
    session: Session,
    stream: Source,
    blind_index_key: bytes,
    *,
    officer_id: int | None = None,
    now: datetime | None = None,
) -> WorkforceImport:
    """Load or refresh the workforce directory from workforce.csv (all or nothing; the caller commits).

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
    problems = _Problems()
    rows = _read(stream, WORKFORCE_COLUMNS, problems)
    commands = _known_commands(session)
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
        command = _command(cells["command"], commands, reasons, optional=False)
        rank = _code(cells["rank"], RANK_BANDS, "rank", reasons)
        ethnicity = _ETHNICITY_BY_FOLDED.get(" ".join(cells["ethnicity"].split()).casefold())
        if ethnicity is None:
            reasons.append(
                f"unknown ethnicity group {cells['ethnicity']!r} (one of {', '.join(ETHNICITY_GROUPS)})"
                if cells["ethnicity"]
                else "ethnicity is missing (use 'Not stated' when it is not known)"
            )
        probationer = _parse_bool(cells["probationer"], "probationer", reasons)
        joined_on = _parse_date(cells["joined_on"], "joined_on", reasons) if cells["joined_on"] else None
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
    problems.raise_if_any()

    existing: dict[bytes, Any] = {}
    indexes = list(members)
    for chunk in _chunks(indexes):
        for row in session.execute(
            select(WorkforceMember.id, WorkforceMember.staff_number_index, *_member_columns()).where(
                WorkforceMember.staff_number_index.in_(chunk)
            )
        ):
            existing[bytes(row.staff_number_index)] = row
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged = 0
    for staff_index, values in members.items():
        row = existing.get(staff_index)
        if row is None:
            inserts.append({"staff_number_index": staff_index, **values, "updated_at": now})
        elif all(_same(getattr(row, name), values[name]) for name in _MEMBER_FIELDS):
            unchanged += 1
        else:
            updates.append({"id": row.id, **values, "updated_at": now})
    for chunk in _chunks(inserts, BATCH):
        session.execute(insert(WorkforceMember), list(chunk))
    for chunk in _chunks(updates, BATCH):
        session.execute(update(WorkforceMember), list(chunk))
    summary = WorkforceImport(rows=len(rows), created=len(inserts), updated=len(updates), unchanged=unchanged)
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


def _member_columns() -> list[Any]:
    return [getattr(WorkforceMember, name) for name in _MEMBER_FIELDS]


def _same(stored: Any, new: Any) -> bool:
    if isinstance(stored, memoryview):
        stored = bytes(stored)
    return stored == new


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
    received_on = _parse_date(cells["received_on"], "received_on", reasons)
    finalised_on = _parse_date(cells["finalised_on"], "finalised_on", reasons) if cells["finalised_on"] else None
    if received_on and received_on > today:
        reasons.append(f"received_on {received_on.isoformat()} is in the future")
    if finalised_on and finalised_on > today:
        reasons.append(f"finalised_on {finalised_on.isoformat()} is in the future")
    if received_on and finalised_on and finalised_on < received_on:
        reasons.append("finalised_on is before received_on")
    category = _code(cells["category"], CATEGORIES, "category", reasons)
    command = _command(cells["command"], commands, reasons, optional=True)
    severity = _code(cells["severity"], SEVERITIES, "severity", reasons, optional=True)
    finding = _code(cells["finding"], FINDINGS, "finding", reasons, optional=True)
    sanction = _code(cells["sanction"], SANCTIONS, "sanction", reasons, optional=True)
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
    reg13 = _parse_bool(cells["reg13"], "reg13", reasons, empty=False)
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
    for chunk in _chunks(references):
        found.update(session.scalars(select(Report.legacy_reference).where(Report.legacy_reference.in_(chunk))))
    return found


def _directory(session: Session, staff_indexes: list[bytes]) -> dict[bytes, Any]:
    found: dict[bytes, Any] = {}
    for chunk in _chunks(staff_indexes):
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
    for chunk in _chunks(indexes):
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


def _reserve_references(session: Session, year: int, count: int) -> int:
    """Take `count` consecutive sequence numbers of the year in one go; returns the first.

    intake.next_reference takes the first (creating the year's counter if need be) and row-locks the
    counter until the transaction ends, so the rest of the block cannot interleave with anyone else's.
    """
    first = int(intake.next_reference(session, year).rsplit("-", 1)[1])
    if count > 1:
        last = session.execute(
            update(ReferenceCounter)
            .where(ReferenceCounter.year == year)
            .values(last=ReferenceCounter.last + (count - 1))
            .returning(ReferenceCounter.last)
        ).scalar_one()
        if last != first + count - 1:  # pragma: no cover - the lock makes this impossible
            raise RuntimeError("case references were taken by someone else during the import")
    return first


def import_cases(
    session: Session,
    stream: Source,
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
    problems = _Problems()
    rows = _read(stream, CASE_COLUMNS, problems)
    commands = _known_commands(session)
    today = now.date()
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
    problems.raise_if_any()

    done = _already_imported(session, [c.reference for c in cases])
    new = sorted((c for c in cases if c.reference not in done), key=lambda c: (c.received_on, c.line))
    queue = session.scalar(select(Queue).where(Queue.code == DPS))
    if queue is None:
        raise ImportProblem(["the DPS queue does not exist: run `flask portal init` first"])
    directory = _directory(session, sorted({c.staff_index for c in new if c.staff_index is not None}))
    earlier = _EarlierConcerns(session, new)

    numbers: dict[int, int] = {}
    for year in sorted({c.received_on.year for c in new}):
        numbers[year] = _reserve_references(session, year, sum(1 for c in new if c.received_on.year == year))

    linked = finalised = 0
    for batch in _chunks(new, BATCH):
        reports: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for case in batch:
            member = directory.get(case.staff_index) if case.staff_index is not None else None
            linked += member is not None
            finalised += case.finalised_on is not None
            sequence = numbers[case.received_on.year]
            numbers[case.received_on.year] += 1
            report = _new_case(case, sequence, member, earlier.count(case), queue, secrets, settings, now)
            reports.append(report)
            events.append(
                {"report_id": report["id"], "at": report["received_at"], "kind": "received", "state": "received"}
            )
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

    summary = CasesImport(
        rows=len(rows),
        imported=len(new),
        already_imported=len(cases) - len(new),
        linked_to_workforce=linked,
        finalised=finalised,
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
    # sealing.seal_new_case reads `id` and sets the sealed columns on what it is
    # given; a namespace stands in for the ORM object so that thousands of rows insert in one statement.
    row = SimpleNamespace(
        id=new_id(),
        reference=intake.format_reference(case.received_on.year, sequence),
        legacy_reference=case.reference,
        source="import",
        received_at=received_at,
        mode=IMPORTED_MODE,
        category=case.category,
        state="closed" if finalised_at is not None else "assessment",
        queue_id=queue.id,
        routing_reasons=[IMPORTED_REASON],
        iopc_flags=[],
        iopc_flagged=False,
        fear_of_reprisal=False,
        reporter_wants_email=False,
        subject_command=case.command or (member.command if member is not None else None),
        subject_rank_band=member.rank_band if member is not None else None,
        subject_ethnicity=member.ethnicity if member is not None else None,
        subject_probationer=member.probationer if member is not None else None,
        subject_staff_index=case.staff_index,
        subject_name_index=case.name_index,
        earlier_concerns=earlier,
        pattern_flags=[],
        held=False,
        acknowledge_due_at=received_at + timedelta(days=settings.acknowledge_within_days),
        acknowledged_at=received_at,
        next_update_due_at=update_from + timedelta(days=settings.update_every_days),
        finalised_at=finalised_at,
        severity=case.severity,
        finding=case.finding,
        sanction=case.sanction,
        reg13=case.reg13,
        receipt_index=None,
        dek_for_receipt=None,
    )
    sealing.seal_new_case(
        row,  # type: ignore[arg-type]
        {
            "summary": case.summary,
            "details": IMPORTED_DETAILS,
            "subject_name": case.name,
            "subject_staff_number": case.staff_number,
        },
        queue,
        secrets.recovery_public_key,
        generation=queue.key_generation,
    )
    return vars(row)


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
