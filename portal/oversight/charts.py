"""The dashboard's charts: pygal SVG drawn on the server from the (already suppressed) tables.

Each chart is an <img> with a data: URI, never inline SVG: pygal's SVG carries a <style> element, which
the page's Content Security Policy (style-src 'self') would block inline, and an <img> runs no script
and reaches nothing else. pygal's JavaScript (tooltips from a CDN) is switched off and its inline
configuration script removed. Every chart has its table on the page: the alt text says what the chart
shows and points to it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from portal.core.routing import CATEGORIES
from portal.oversight import svg
from portal.oversight.tables import WITHHELD, Figure, Hidden, Table
from portal.oversight.trend_tables import DETAILED_STEPS, SERIOUS, STEPS, table_name


@cache
def _pygal() -> ModuleType:
    """pygal, imported at the first chart drawn rather than at start-up (the command line never draws one)."""
    import pygal

    return pygal


@cache
def _style() -> Any:
    from pygal.style import Style

    return Style(
        background="#ffffff",
        plot_background="#ffffff",
        foreground="#0b0c0c",
        foreground_strong="#0b0c0c",
        foreground_subtle="#b1b4b6",
        opacity="1",
        opacity_hover="1",
        # Light fills, so the values printed on the bars (black) keep a contrast of 6:1 or more; blue and
        # orange stay apart for colour-blind readers.
        colors=("#5694ca", "#f47738", "#85994b", "#912b88", "#b1b4b6"),
        value_colors=("#0b0c0c",),
        ci_colors=("#0b0c0c",),
        guide_stroke_color="#b1b4b6",
        major_guide_stroke_color="#b1b4b6",
        no_data_font_size=18,
        font_family='system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
        label_font_size=13,
        major_label_font_size=13,
        value_font_size=13,
        value_label_font_size=13,
        legend_font_size=14,
        title_font_size=16,
        tooltip_font_size=13,
    )


WIDTH = 720
CATEGORIES_SHOWN = {code: words[0] for code, words in CATEGORIES.items()}
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S | re.I)


@dataclass(frozen=True)
class Chart:
    name: str
    uri: str  # data:image/svg+xml;base64,...
    alt: str
    width: int
    height: int


def _config(height: int, **options: Any) -> dict[str, Any]:
    return {
        "js": [],  # no script: the page's CSP allows none, and pygal's would load from another origin
        "style": _style(),
        "width": WIDTH,
        "height": height,
        "explicit_size": True,
        "disable_xml_declaration": True,
        "truncate_label": -1,
        "truncate_legend": -1,
        "print_values": True,
        "show_legend": False,
        "margin": 12,
        "print_zeroes": False,
        "value_formatter": _number,
        "no_data_text": "Nothing to show",
        **options,
    }


def _render(name: str, chart: Any, alt: str) -> Chart:
    svg = chart.render()
    text = svg.decode("utf-8") if isinstance(svg, bytes) else svg
    # pygal always writes its configuration as an inline script; an <img> would never run it, but the
    # chart is an image and nothing more, so it goes.
    text = _SCRIPT.sub("", text)
    uri = "data:image/svg+xml;base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")
    return Chart(name, uri, alt + " The figures are in the table with it.", chart.config.width, chart.config.height)


def _value(cell: Any) -> Any:
    value = cell.value if isinstance(cell, Figure) else cell
    return None if isinstance(value, Hidden) else value


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _number(value: float) -> str:
    """Counts as whole numbers; an axis tick between two whole numbers keeps its decimal."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _top_down(values: list[Any]) -> list[Any]:
    """pygal draws a horizontal bar chart's first bar at the bottom: reverse, so it reads like the table."""
    return list(reversed(values))


def _horizontal_height(bars: int, series: int = 1) -> int:
    return max(180, 70 + bars * (18 + 20 * series))


def time_to_finalise(table: Table) -> Chart:
    chart = _pygal().Bar(**_config(320, y_title="Cases finalised"))
    chart.x_labels = ["Up to 3 months", "3 to 6 months", "6 to 12 months", "1 to 2 years", "Over 2 years"][
        : len(table.rows)
    ]
    chart.add("Cases finalised", [row[1] for row in table.rows])
    return _render("time-to-finalise", chart, "Bar chart of finalised cases by how long they took.")


def findings(table: Table) -> Chart:
    rows = [row for row in table.rows if row[1]]  # categories with finalised cases
    chart = _pygal().HorizontalBar(
        **_config(_horizontal_height(len(rows)), value_formatter=_percent, range=(0, 1), print_zeroes=True)
    )
    chart.x_labels = _top_down([row[0] for row in rows])
    bars = [
        {"value": row[2], "color": _style().colors[1] if index == 0 else _style().colors[0]}
        for index, row in enumerate(rows)
    ]
    chart.add("Case to answer", _top_down(bars))
    return _render(
        "findings",
        chart,
        "Horizontal bar chart of the share of finalised cases found to have a case to answer, for all "
        "allegations (in orange, at the top) and for each category.",
    )


