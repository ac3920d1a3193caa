"""Running totals of the all-time oversight figures, kept by the database itself (migration 0009).

The all-time figures without a command filter (what `flask portal stats --json` prints and what the dashboard
shows first) add up every case ever received. Reading a million cases takes seconds; these tables hold the
sums, and triggers keep them in the transaction of every change to a report or to the workforce directory,
whatever made it (the portal, an importer, SQL typed by hand). portal.oversight.stats reads them for those figures and
works everything else (a period, a command) out from the cases as before. What the totals hold:

- `figures_case_counts`: cases by (category, state, subject command, source, finding) and four yes/no facts
  (finalised date set, gross misconduct, dismissal, Regulation 13). A ledger: each change appends -1 for the
  row's old values and +1 for its new ones. Nothing is updated in place, so concurrent writers never wait on a
  shared counter row or deadlock over two of them. Readers add it up; when it has grown well past one row per
  key, a reader folds it back (`_compact`).
- `figures_day_counts`: finalised cases by days to finalise, the same kind of ledger.
- `figures_subjects`: per person (blind index of the staff number, else of the name): cases, dismissals,
  Regulation 13 cases, finalised and upheld cases, and what the directory says of the person now. A row is
  updated in place and so locked by the transaction changing that person's cases: "two or more cases" stays
  exact when two reports about the same person arrive at once.
- `figures_subject_groups` (migration 0023, portal.oversight.figures_models): those per-person rows added up by
  what the directory says of the person, a ledger kept by triggers on `figures_subjects`, so that a reader adds up
  a row per group, not one per person (711,000 at a million cases).

The quarterly trends and the end-to-end fairness figures have totals of their own (migration 0021,
portal.oversight.trend_rollups), kept and trusted together with these: `rebuild` works both out.

What the figures need and the totals cannot hold is read live, from indexes: the open cases received over a
year before today (today moves without any change to the data) and the first and last dates received.

`figures_rollup_state.valid` false means "not to be trusted": after migration 0009 on a database that already
had cases (`flask portal init` then rebuilds them), or after the state row was deleted by hand. The triggers
then do nothing, and the next reader rebuilds the totals first. A bulk load (portal.demo) turns the triggers off
for its transaction and rebuilds the totals in one pass at its end (portal.storage.bulk), as one builds an index after a
load. On PostgreSQL the report triggers hold an advisory lock (LOCK_KEY) in shared mode, and directory triggers
and rebuilds hold it exclusively, with the totals tables in EXCLUSIVE mode for a rebuild: writers finish first
or wait, so no change is counted twice or lost, and a new member and a new case about them never miss each other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, and_, case, cast, delete, func, insert, literal_column, or_, select, text, union_all
from sqlalchemy.orm import Session

from portal.oversight import definitions as d
from portal.oversight import trend_rollups
from portal.oversight.definitions import CaseGroup, SubjectGroup
from portal.oversight.figures_models import FiguresSubjectGroup
from portal.storage.models import (
    FiguresCaseCount,
    FiguresDayCount,
    FiguresRollupState,
    FiguresSubject,
    Report,
    WorkforceMember,
)

CASE_KEYS = ("category", "state", "subject_command", "source", "finding", "dated", "gross", "dismissal", "reg13")
# PostgreSQL's advisory lock of the running totals (migration 0009's LOCK_KEY): shared by the report triggers,
# exclusive for directory triggers and rebuilds. Held to the end of the transaction.
LOCK_KEY = 7_310_593_858_020_210_009
# Fold a ledger back when it holds more than this many rows per key it adds up to, plus a margin.
COMPACT_RATIO = 3
COMPACT_MARGIN = 1000


def is_valid(session: Session) -> bool:
    return bool(session.scalar(select(FiguresRollupState.valid).where(FiguresRollupState.id == 1)))


def invalidate(session: Session) -> None:
    """Mark the totals as not to be trusted (the caller's transaction): the triggers stop keeping them, and the
    next reader rebuilds them. For repairs by hand; a bulk load uses portal.storage.bulk."""
    session.execute(text("UPDATE figures_rollup_state SET valid = false WHERE id = 1"))


def ensure(session: Session) -> bool:
    """Rebuild the totals if they are not trusted. True if this call rebuilt them (the caller commits)."""
    if is_valid(session):
        return False
    if session.get_bind().dialect.name == "postgresql":
        # Another reader may have rebuilt them while this one waited for the lock: then nothing to do.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        if is_valid(session):
            return False
    rebuild(session)
    return True


def rebuild(session: Session) -> None:
    """Work every total out afresh from the cases and the directory, in the caller's transaction."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        tables = (
            f"figures_case_counts, figures_day_counts, figures_subjects, figures_subject_groups, {trend_rollups.TABLES}"
        )
        session.execute(text(f"LOCK TABLE {tables} IN EXCLUSIVE MODE"))
    # Not to be trusted while rebuilt: the triggers of the totals' own tables (migration 0021) then add nothing.
    session.execute(text("UPDATE figures_rollup_state SET valid = false WHERE id = 1"))
    for model in (FiguresCaseCount, FiguresDayCount, FiguresSubject):
        session.execute(delete(model))
    trend_rollups.rebuild(session, dialect)
    counted = d.is_case()
    facts = (
        d.has_finalised_date(),
        Report.severity.is_not_distinct_from("gross-misconduct"),
        Report.sanction.is_not_distinct_from("dismissal"),
        Report.reg13.is_(True),
    )
    keys = (Report.category, Report.state, Report.subject_command, Report.source, Report.finding, *facts)
    session.execute(
        insert(FiguresCaseCount).from_select(
            [*CASE_KEYS, "n"], select(*keys, func.count()).where(counted).group_by(*keys)
        )
    )
    days = d.days_to_finalise(dialect)
    session.execute(
        insert(FiguresDayCount).from_select(
            ["days", "n"], select(days, func.count()).where(counted, d.has_finalised_date()).group_by(days)
        )
    )
    _rebuild_subjects(session, counted)
    _rebuild_subject_groups(session)
    if session.execute(text("UPDATE figures_rollup_state SET valid = true WHERE id = 1")).rowcount == 0:
        session.add(FiguresRollupState(id=1, valid=True))  # its row was deleted by hand: the triggers need it
        session.flush()


