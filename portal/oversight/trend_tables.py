"""The dashboard's tables of fairness end to end, of the headline figures by quarter, and of gross misconduct by
category and year: from `stats.compute()`'s keys `end_to_end`, `trends` and `gross_misconduct_outcomes`
(portal.oversight.trends), with small groups suppressed by portal.oversight.tables' one rule (suppress_groups).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portal.core.routing import CATEGORIES
from portal.oversight.tables import (
    SUPPRESSED,
    SUPPRESSION_NOTE,
    WITHHELD,
    Column,
    Figures,
    Hidden,
    Table,
    group_table,
    suppress_groups,
)

# Each step: (its name in a table, what a person of the group is more or less likely to ..., the cases it is among).
STEPS: dict[str, tuple[str, str, str]] = {
    "allegation": ("Allegation brought", "have an allegation brought against them", "of the group's headcount"),
    "case_to_answer": ("Case to answer", "be found to have a case to answer", "of finalised cases"),
    "gross_misconduct_found": ("Gross misconduct found", "have gross misconduct found", "of cases to answer"),
    "written_warning_or_more": (
        "Written warning or more",
        "be given a written warning, a final written warning or be dismissed",
        "of cases to answer",
    ),
    "dismissal": ("Dismissed", "be dismissed", "of cases to answer"),
}
STEP_COUNTS: dict[str, tuple[str, str]] = {
    "allegation": ("People with allegations", "Headcount"),
    "case_to_answer": ("Cases with a case to answer", "Cases finalised"),
    "gross_misconduct_found": ("Cases where gross misconduct was found", "Cases with a case to answer"),
    "written_warning_or_more": ("Cases with a written warning or more", "Cases with a case to answer"),
    "dismissal": ("Cases ending in dismissal", "Cases with a case to answer"),
}
DETAILED_STEPS = ("gross_misconduct_found", "written_warning_or_more", "dismissal")  # the others have tables already
SERIOUS = ("sexual-misconduct", "discrimination", "domestic-abuse")  # review finding 3, drawn in the chart


def table_name(prefix: str, step: str) -> str:
    """The name of a step's table (and its export): ("trend", "case_to_answer") -> "trend-case-to-answer"."""
    return f"{prefix}-{step.replace('_', '-')}"


def quarter_name(label: str) -> str:
    """ "2025-Q1" -> "2025 Q1"."""
    return label.replace("-", " ")


def _step_rows(groups: dict[str, dict[str, Any]]) -> list[tuple[str, tuple[int, int], float, Any, Any, list[int]]]:
    """One step's groups as tables.suppress_groups takes them (the counts shown are the step's own two)."""
    return [
        (
            group,
            (g["count"], g["out_of"]),
            g["rate"],
            g["relative_rate"],
            g["relative_rate_ci95"],
            [g["people"], g["people_out_of"]],
        )
        for group, g in groups.items()
    ]


def _relative_cells(groups: dict[str, dict[str, Any]], baseline: str) -> dict[str, Any]:
    """Each group's relative rate with its interval as one cell, or what suppression shows instead."""
    rows, suppressed = suppress_groups(_step_rows(groups), baseline)
    cells: dict[str, Any] = {}
    for index, row in enumerate(rows):
        relative, interval = row[4], row[5]
        if index in suppressed:
            cells[row[0]] = SUPPRESSED
        elif isinstance(relative, Hidden):
            cells[row[0]] = WITHHELD
        else:
            cells[row[0]] = (relative, tuple(interval) if interval else None)
    return cells


def step_table(figures: Figures, step: str) -> Table:
    e = figures.stats["end_to_end"]
    name, _likely, among = STEPS[step]
    return group_table(
        table_name("step", step),
        f"{name}, by ethnicity group ({among})",
        STEP_COUNTS[step],
        "Share " + among,
        _step_rows(e["steps"][step]),
        e["baseline_group"],
    )