def repeat_subjects(table: Table) -> Chart:
    values = [_value(row[1]) for row in table.rows]
    subjects, repeat, dismissed = values[0] or 0, values[1] or 0, values[3] or 0
    chart = _pygal().HorizontalBar(**_config(_horizontal_height(3)))
    chart.x_labels = _top_down(["One case only", "Two or more cases", "Two or more cases and dismissed"])
    chart.add("People", _top_down([subjects - repeat, repeat, dismissed]))
    return _render(
        "repeat-subjects",
        chart,
        "Horizontal bar chart of people subject of one case, of two or more cases, and of two or more cases "
        "who were dismissed.",
    )


def relative_rates(table: Table, what: str) -> Chart:
    """Relative rate against the baseline with its 95% interval; a suppressed group shows no bar."""
    labels, values = [], []
    for index, row in enumerate(table.rows):
        hidden = index in table.suppressed_rows
        relative, interval = _value(row[4]), _value(row[5])
        if hidden:
            labels.append(f"{row[0]}: fewer than 10 people")
        elif row[4] is WITHHELD:  # the baseline group is too small to compare with
            labels.append(f"{row[0]}: not shown")
        else:
            labels.append(row[0])
        if hidden or relative is None or row[4] is WITHHELD:
            values.append(None)
        elif interval:
            values.append({"value": relative, "ci": {"low": interval[0], "high": interval[1]}})
        else:
            values.append(relative)
    highest = max([1.0] + [v["ci"]["high"] if isinstance(v, dict) else v for v in values if v is not None])
    chart = _pygal().HorizontalBar(
        **_config(
            _horizontal_height(len(labels)),
            value_formatter=lambda v: f"{v:.2f}",
            x_title="Relative rate (1 = as likely as White staff)",
            range=(0, highest * 1.05),
            print_zeroes=True,
            no_data_text="No group has 10 or more people",
        )
    )
    chart.x_labels = _top_down(labels)
    chart.add("Relative rate", _top_down(values))
    return _render(
        table.name,
        chart,
        f"Horizontal bar chart of how likely each ethnicity group is to {what}, relative to White staff "
        "(1 means equally likely), with 95% confidence intervals; groups of fewer than 10 people are not shown.",
    )


def gross_misconduct(table: Table) -> Chart:
    values = [_value(row[1]) or 0 for row in table.rows]
    chart = _pygal().Bar(**_config(320, show_legend=True, legend_at_bottom=True, legend_at_bottom_columns=2))
    chart.x_labels = ["Gross misconduct (cases assessed)", "Regulation 13 (cases finalised)"]
    chart.add("Cases", [values[0], values[4]])
    chart.add("Ending in dismissal", [values[1], values[5]])
    return _render(
        "gross-misconduct",
        chart,
        "Bar chart comparing gross misconduct cases and finalised Regulation 13 cases with how many of each "
        "ended in dismissal.",
    )


def _bars(table: Table, rows: list[list[Any]], series: list[tuple[str, int]], no_data: str, alt: str) -> Chart:
    """A horizontal bar chart of some rows of a table, one bar per series (label, column) in each."""
    chart = _pygal().HorizontalBar(
        **_config(
            _horizontal_height(len(rows), len(series)),
            show_legend=True,
            legend_at_bottom=True,
            legend_at_bottom_columns=len(series),
            no_data_text=no_data,
        )
    )
    chart.x_labels = _top_down([row[0] for row in rows])
    for label, column in series:
        chart.add(label, _top_down([row[column] for row in rows]))
    return _render(table.name, chart, alt)


def queue_workload(table: Table) -> Chart:
    return _bars(
        table,
        [row for row in table.rows if row[2]],  # queues with open cases; the table lists every queue
        [("Open cases", 2), ("Overdue an update", 3), ("Not assigned", 4)],
        "No open cases",
        "Horizontal bar chart of open, overdue and unassigned cases in each queue that has open cases.",
    )


def officer_workload(table: Table) -> Chart:
    return _bars(
        table,
        [row for row in table.rows if row[2]],  # officers with open cases; the table lists everyone
        [("Open cases assigned", 2), ("Overdue an update", 3)],
        "No open case is assigned to anyone",
        "Horizontal bar chart of open and overdue cases assigned to each officer who has open cases.",
    )


def _svg(name: str, text: str, height: int, alt: str) -> Chart:
    uri = "data:image/svg+xml;base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")
    return Chart(name, uri, alt + " The figures are in the table with it.", WIDTH, height)


def _quarter_labels(table: Table) -> list[str]:
    """Every quarter named when there are few; else only each year's first quarter, by its year."""
    names = [row[0] for row in table.rows]
    if len(names) <= 8:
        return names
    return [name[:4] if name.endswith("Q1") else "" for name in names]


def _column(table: Table, index: int) -> list[Any]:
    return [_value(row[index]) for row in table.rows]


