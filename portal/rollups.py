"""Running totals of the all-time oversight figures, kept by the database itself (migration 0009).

The all-time figures without a command filter (what `flask portal stats --json` prints and what the dashboard
shows first) add up every case ever received. Reading a million cases takes seconds; these tables hold the
sums, and triggers keep them in the transaction of every change to a report or to the workforce directory,
whatever made it (the portal, an importer, SQL typed by hand). portal.stats reads them for those figures and
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

What the figures need and the totals cannot hold is read live, from indexes: the open cases received over a
year before today (today moves without any change to the data) and the first and last dates received.

`figures_rollup_state.valid` false means "not to be trusted": after migration 0009 on a database that already
had cases (`flask portal init` then rebuilds them), or after the state row was deleted by hand. The triggers
then do nothing, and the next reader rebuilds the totals first. A bulk load (portal.seed) turns the triggers off
for its transaction and rebuilds the totals in one pass at its end (portal.bulk), as one builds an index after a
load. On PostgreSQL the report triggers hold an advisory lock (LOCK_KEY) in shared mode, and directory triggers
and rebuilds hold it exclusively, with the totals tables in EXCLUSIVE mode for a rebuild: writers finish first
or wait, so no change is counted twice or lost, and a new member and a new case about them never miss each other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, and_, case, cast, delete, func, insert, literal, literal_column, select, text, union_all
from sqlalchemy.orm import Session

from . import workflow
from .models import FiguresCaseCount, FiguresDayCount, FiguresRollupState, FiguresSubject, Report, WorkforceMember

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
    next reader rebuilds them. For repairs by hand; a bulk load uses portal.bulk."""
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
    from .stats import days_expression, finalised_condition  # stats reads these tables: imported at use

    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        session.execute(text("LOCK TABLE figures_case_counts, figures_day_counts, figures_subjects IN EXCLUSIVE MODE"))
    for model in (FiguresCaseCount, FiguresDayCount, FiguresSubject):
        session.execute(delete(model))
    counted = Report.held.is_not(True)
    facts = (
        Report.finalised_at.is_not(None),
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
    days = days_expression(dialect)
    session.execute(
        insert(FiguresDayCount).from_select(
            ["days", "n"],
            select(days, func.count()).where(counted, Report.finalised_at.is_not(None)).group_by(days),
        )
    )
    finalised = finalised_condition()
    upheld = and_(finalised, Report.finding == "case-to-answer")

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
    if session.execute(text("UPDATE figures_rollup_state SET valid = true WHERE id = 1")).rowcount == 0:
        session.add(FiguresRollupState(id=1, valid=True))  # its row was deleted by hand: the triggers need it
        session.flush()


def _compact(session: Session, model: Any, keys: tuple[str, ...]) -> None:
    """Fold a ledger to one row per key (rows that add up to nothing go). Safe beside concurrent writers: on
    PostgreSQL one statement moves exactly the rows it saw; SQLite has one writer at a time and the
    statements below run under its write lock, on the rows up to an id read first."""
    columns = [getattr(model, name) for name in keys]
    if session.get_bind().dialect.name == "postgresql":
        moved = delete(model).returning(*columns, model.n).cte("moved")
        source = moved.c
        where: list[Any] = []
    else:
        last = session.scalar(select(func.max(model.id)))
        if last is None:
            return
        source, where = model.__table__.c, [model.id <= last]
    grouped = [source[name] for name in keys]
    folded = select(*grouped, func.sum(source.n)).where(*where).group_by(*grouped).having(func.sum(source.n) != 0)
    session.execute(insert(model).from_select([*keys, "n"], folded))
    if where:
        session.execute(delete(model).where(*where))


def _maybe_compact(session: Session, model: Any, keys: tuple[str, ...], ledger_rows: int, distinct: int) -> None:
    if ledger_rows > COMPACT_RATIO * distinct + COMPACT_MARGIN:
        _compact(session, model, keys)


def case_rows(session: Session) -> list[tuple[Any, ...]]:
    """The all-time case counts in the shape of portal.stats' grouped pass (its columns 6-14), with the columns
    the totals cannot hold (open over a year, first and last received) as 0 and None: the caller reads those."""
    c = FiguresCaseCount

    def total(*conditions: Any) -> Any:
        return func.sum(c.n).filter(and_(*conditions)) if conditions else func.sum(c.n)

    dismissal, reg13, dated = c.dismissal.is_(True), c.reg13.is_(True), c.dated.is_(True)
    bit = [cast(column, Integer) for column in (c.dated, c.gross, c.dismissal, c.reg13)]
    flags = bit[0] * 8 + bit[1] * 4 + bit[2] * 2 + bit[3]
    rows = session.execute(
        select(
            c.category,
            c.state,
            c.subject_command,
            c.source,
            c.finding,
            total(),
            total(dated),
            literal(0, Integer),
            total(c.gross.is_(True)),
            total(c.gross.is_(True), dismissal),
            total(reg13),
            total(reg13, dismissal),
            total(reg13, dated),
            total(reg13, dismissal, dated),
            literal(None),
            literal(None),
            func.count(),  # ledger rows behind the group
            func.count(func.distinct(flags)),  # the ledger keys it adds up
        )
        .group_by(c.category, c.state, c.subject_command, c.source, c.finding)
        .having(func.sum(c.n) != 0)
    ).all()
    _maybe_compact(session, c, CASE_KEYS, sum(row[16] for row in rows), sum(row[17] for row in rows))
    return [tuple(row[:16]) for row in rows]


def day_rows(session: Session) -> list[tuple[int, int]]:
    """Finalised cases by days to finalise, all time, in order of days."""
    d = FiguresDayCount
    rows = session.execute(
        select(d.days, func.sum(d.n), func.count()).group_by(d.days).having(func.sum(d.n) != 0).order_by(d.days)
    ).all()
    _maybe_compact(session, d, ("days",), sum(row[2] for row in rows), len(rows))
    return [(int(days), int(n)) for days, n, _rows in rows]


def subject_rows(session: Session) -> list[tuple[Any, ...]]:
    """Per-person figures by what the directory says of the person, in the shape of portal.stats' per-subject
    pass: ethnicity, probationer, command, people, with two or more cases, of them dismissed, cases, with a
    Regulation 13 case, finalised, upheld, people with a finalised case, people with an upheld case."""
    s = FiguresSubject

    def people(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    return [
        tuple(row)
        for row in session.execute(
            select(
                s.ethnicity,
                s.probationer,
                s.member_command,
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
            .group_by(s.ethnicity, s.probationer, s.member_command)
            .with_hint(s, "INDEXED BY ix_figures_subjects_group", "sqlite")
        )
    ]


def open_over(session: Session, cutoff: Any) -> int:
    """Open cases received before `cutoff` (read live: the cut-off moves with the date, not with the data)."""
    return int(
        session.scalar(
            select(func.count()).where(
                Report.held.is_not(True),
                Report.finalised_at.is_(None),
                Report.state.not_in(workflow.FINAL_STATES),
                Report.received_at < cutoff,
            )
        )
        or 0
    )


def received_range(session: Session) -> tuple[Any, Any]:
    """The first and last dates received of any case (two index look-ups)."""
    counted = Report.held.is_not(True)
    first = session.scalar(select(func.min(Report.received_at)).where(counted))
    last = session.scalar(select(func.max(Report.received_at)).where(counted))
    return first, last


__all__ = ["case_rows", "day_rows", "ensure", "invalidate", "is_valid", "open_over", "rebuild", "subject_rows"]
