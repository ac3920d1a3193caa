"""The dashboard's tables: gathered once from portal.oversight.stats and .queries, small groups suppressed, then shown
as HTML, drawn as charts and exported as CSV. Suppression happens here, once, so no view can miss it.

A table holds raw values (ints, fractions, day counts, ratios, intervals); formatting depends on the
column's kind and on the output (a percentage on the page, a fraction in the CSV).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from portal.core import codes
from portal.core.routing import CATEGORIES
from portal.oversight import queries, stats
from portal.oversight.queries import InsightFilters

SUPPRESS_BELOW = 10  # a group with fewer people than this is not shown, so that nobody can be singled out
FEWER_THAN_10 = "fewer than 10"
NOT_SHOWN = "not shown"
SUPPRESSION_NOTE = (
    "Where a group has fewer than 10 people, its figures are not shown, so that nobody can be identified."
)


class Hidden:
    """A suppressed value: a count under 10, or a figure worked out from one."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


SUPPRESSED = Hidden(FEWER_THAN_10)
WITHHELD = Hidden(NOT_SHOWN)


@dataclass(frozen=True)
class Column:
    label: str
    # text, count, days, rate, ratio, interval; "relative": (relative rate, interval or None) in one cell;
    # "figure": each cell is a Figure
    kind: str = "count"


@dataclass(frozen=True)
class Figure:
    """A cell whose kind is its own, for tables of measures (one kind per row, not per column)."""

    value: Any
    kind: str


@dataclass
class Table:
    name: str  # the export's name: /insights/export/<name>.csv
    caption: str
    columns: list[Column]
    rows: list[list[Any]]
    note: str = ""
    suppressed_rows: set[int] = field(default_factory=set)

    def html_rows(self) -> Iterator[list[str]]:
        for row in self.rows:
            yield [format_html(value, column.kind) for value, column in zip(row, self.columns, strict=True)]

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        header: list[str] = []
        for column in self.columns:
            if column.kind == "interval":
                header += [f"{column.label} (low)", f"{column.label} (high)"]
            elif column.kind == "relative":
                header += [column.label, f"{column.label} (95% low)", f"{column.label} (95% high)"]
            else:
                header.append(column.label)
        writer.writerow([_csv_safe(text) for text in header])
        for row in self.rows:
            cells: list[str] = []
            for value, column in zip(row, self.columns, strict=True):
                cells += format_csv(value, column.kind)
            writer.writerow(cells)
        return out.getvalue()


def _kind(value: Any, kind: str) -> tuple[Any, str]:
    return (value.value, value.kind) if isinstance(value, Figure) else (value, kind)


def format_html(value: Any, kind: str) -> str:
    value, kind = _kind(value, kind)
    if isinstance(value, Hidden):
        return value.text
    if value is None:
        return "–"
    if kind == "count":
        return f"{value:,}"
    if kind == "days":
        return f"{value:,.0f} days" if value != 1 else "1 day"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "ratio":
        return f"{value:.2f}"
    if kind == "interval":
        return f"{value[0]:.2f} to {value[1]:.2f}"
    if kind == "relative":
        relative, interval = value
        return f"{relative:.2f}" + (f" ({interval[0]:.2f} to {interval[1]:.2f})" if interval else "")
    return str(value)


def format_csv(value: Any, kind: str) -> list[str]:
    value, kind = _kind(value, kind)
    width = {"interval": 2, "relative": 3}.get(kind, 1)
    if isinstance(value, Hidden):
        return [value.text] * width
    if value is None:
        return [""] * width
    if kind == "interval":
        return [f"{value[0]:.4f}", f"{value[1]:.4f}"]
    if kind == "relative":
        relative, interval = value
        return [f"{relative:.4f}", *(f"{v:.4f}" for v in interval)] if interval else [f"{relative:.4f}", "", ""]
    if kind in ("rate", "ratio"):
        return [f"{value:.4f}"]
    if kind == "days":
        return [f"{value:.1f}"]
    if kind == "count":
        return [str(value)]
    return [_csv_safe(str(value))]