def _lines(table: Table, columns: list[int], y_title: str, alt: str, **options: Any) -> Chart:
    series = [svg.Series(table.columns[i].label, _column(table, i)) for i in columns]
    text, height = svg.line_chart(_quarter_labels(table), series, y_title=y_title, **options)
    return _svg(table.name, text, height, alt)


def trend_timeliness(table: Table) -> Chart:
    return _lines(
        table,
        [4, 5],
        "Days to finalise",
        "Line chart of the average (mean) and middle (median) days to finalise, by the quarter cases were received.",
        formatter=_number,
    )


def trend_findings(table: Table) -> Chart:
    return _lines(
        table,
        [2, 3],
        "Share of finalised cases",
        "Line chart of the share of finalised cases with no case to answer and with a case to answer, by the "
        "quarter cases were received.",
        formatter=_percent,
        top=1.0,
    )


def trend_by_category(table: Table) -> Chart:
    labels = [column.label for column in table.columns]
    wanted = [1] + [labels.index(CATEGORIES_SHOWN[code]) for code in SERIOUS if CATEGORIES_SHOWN[code] in labels]
    return _lines(
        table,
        wanted,
        "Case to answer",
        "Line chart of the share of finalised cases with a case to answer, by quarter received, for all allegations "
        "and for sexual misconduct, discrimination and domestic abuse (every category is in the table).",
        formatter=_percent,
        top=1.0,
    )


def trend_repeat_subjects(table: Table) -> Chart:
    return _lines(
        table,
        [3],
        "Share of people",
        "Line chart of the share of people reported who had two or more cases within the quarter, by quarter.",
        formatter=_percent,
    )


def trend_step(table: Table, step: str) -> Chart:
    series = []
    for index in range(1, len(table.columns)):
        values = [cell[0] if isinstance(cell, tuple) else None for cell in (row[index] for row in table.rows)]
        series.append(svg.Series(table.columns[index].label, values))
    text, height = svg.line_chart(
        _quarter_labels(table),
        series,
        y_title="Relative rate",
        formatter=lambda v: f"{v:.1f}",
        reference=(1.0, "1 = as likely as White staff"),
        no_data="No quarter has a group of 10 or more people to compare",
    )
    return _svg(
        table.name,
        text,
        height,
        f"Line chart of how likely each ethnicity group was to {STEPS[step][1]} ({STEPS[step][2]}), relative to "
        "White staff, by the quarter cases were received; quarters where a group has fewer than 10 people "
        "have no point.",
    )


def gross_misconduct_by_year(table: Table) -> Chart:
    series = [svg.Series(table.columns[i].label, _column(table, i)) for i in (1, 2)]
    text, height = svg.line_chart([row[0] for row in table.rows], series, y_title="Cases", formatter=_number)
    return _svg(
        table.name,
        text,
        height,
        "Line chart of cases where gross misconduct was found and cases ending in dismissal, by year received.",
    )


def gross_misconduct_by_category(table: Table) -> Chart:
    return _bars(
        table,
        [row for row in table.rows if row[1] or row[2]],
        [("Gross misconduct found", 1), ("Dismissals", 2)],
        "No gross misconduct found",
        "Horizontal bar chart of cases where gross misconduct was found, and cases ending in dismissal, in each "
        "category that has any.",
    )


def _step_rates(step: str) -> Callable[[Table], Chart]:
    return lambda table: relative_rates(table, f"{STEPS[step][1]} ({STEPS[step][2]})")


def _trend_step(step: str) -> Callable[[Table], Chart]:
    return lambda table: trend_step(table, step)


DRAWERS: dict[str, Callable[[Table], Chart]] = {
    "time-to-finalise": time_to_finalise,
    "findings": findings,
    "repeat-subjects": repeat_subjects,
    "allegations": lambda table: relative_rates(table, "have an allegation brought against them"),
    "case-to-answer-by-ethnicity": lambda table: relative_rates(table, "be found to have a case to answer"),
    "regulation-13": lambda table: relative_rates(table, "be subject to a Regulation 13 case as a probationer"),
    "gross-misconduct": gross_misconduct,
    "queues": queue_workload,
    "officers": officer_workload,
    **{table_name("step", step): _step_rates(step) for step in DETAILED_STEPS},
    "trend-timeliness": trend_timeliness,
    "trend-findings": trend_findings,
    "trend-case-to-answer-by-category": trend_by_category,
    "trend-repeat-subjects": trend_repeat_subjects,
    **{table_name("trend", step): _trend_step(step) for step in STEPS},
    "gross-misconduct-by-year": gross_misconduct_by_year,
    "gross-misconduct-by-category": gross_misconduct_by_category,
}


def draw_all(tables: dict[str, Table]) -> dict[str, Chart]:
    """A chart of each table that has one (the tables of portal.oversight.tables and .trend_tables together)."""
    return {name: draw(tables[name]) for name, draw in DRAWERS.items() if name in tables}