def end_to_end(figures: Figures) -> Table:
    e = figures.stats["end_to_end"]
    baseline = e["baseline_group"]
    cells = {step: _relative_cells(groups, baseline) for step, groups in e["steps"].items()}
    return Table(
        "end-to-end",
        f"How likely each group is, compared with {baseline} staff, at each step (relative rate, 95% interval)",
        [Column("Ethnicity group", "text")] + [Column(STEPS[step][0], "relative") for step in cells],
        [[group] + [cells[step][group] for step in cells] for group in e["steps"]["allegation"]],
        note=SUPPRESSION_NOTE + " A step's relative rate is among the cases that reached the step before it.",
    )


def _quarters(figures: Figures) -> list[dict[str, Any]]:
    return figures.stats["trends"]["quarters"]


def _or_none(value: float, over: int) -> float | None:
    return value if over else None


def _by_quarter(
    figures: Figures, name: str, caption: str, columns: list[Column], cells: Callable[[dict[str, Any]], list[Any]]
) -> Table:
    """A table with a row per quarter: its name, then `cells(quarter's figures)`."""
    rows = [[quarter_name(q["quarter"]), *cells(q)] for q in _quarters(figures)]
    return Table(name, caption, [Column("Quarter received", "text"), *columns], rows)


def _timeliness_cells(q: dict[str, Any]) -> list[Any]:
    t = q["timeliness"]
    dated = t["finalised_with_dates"]
    return [
        q["cases"],
        t["finalised"],
        t["open"],
        _or_none(t["mean_days_to_finalise"], dated),
        _or_none(t["median_days_to_finalise"], dated),
    ]


def trend_timeliness(figures: Figures) -> Table:
    table = _by_quarter(
        figures,
        "trend-timeliness",
        "Time to finalise, by the quarter cases were received",
        [
            Column("Cases received"),
            Column("Finalised"),
            Column("Still open"),
            Column("Average (mean) time to finalise", "days"),
            Column("Middle (median) time to finalise", "days"),
        ],
        _timeliness_cells,
    )
    table.note = (
        "Recent quarters have more cases still open, and only the quicker ones are finalised yet: their times to "
        "finalise will grow as the rest are finalised."
    )
    return table


def trend_findings(figures: Figures) -> Table:
    def cells(q: dict[str, Any]) -> list[Any]:
        a = q["findings"]["all"]
        done = a["finalised"]
        return [done, _or_none(a["no_case_to_answer_rate"], done), _or_none(a["case_to_answer_rate"], done)]

    return _by_quarter(
        figures,
        "trend-findings",
        "Findings of finalised cases, by the quarter cases were received",
        [Column("Cases finalised"), Column("No case to answer", "rate"), Column("Case to answer", "rate")],
        cells,
    )


def trend_by_category(figures: Figures) -> Table:
    quarters = _quarters(figures)
    codes = list(quarters[0]["findings"]["by_category"]) if quarters else list(CATEGORIES)

    def cells(q: dict[str, Any]) -> list[Any]:
        by, every = q["findings"]["by_category"], q["findings"]["all"]
        return [_or_none(every["case_to_answer_rate"], every["finalised"])] + [
            _or_none(by[code]["case_to_answer_rate"], by[code]["finalised"]) for code in codes
        ]

    table = _by_quarter(
        figures,
        "trend-case-to-answer-by-category",
        "Share of finalised cases with a case to answer, by category and quarter received",
        [Column("All allegations", "rate")] + [Column(CATEGORIES.get(code, (code,))[0], "rate") for code in codes],
        cells,
    )
    table.note = "A dash means no case of that category received in the quarter has been finalised."
    return table


def trend_repeat_subjects(figures: Figures) -> Table:
    def cells(q: dict[str, Any]) -> list[Any]:
        r = q["repeat_subjects"]
        return [r["subjects"], r["with_2_or_more_cases"], _or_none(r["share_with_2_or_more"], r["subjects"])]

    return _by_quarter(
        figures,
        "trend-repeat-subjects",
        "People reported more than once within a quarter, by quarter received",
        [
            Column("People who were the subject of a case"),
            Column("People with two or more cases"),
            Column("Share with two or more cases", "rate"),
        ],
        cells,
    )


