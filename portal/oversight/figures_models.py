"""The tables of the running totals behind the quarterly trends and the end-to-end fairness figures (migration
0021, kept by its triggers; portal.oversight.trend_rollups reads and rebuilds them). Beside portal.storage.models'
own figures tables, which they extend: only the oversight figures use them."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.storage.models import LEDGER_ID, db


class FiguresQuarterCase(db.Model):
    """A ledger of cases by quarter received, category, finding and outcome (migration 0021's triggers)."""

    __tablename__ = "figures_quarter_cases"
    id: Mapped[int] = mapped_column(LEDGER_ID, primary_key=True, autoincrement=True)
    quarter: Mapped[int] = mapped_column(Integer)  # year * 4 + quarter - 1
    category: Mapped[str] = mapped_column(String(32))
    case_to_answer: Mapped[bool] = mapped_column(Boolean)  # the finding (the two findings the trends read)
    no_case_to_answer: Mapped[bool] = mapped_column(Boolean)
    done: Mapped[bool] = mapped_column(Boolean)  # finalised
    gross: Mapped[bool] = mapped_column(Boolean)  # upheld, gross misconduct
    dismissed: Mapped[bool] = mapped_column(Boolean)  # upheld, sanction dismissal
    n: Mapped[int] = mapped_column(Integer)


class FiguresQuarterDay(db.Model):
    """A ledger of finalised cases with a date by quarter received and days to finalise."""

    __tablename__ = "figures_quarter_days"
    id: Mapped[int] = mapped_column(LEDGER_ID, primary_key=True, autoincrement=True)
    quarter: Mapped[int] = mapped_column(Integer)
    days: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)


class FiguresSubjectQuarter(db.Model):
    """One person's cases received in a quarter (quarter -1: all time), with the end-to-end tallies and what the
    directory says of the person now (migration 0021)."""

    __tablename__ = "figures_subject_quarters"
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    quarter: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    cases: Mapped[int] = mapped_column(Integer)
    any_dismissal: Mapped[int] = mapped_column(Integer)  # cases sanctioned dismissal
    finalised: Mapped[int] = mapped_column(Integer)
    upheld: Mapped[int] = mapped_column(Integer)
    gross: Mapped[int] = mapped_column(Integer)
    sanctioned: Mapped[int] = mapped_column(Integer)  # upheld, written warning or more
    dismissed: Mapped[int] = mapped_column(Integer)  # upheld, dismissal
    ethnicity: Mapped[str | None] = mapped_column(String(16))
    member_command: Mapped[str | None] = mapped_column(String(8))


class FiguresGroupCount(db.Model):
    """A ledger of the per-person rows above added up by quarter, ethnicity and command (migration 0021)."""

    __tablename__ = "figures_group_counts"
    id: Mapped[int] = mapped_column(LEDGER_ID, primary_key=True, autoincrement=True)
    quarter: Mapped[int] = mapped_column(Integer)
    ethnicity: Mapped[str | None] = mapped_column(String(16))
    member_command: Mapped[str | None] = mapped_column(String(8))
    people: Mapped[int] = mapped_column(Integer)
    repeat: Mapped[int] = mapped_column(Integer)
    repeat_dismissed: Mapped[int] = mapped_column(Integer)
    finalised: Mapped[int] = mapped_column(Integer)
    upheld: Mapped[int] = mapped_column(Integer)
    gross: Mapped[int] = mapped_column(Integer)
    sanctioned: Mapped[int] = mapped_column(Integer)
    dismissed: Mapped[int] = mapped_column(Integer)
    people_finalised: Mapped[int] = mapped_column(Integer)
    people_upheld: Mapped[int] = mapped_column(Integer)
    people_gross: Mapped[int] = mapped_column(Integer)
    people_sanctioned: Mapped[int] = mapped_column(Integer)
    people_dismissed: Mapped[int] = mapped_column(Integer)


class FiguresSubjectGroup(db.Model):
    """A ledger of figures_subjects' per-person rows added up by what the directory says of the person (NULLs: not
    in the directory), as portal.oversight.definitions.SubjectGroup counts them (migration 0023's triggers)."""

    __tablename__ = "figures_subject_groups"
    id: Mapped[int] = mapped_column(LEDGER_ID, primary_key=True, autoincrement=True)
    ethnicity: Mapped[str | None] = mapped_column(String(16))
    probationer: Mapped[bool | None] = mapped_column(Boolean)
    member_command: Mapped[str | None] = mapped_column(String(8))
    people: Mapped[int] = mapped_column(Integer)  # with a case
    with_2_or_more: Mapped[int] = mapped_column(Integer)
    with_2_or_more_dismissed: Mapped[int] = mapped_column(Integer)
    cases: Mapped[int] = mapped_column(Integer)
    with_reg13: Mapped[int] = mapped_column(Integer)
    finalised: Mapped[int] = mapped_column(Integer)
    upheld: Mapped[int] = mapped_column(Integer)
    people_finalised: Mapped[int] = mapped_column(Integer)
    people_upheld: Mapped[int] = mapped_column(Integer)


__all__ = [
    "FiguresGroupCount",
    "FiguresQuarterCase",
    "FiguresQuarterDay",
    "FiguresSubjectGroup",
    "FiguresSubjectQuarter",
]