def _rebuild_subjects(session: Session, counted: Any) -> None:
    """figures_subjects afresh: a row per person (staff number, else name), with what the directory says of them."""
    finalised, upheld = d.finalised(), d.upheld()

    def tallies(kind: str, key: Any, *where: Any) -> Any:
        return (
            select(
                literal_column(f"'{kind}'").label("kind"),
                key.label("key"),
                func.count().label("cases"),
                func.count().filter(Report.sanction == "dismissal").label("dismissed"),
                func.count().filter(Report.reg13.is_(True)).label("reg13"),
                func.count().filter(finalised).label("finalised"),
                func.count().filter(upheld).label("upheld"),
            )
            .where(counted, *where)
            .group_by(key)
        )

    people = union_all(
        tallies("s", Report.subject_staff_index, Report.subject_staff_index.is_not(None)),
        tallies(
            "n", Report.subject_name_index, Report.subject_staff_index.is_(None), Report.subject_name_index.is_not(None)
        ),
    ).subquery()
    member = WorkforceMember
    session.execute(
        insert(FiguresSubject).from_select(
            ["kind", "key", "cases", "dismissed", "reg13", "finalised", "upheld"]
            + ["ethnicity", "probationer", "member_command"],
            select(
                people.c.kind,
                people.c.key,
                people.c.cases,
                people.c.dismissed,
                people.c.reg13,
                people.c.finalised,
                people.c.upheld,
                member.ethnicity,
                member.probationer,
                member.command,
            )
            .select_from(people)
            .outerjoin(member, and_(people.c.kind == "s", member.staff_number_index == people.c.key)),
        )
    )