def _csv_safe(text: str) -> str:
    """Text a spreadsheet would run as a formula (an officer or queue name like '=HYPERLINK(...)') is defused."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@dataclass
class Figures:
    """Everything the dashboard shows, read once per request."""

    filters: InsightFilters
    today: date
    stats: dict[str, Any]
    regulation_19_due: int
    case_to_answer: dict[str, queries.GroupOutcome]
    regulation_13: queries.Regulation13Outcomes
    queues: list[queries.QueueLoad]
    officers: list[queries.OfficerLoad]

    @property
    def period(self) -> tuple[date, date]:
        """The period the figures cover (without limits: the first case received, and today)."""
        period = self.stats["period"]
        return date.fromisoformat(period["from"]), date.fromisoformat(period["to"])


def gather(session: Session, filters: InsightFilters, now: datetime, *, with_trends: bool = False) -> Figures:
    """The dashboard's figures, worked out for this request: all time, from the running totals the database keeps
    (portal.oversight.rollups); with a period or a command, from the cases. The workload of queues and officers is
    read from the open cases, since their clocks run on with nothing changing. With `with_trends`, also fairness
    end to end and the quarters (portal.oversight.trends: read from the cases, for the page of trends). The caller
    commits (the totals may have been rebuilt)."""
    today = now.date()
    case_figures = stats.compute(
        session,
        date_from=filters.date_from,
        date_to=filters.date_to,
        command=filters.command,
        today=today,
        with_trends=with_trends,
    )
    open_cases = queries.open_work(session, filters, now)
    return Figures(
        filters=filters,
        today=today,
        stats=case_figures,
        regulation_19_due=queries.regulation_19_due_soon(session, filters, today),
        case_to_answer=queries.case_to_answer_by_ethnicity(case_figures),
        regulation_13=queries.regulation_13_outcomes(case_figures),
        queues=queries.queue_workload(session, filters, now, open_cases),
        officers=queries.officer_workload(session, filters, now, open_cases),
    )


def _measures(name: str, caption: str, rows: list[tuple[str, Any, str]]) -> Table:
    return Table(
        name,
        caption,
        [Column("Measure", "text"), Column("Figure", "figure")],
        [[label, Figure(value, kind)] for label, value, kind in rows],
    )


def timeliness(figures: Figures) -> Table:
    t = figures.stats["timeliness"]
    return _measures(
        "timeliness",
        "How long cases take, and what is still open",
        [
            ("Cases finalised", t["finalised"], "count"),
            ("Average (mean) time to finalise", t["mean_days_to_finalise"], "days"),
            ("Middle (median) time to finalise", t["median_days_to_finalise"], "days"),
            ("Finalised cases that took more than two years", t["share_finalised_over_2_years"], "rate"),
            ("Cases still open", t["open"], "count"),
            ("Cases open for more than a year", t["open_over_1_year"], "count"),
            ("Regulation 19 progress reports due in the next 30 days", figures.regulation_19_due, "count"),
        ],
    )


BUCKET_LABELS = {
    "0-90": "Up to 3 months (0 to 90 days)",
    "91-180": "3 to 6 months (91 to 180 days)",
    "181-365": "6 months to a year (181 to 365 days)",
    "366-730": "One to two years (366 to 730 days)",
    ">730": "More than two years (over 730 days)",
}


def time_to_finalise(figures: Figures) -> Table:
    buckets = figures.stats["timeliness"]["days_to_finalise_buckets"]
    total = sum(buckets.values())
    return Table(
        "time-to-finalise",
        "Finalised cases by how long they took",
        [Column("Time taken", "text"), Column("Cases finalised"), Column("Share of finalised cases", "rate")],
        [[BUCKET_LABELS.get(label, label), count, count / total if total else 0.0] for label, count in buckets.items()],
    )


def findings(figures: Figures) -> Table:
    f = figures.stats["findings"]
    every = f["all"]
    rows: list[list[Any]] = [
        [
            "All allegations",
            every["finalised"],
            every["case_to_answer_rate"],
            every["no_case_to_answer_rate"],
            every.get("not_investigated_rate"),
        ]
    ]
    for code, c in f["by_category"].items():
        rows.append(
            [
                CATEGORIES.get(code, (code,))[0],
                c["finalised"],
                c["case_to_answer_rate"],
                c.get("no_case_to_answer_rate"),
                c.get("not_investigated_rate"),
            ]
        )
    return Table(
        "findings",
        "Findings of finalised cases, all allegations and by category",
        [
            Column("Category", "text"),
            Column("Cases finalised"),
            Column("Case to answer", "rate"),
            Column("No case to answer", "rate"),
            Column("Not investigated", "rate"),
        ],
        rows,
    )


def repeat_subjects(figures: Figures) -> Table:
    r = figures.stats["repeat_subjects"]
    return _measures(
        "repeat-subjects",
        "People who were the subject of more than one case, and what happened to them",
        [
            ("People who were the subject of a case", r["subjects"], "count"),
            ("People with two or more cases", r["with_2_or_more_cases"], "count"),
            ("Share of people with two or more cases", r["share_with_2_or_more"], "rate"),
            ("Of them, people dismissed", r["dismissed_among_repeat"], "count"),
            ("Share of people with two or more cases who were dismissed", r["dismissal_rate_among_repeat"], "rate"),
        ],
    )


def suppress_groups(
    groups: list[tuple[str, tuple[int, int], float, float | None, Any, list[int]]], baseline: str
) -> tuple[list[list[Any]], set[int]]:
    """Rows of (group, the two counts shown, rate, relative rate, interval, the people behind each count), as
    they may be shown: [group, count, count, rate, relative rate, interval], and which rows were suppressed.

    A group is suppressed when it has fewer than 10 people behind either count (people with allegations,
    headcount, ...): a count of its own under 10, or over fewer than 10 people, reads "fewer than 10", and
    its rate, relative rate and interval are not shown. When the baseline group
    is suppressed, no relative rate is shown (each would give its rate away).
    """
    rows: list[list[Any]] = []
    suppressed: set[int] = set()
    baseline_rows = [deciding for group, *_, deciding in groups if group == baseline]
    baseline_hidden = not baseline_rows or min(baseline_rows[0]) < SUPPRESS_BELOW
    for index, (group, counts, rate, relative, interval, deciding) in enumerate(groups):
        if min(deciding) < SUPPRESS_BELOW:
            suppressed.add(index)
            shown = [
                SUPPRESSED if min(count, people) < SUPPRESS_BELOW else count
                for count, people in zip(counts, deciding, strict=True)
            ]
            rows.append([group, *shown, WITHHELD, WITHHELD, WITHHELD])
            continue
        shown_relative: Any = WITHHELD if baseline_hidden else relative
        shown_interval: Any = WITHHELD if baseline_hidden else (tuple(interval) if interval else None)
        if group == baseline and not baseline_hidden:
            shown_relative, shown_interval = 1.0, None
        rows.append([group, *counts, rate, shown_relative, shown_interval])
    return rows, suppressed


def group_table(
    name: str,
    caption: str,
    count_labels: tuple[str, str],
    rate_label: str,
    groups: list[tuple[str, tuple[int, int], float, float | None, Any, list[int]]],
    baseline: str,
) -> Table:
    """A table of groups against the baseline, small groups suppressed (suppress_groups)."""
    rows, suppressed = suppress_groups(groups, baseline)
    return Table(
        name,
        caption,
        [
            Column("Ethnicity group", "text"),
            Column(count_labels[0]),
            Column(count_labels[1]),
            Column(rate_label, "rate"),
            Column(f"Compared with {baseline} staff (relative rate)", "ratio"),
            Column("95% confidence interval", "interval"),
        ],
        rows,
        note=SUPPRESSION_NOTE,
        suppressed_rows=suppressed,
    )


def allegations(figures: Figures) -> Table:
    d = figures.stats["disproportionality"]
    return group_table(
        "allegations",
        "People with allegations brought against them, by ethnicity group",
        ("People with allegations", "Headcount"),
        "Share of the group",
        [
            (
                group,
                (g["people_with_allegations"], g["headcount"]),
                g["rate"],
                g["relative_rate"],
                g.get("relative_rate_ci95"),
                [g["people_with_allegations"], g["headcount"]],
            )
            for group, g in d["allegations"].items()
        ],
        d["baseline_group"],
    )


def case_to_answer_by_ethnicity(figures: Figures) -> Table:
    baseline = figures.stats["disproportionality"]["baseline_group"]
    return group_table(
        "case-to-answer-by-ethnicity",
        "Finalised cases found to have a case to answer, by the ethnicity group of the person",
        ("Cases finalised", "Case to answer"),
        "Case to answer rate",
        [
            (
                group,
                (o.finalised, o.case_to_answer),
                o.rate,
                o.relative_rate,
                o.interval,
                [o.people, o.people_with_case_to_answer],
            )
            for group, o in figures.case_to_answer.items()
        ],
        baseline,
    )


def regulation_13(figures: Figures) -> Table:
    d = figures.stats["disproportionality"]
    return group_table(
        "regulation-13",
        "Probationers subject to a Regulation 13 case, by ethnicity group",
        ("Probationers with a Regulation 13 case", "Probationer headcount"),
        "Share of the group's probationers",
        [
            (
                group,
                (g["people"], g["probationer_headcount"]),
                g["rate"],
                g["relative_rate"],
                g.get("relative_rate_ci95"),
                [g["people"], g["probationer_headcount"]],
            )
            for group, g in d["reg13"].items()
        ],
        d["baseline_group"],
    )


def gross_misconduct(figures: Figures) -> Table:
    g = figures.stats["gross_misconduct"]
    r = figures.regulation_13
    return _measures(
        "gross-misconduct",
        "Gross misconduct, Regulation 13 and dismissals",
        [
            ("Cases assessed as gross misconduct", g["assessed"], "count"),
            ("Of them, cases ending in dismissal", g["dismissed"], "count"),
            ("Share of gross misconduct cases ending in dismissal", g["dismissal_rate"], "rate"),
            ("Regulation 13 cases", r.cases, "count"),
            ("Regulation 13 cases finalised", r.finalised, "count"),
            ("Of them, cases ending in dismissal", r.dismissed, "count"),
            ("Share of finalised Regulation 13 cases ending in dismissal", r.dismissal_rate, "rate"),
        ],
    )


def queue_workload(figures: Figures) -> Table:
    return Table(
        "queues",
        "Open cases in each queue",
        [
            Column("Queue", "text"),
            Column("Unit", "text"),
            Column("Open cases"),
            Column("Overdue an update"),
            Column("Not assigned to anyone"),
        ],
        [[q.code, q.name, q.open, q.overdue, q.unassigned] for q in figures.queues],
    )


def officer_workload(figures: Figures) -> Table:
    return Table(
        "officers",
        "Open cases assigned to each officer",
        [Column("Officer", "text"), Column("Role", "text"), Column("Open cases assigned"), Column("Overdue an update")],
        [
            [
                o.name + (" (account disabled)" if o.disabled else ""),
                codes.ROLES.get(o.role, o.role),
                o.assigned_open,
                o.overdue,
            ]
            for o in figures.officers
        ],
    )


BUILDERS: dict[str, Callable[[Figures], Table]] = {
    "timeliness": timeliness,
    "time-to-finalise": time_to_finalise,
    "findings": findings,
    "repeat-subjects": repeat_subjects,
    "allegations": allegations,
    "case-to-answer-by-ethnicity": case_to_answer_by_ethnicity,
    "regulation-13": regulation_13,
    "gross-misconduct": gross_misconduct,
    "queues": queue_workload,
    "officers": officer_workload,
}


def build_all(figures: Figures) -> dict[str, Table]:
    return {name: build(figures) for name, build in BUILDERS.items()}
