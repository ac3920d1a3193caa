"""A person's history in one place (issue 18 step 5): every concern about the subject of a case, across every queue
and the imported history, for a supervisor or DPS (portal.access.may_see_subject decides).

The person is never named, in the URL or anywhere else here: they are "the subject of case X", found by the blind
index the case holds (patterns.subject_condition: the staff number's, else the name's, a weaker match). Each
concern is shown from clear metadata only (reference, dates, category, queue, stage, severity, finding,
sanction); its summary is opened only where the viewer holds the case's key (a member of its queue with no
conflict on it), and each such opening is on record (access.record_openings), as on a queue page. The page
itself is on record too ("view-subject"). Cases the viewer has a conflict on are left out, as everywhere.

One indexed statement: the subject's index (ix_reports_subject_outcome starts with the staff number's,
reports.subject_name_index has its own), whatever the number of cases.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import access, sealing
from portal.core import crypto
from portal.domain import patterns
from portal.sealing import queue_keys
from portal.storage import audit
from portal.storage.models import Officer, Report, utcnow


@dataclass(frozen=True)
class Concern:
    reference: str
    received_at: datetime
    finalised_at: datetime | None
    category: str
    queue_code: str
    state: str
    severity: str | None
    finding: str | None
    sanction: str | None
    imported: bool
    readable: bool  # the viewer holds the case's key: it links to the case page
    summary: str | None  # opened only when readable


@dataclass(frozen=True)
class History:
    anchor: str  # the reference the page was reached from
    named: bool  # the case names someone (a staff number or a name)
    by_name_only: bool  # no staff number: linked by name, a weaker match
    concerns: list[Concern]
    thresholds: list[str]  # early-intervention thresholds the whole history meets (patterns.thresholds_met)


def subject_cases(session: Session, anchor: Report, who: access.Identity) -> list[Report]:
    """Every case (not held) about the subject of `anchor` that the viewer has no conflict on, oldest first.
    The anchor alone when it names nobody. No ORDER BY in SQL: the planner keeps to the blind index."""
    condition = patterns.subject_condition(anchor.subject_staff_index, anchor.subject_name_index)
    if condition is None:
        return [anchor]
    rows = session.scalars(select(Report).where(condition, Report.held.is_(False), access.not_conflicted(who))).all()
    return sorted(rows, key=lambda report: (report.received_at, report.reference))


def history(
    session: Session,
    anchor: Report,
    who: access.Identity,
    officer: Officer,
    private_key: bytes,
    now: datetime | None = None,
) -> History:
    """The subject's history as the viewer may see it, with the openings and the view on record (the caller
    commits). The caller has asked access.may_see_subject first."""
    now = now or utcnow()
    cases = subject_cases(session, anchor, who)
    member_ids = queue_keys.member_queue_ids(session, who.officer_id)
    readable = [report for report in cases if report.queue_id in member_ids]
    summaries = _open_summaries(session, officer, private_key, readable)
    concerns = [
        Concern(
            report.reference,
            report.received_at,
            report.finalised_at,
            report.category,
            report.queue.code,
            report.state,
            report.severity,
            report.finding,
            report.sanction,
            report.source == "import",
            report.id in summaries,
            summaries.get(report.id),
        )
        for report in cases
    ]
    audit.record(
        session,
        "view-subject",
        officer_id=who.officer_id,
        report_id=anchor.id,
        queue_code=anchor.queue.code,
        detail={"concerns": len(concerns), "summaries": len(summaries)},
    )
    named = anchor.subject_staff_index is not None or anchor.subject_name_index is not None
    return History(
        anchor.reference,
        named,
        named and anchor.subject_staff_index is None,
        concerns,
        patterns.thresholds_met(concerns, now, patterns.load_rules(session)) if named else [],
    )


def _open_summaries(session: Session, officer: Officer, private_key: bytes, reports: list[Report]) -> dict[str, str]:
    """The summary of each case the viewer holds the key of: each queue's key opened once per generation, each
    opening on record as on a queue page. A case whose key does not open (a grant gone stale) shows none."""
    by_queue: dict[int, list[Report]] = defaultdict(list)
    for report in reports:
        by_queue[report.queue_id].append(report)
    shown: dict[str, str] = {}
    for group in by_queue.values():
        queue = group[0].queue
        keys: dict[int, bytes] = {}
        opened = []
        for report in group:
            try:
                if report.queue_key_generation not in keys:
                    keys[report.queue_key_generation] = queue_keys.open_queue_key(
                        session, officer, private_key, queue, report.queue_key_generation
                    )
                dek = sealing.open_wrapped(keys[report.queue_key_generation], report.dek_for_queue, report.id)
            except (queue_keys.AccessDenied, crypto.DecryptionError):
                continue
            shown[report.id] = sealing.open_text(dek, report, "summary") or ""
            opened.append(report)
        if opened:
            access.record_openings(session, "view-summary", officer.id, opened, queue.code)
    return shown