def _rebuild_subject_groups(session: Session) -> None:
    """figures_subject_groups afresh from figures_subjects (as migration 0023's triggers add each row)."""
    s = FiguresSubject

    def people(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    session.execute(delete(FiguresSubjectGroup))
    keys = (s.ethnicity, s.probationer, s.member_command)
    sums = (
        people(s.cases > 0),
        people(s.cases >= 2),
        people(and_(s.cases >= 2, s.dismissed > 0)),
        func.sum(s.cases),
        people(s.reg13 > 0),
        func.sum(s.finalised),
        func.sum(s.upheld),
        people(s.finalised > 0),
        people(s.upheld > 0),
    )
    session.execute(
        insert(FiguresSubjectGroup).from_select(
            [*SUBJECT_GROUP_KEYS, *SubjectGroup._fields[len(SUBJECT_GROUP_KEYS) :]],
            select(*keys, *sums).group_by(*keys),
        )
    )


def _compact(session: Session, model: Any, keys: tuple[str, ...], values: tuple[str, ...] = ("n",)) -> None:
    """Fold a ledger to one row per key (rows that add up to nothing go). Safe beside concurrent writers: on
    PostgreSQL one statement moves exactly the rows it saw; SQLite has one writer at a time and the
    statements below run under its write lock, on the rows up to an id read first."""
    columns = [getattr(model, name) for name in keys]
    if session.get_bind().dialect.name == "postgresql":
        moved = delete(model).returning(*columns, *(getattr(model, name) for name in values)).cte("moved")
        source = moved.c
        where: list[Any] = []
    else:
        last = session.scalar(select(func.max(model.id)))
        if last is None:
            return
        source, where = model.__table__.c, [model.id <= last]
    grouped = [source[name] for name in keys]
    sums = [func.sum(source[name]) for name in values]
    folded = select(*grouped, *sums).where(*where).group_by(*grouped).having(or_(*(total != 0 for total in sums)))
    session.execute(insert(model).from_select([*keys, *values], folded))
    if where:
        session.execute(delete(model).where(*where))


def maybe_compact(
    session: Session,
    model: Any,
    keys: tuple[str, ...],
    ledger_rows: int,
    distinct: int,
    values: tuple[str, ...] = ("n",),
) -> None:
    """Fold a ledger of `ledger_rows` rows adding up to `distinct` keys back, if it has grown well past them."""
    if ledger_rows > COMPACT_RATIO * distinct + COMPACT_MARGIN:
        _compact(session, model, keys, values)


def case_groups(session: Session) -> list[CaseGroup]:
    """The all-time case counts as stats' grouped pass gives them, with what the totals cannot hold (open over
    a year, first and last received) as 0 and None: the caller reads those live."""
    c = FiguresCaseCount

    def total(*conditions: Any) -> Any:
        return func.sum(c.n).filter(and_(*conditions)) if conditions else func.sum(c.n)

    dismissal, reg13, dated, gross = c.dismissal.is_(True), c.reg13.is_(True), c.dated.is_(True), c.gross.is_(True)
    bit = [cast(column, Integer) for column in (c.dated, c.gross, c.dismissal, c.reg13)]
    flags = bit[0] * 8 + bit[1] * 4 + bit[2] * 2 + bit[3]
    keys = (c.category, c.state, c.subject_command, c.source, c.finding)
    rows = session.execute(
        select(
            *keys,
            total().label("cases"),
            total(dated).label("dated"),
            total(gross).label("gross"),
            total(gross, dismissal).label("gross_dismissed"),
            total(reg13).label("reg13"),
            total(reg13, dismissal).label("reg13_dismissed"),
            total(reg13, dated).label("reg13_dated"),
            total(reg13, dismissal, dated).label("reg13_dated_dismissed"),
            func.count().label("ledger_rows"),  # ledger rows behind the group
            func.count(func.distinct(flags)).label("ledger_keys"),  # the ledger keys it adds up
        )
        .group_by(*keys)
        .having(func.sum(c.n) != 0)
    ).all()
    maybe_compact(session, c, CASE_KEYS, sum(row.ledger_rows for row in rows), sum(row.ledger_keys for row in rows))
    counts = ("cases", "dated", "gross", "gross_dismissed", "reg13", "reg13_dismissed", "reg13_dated")
    return [
        CaseGroup(
            *(row[:5]),
            **{name: int(getattr(row, name) or 0) for name in (*counts, "reg13_dated_dismissed")},
            open_old=0,
            first_received=None,
            last_received=None,
        )
        for row in rows
    ]


def day_rows(session: Session) -> list[tuple[int, int]]:
    """Finalised cases by days to finalise, all time, in order of days."""
    d = FiguresDayCount
    rows = session.execute(
        select(d.days, func.sum(d.n), func.count()).group_by(d.days).having(func.sum(d.n) != 0).order_by(d.days)
    ).all()
    maybe_compact(session, d, ("days",), sum(row[2] for row in rows), len(rows))
    return [(int(days), int(n)) for days, n, _rows in rows]


SUBJECT_GROUP_KEYS = ("ethnicity", "probationer", "member_command")


def subject_groups(session: Session) -> list[SubjectGroup]:
    """Per-person figures by what the directory says of the person, as stats' per-subject pass gives them: the
    ledger figures_subject_groups added up (migration 0023), one row per group, not one per person."""
    g = FiguresSubjectGroup
    values = SubjectGroup._fields[len(SUBJECT_GROUP_KEYS) :]
    keys = [getattr(g, name) for name in SUBJECT_GROUP_KEYS]
    sums = [func.sum(getattr(g, name)) for name in values]
    rows = session.execute(
        select(*keys, *sums, func.count()).group_by(*keys).having(or_(*(total != 0 for total in sums)))
    ).all()
    maybe_compact(session, g, SUBJECT_GROUP_KEYS, sum(row[-1] for row in rows), len(rows), values)
    return [SubjectGroup(*row[:3], *(int(value) for value in row[3:-1])) for row in rows]


def open_over(session: Session, cutoff: Any) -> int:
    """Open cases received before `cutoff` (read live: the cut-off moves with the date, not with the data)."""
    return int(session.scalar(select(func.count()).where(d.is_case(), d.is_open(), Report.received_at < cutoff)) or 0)


def received_range(session: Session) -> tuple[Any, Any]:
    """The first and last dates received of any case (two index look-ups)."""
    first = session.scalar(select(func.min(Report.received_at)).where(d.is_case()))
    last = session.scalar(select(func.max(Report.received_at)).where(d.is_case()))
    return first, last


__all__ = ["case_groups", "day_rows", "ensure", "invalidate", "is_valid", "open_over", "rebuild", "subject_groups"]