def trend_step(figures: Figures, step: str) -> Table:
    baseline = figures.stats["end_to_end"]["baseline_group"]
    groups = [g for g in figures.stats["end_to_end"]["steps"][step] if g != baseline]
    name, _likely, among = STEPS[step]

    def cells(q: dict[str, Any]) -> list[Any]:
        shown = _relative_cells(q["relative_rates"][step], baseline)
        return [shown[group] for group in groups]

    table = _by_quarter(
        figures,
        table_name("trend", step),
        f"{name} ({among}): relative rate against {baseline} staff by quarter received, with 95% intervals",
        [Column(group, "relative") for group in groups],
        cells,
    )
    table.note = SUPPRESSION_NOTE
    return table


def _outcomes(figures: Figures) -> dict[str, Any]:
    return figures.stats["gross_misconduct_outcomes"]


def gross_misconduct_by_year(figures: Figures) -> Table:
    years = _outcomes(figures)["by_year"]
    return Table(
        "gross-misconduct-by-year",
        "Gross misconduct found and dismissals, by the year cases were received",
        [Column("Year received", "text"), Column("Gross misconduct found"), Column("Dismissals")],
        [[year, v["all"]["gross_misconduct_found"], v["all"]["dismissed"]] for year, v in years.items()],
    )


def gross_misconduct_by_category(figures: Figures) -> Table:
    by = _outcomes(figures)["by_category"]
    return Table(
        "gross-misconduct-by-category",
        "Gross misconduct found and dismissals, by category",
        [Column("Category", "text"), Column("Gross misconduct found"), Column("Dismissals")],
        [[CATEGORIES.get(code, (code,))[0], v["gross_misconduct_found"], v["dismissed"]] for code, v in by.items()],
    )


def _category_by_year(figures: Figures, key: str, name: str, caption: str) -> Table:
    years = _outcomes(figures)["by_year"]
    codes = list(_outcomes(figures)["by_category"])
    rows = [["All categories"] + [v["all"][key] for v in years.values()]]
    rows += [
        [CATEGORIES.get(code, (code,))[0]] + [v["by_category"][code][key] for v in years.values()] for code in codes
    ]
    return Table(name, caption, [Column("Category", "text")] + [Column(year) for year in years], rows)


def gross_misconduct_found_by_category_and_year(figures: Figures) -> Table:
    return _category_by_year(
        figures,
        "gross_misconduct_found",
        "gross-misconduct-found-by-category-and-year",
        "Cases where gross misconduct was found, by category and year received",
    )


def dismissals_by_category_and_year(figures: Figures) -> Table:
    return _category_by_year(
        figures,
        "dismissed",
        "dismissals-by-category-and-year",
        "Cases ending in dismissal, by category and year received",
    )


def _step_builder(step: str, build: Callable[[Figures, str], Table]) -> Callable[[Figures], Table]:
    return lambda figures: build(figures, step)


BUILDERS: dict[str, Callable[[Figures], Table]] = {
    "end-to-end": end_to_end,
    **{table_name("step", step): _step_builder(step, step_table) for step in DETAILED_STEPS},
    "trend-timeliness": trend_timeliness,
    "trend-findings": trend_findings,
    "trend-case-to-answer-by-category": trend_by_category,
    "trend-repeat-subjects": trend_repeat_subjects,
    **{table_name("trend", step): _step_builder(step, trend_step) for step in STEPS},
    "gross-misconduct-by-year": gross_misconduct_by_year,
    "gross-misconduct-by-category": gross_misconduct_by_category,
    "gross-misconduct-found-by-category-and-year": gross_misconduct_found_by_category_and_year,
    "dismissals-by-category-and-year": dismissals_by_category_and_year,
}


def build_all(figures: Figures) -> dict[str, Table]:
    return {name: build(figures) for name, build in BUILDERS.items()}
