"""Line charts drawn as plain SVG text, for the trends by quarter (portal.oversight.charts).

pygal takes some 60 ms to draw a line chart of five series over 36 quarters; the dashboard draws a dozen, which
alone would cost more than half of its one-second budget. These are a few lines of SVG each (about a
millisecond), shown as an <img> like every chart, so they run no script and load nothing. Colour is never the
only difference between series: each has its own dash pattern and marker shape, shown in the legend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
INK = "#0b0c0c"
GRID = "#b1b4b6"
# Dark enough for 4.5:1 against white (lines are graphics: 3:1 would do), apart for colour-blind readers.
COLOURS = ("#1d70b8", "#d4351c", "#00703c", "#912b88", "#505a5f", "#0b0c0c")
DASHES = ("", "7 4", "2 3", "9 3 2 3", "4 2", "1 3")
MARKERS = ("circle", "square", "triangle", "diamond", "circle-open", "square-open")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no figure for that point (nothing, or a suppressed group)


def _nice_top(highest: float) -> tuple[float, float]:
    """A round top for the y axis and its step (4 or 5 steps)."""
    if highest <= 0:
        return 1.0, 0.25
    raw = highest / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(highest / step - 1e-9), step


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    fill = "#ffffff" if kind.endswith("-open") else colour
    shape = kind.removesuffix("-open")
    common = f'fill="{fill}" stroke="{colour}" stroke-width="1.5"'
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" {common}/>'
    if shape == "square":
        return f'<rect x="{x - 3.2:.1f}" y="{y - 3.2:.1f}" width="6.4" height="6.4" {common}/>'
    if shape == "triangle":
        return f'<path d="M{x:.1f} {y - 4.2:.1f}L{x + 4:.1f} {y + 3:.1f}L{x - 4:.1f} {y + 3:.1f}Z" {common}/>'
    return f'<path d="M{x:.1f} {y - 4.5:.1f}L{x + 4:.1f} {y:.1f}L{x:.1f} {y + 4.5:.1f}L{x - 4:.1f} {y:.1f}Z" {common}/>'


@dataclass(frozen=True)
class _Frame:
    """Where the plot sits in the chart, and how a point and a value map onto it."""

    width: int
    height: int  # without the legend
    count: int  # points along the x axis
    top_value: float
    left: int = 64
    right: int = 16
    top: int = 14
    bottom: int = 44

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def base(self) -> float:
        """The y of the x axis."""
        return self.height - self.bottom

    def x_at(self, index: int) -> float:
        return self.left + self.plot_w * (index + 0.5) / self.count

    def y_at(self, value: float) -> float:
        return self.top + (self.base - self.top) * (1 - min(value, self.top_value) / self.top_value)


def _axes(
    frame: _Frame,
    step: float,
    labels: Sequence[str],
    y_title: str,
    formatter: Callable[[float], str],
    reference: tuple[float, str] | None,
) -> list[str]:
    f, out = frame, []
    tick = 0.0
    while tick <= f.top_value + 1e-9:
        y = f.y_at(tick)
        out.append(f'<line x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{f.left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(formatter(tick))}</text>')
        tick += step
    middle = (f.top + f.base) / 2
    out.append(
        f'<text transform="translate(14 {middle:.0f}) rotate(-90)" text-anchor="middle">{escape(y_title)}</text>'
    )
    for index, label in enumerate(labels):
        if label:
            x = f.x_at(index)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.base}" y2="{f.base + 5}" stroke="{INK}"/>')
            out.append(f'<text x="{x:.1f}" y="{f.base + 20}" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<line x1="{f.left}" x2="{f.width - f.right}" y1="{f.base}" y2="{f.base}" stroke="{INK}"/>')
    if reference is not None:
        y = f.y_at(reference[0])
        out.append(
            f'<line x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{INK}" '
            'stroke-dasharray="3 3"/>'
        )
        out.append(f'<text x="{f.width - f.right - 4}" y="{y - 5:.1f}" text-anchor="end">{escape(reference[1])}</text>')
    return out


def _line(frame: _Frame, number: int, line: Series, columns: int, place: int) -> list[str]:
    """One series (the `number`th: its colour, dash and marker): its runs of points (a None breaks the line), its
    markers, and its entry in the legend (the `place`th, in `columns` columns; none without columns)."""
    colour, dash, marker = COLOURS[number % len(COLOURS)], DASHES[number % len(DASHES)], MARKERS[number % len(MARKERS)]
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    runs: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(line.values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((frame.x_at(index), frame.y_at(value)))
    out = []
    for run in runs:
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dashed}/>')
        out += [_marker(marker, x, y, colour) for x, y in run]
    if columns:
        lx = frame.left + (place % columns) * (frame.plot_w / columns)
        ly = frame.height + 4 + (place // columns) * 22
        out.append(
            f'<line x1="{lx:.1f}" x2="{lx + 34:.1f}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="{colour}" '
            f'stroke-width="2"{dashed}/>'
        )
        out.append(_marker(marker, lx + 17, ly, colour))
        out.append(f'<text x="{lx + 42:.1f}" y="{ly + 4:.1f}">{escape(line.name)}</text>')
    return out


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_title: str,
    formatter: Callable[[float], str],
    top: float | None = None,
    reference: tuple[float, str] | None = None,
    no_data: str = "Nothing to show",
    width: int = 720,
    height: int = 300,
) -> tuple[str, int]:
    """An SVG line chart of `series` over the points `labels` (an empty label: a point with no label under the
    axis). `reference` draws a dashed horizontal line at a value, with its words. A series with no value at all
    is left out, and `no_data` is written across a chart with none. Returns (svg, height)."""
    shown = [line for line in series if any(value is not None for value in line.values)]
    columns = 2 if any(len(line.name) > 22 for line in shown) else 3
    legend_rows = math.ceil(len(shown) / columns) if len(series) > 1 else 0
    total_height = height + legend_rows * 22
    values = [v for s in series for v in s.values if v is not None]
    highest = max([*values, reference[0] if reference else 0.0, 0.0])
    top_value, step = _nice_top(top if top is not None else highest * 1.05)
    frame = _Frame(width, height, max(len(labels), 1), top_value)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_height}" '
        f'viewBox="0 0 {width} {total_height}" font-family=\'{FONT}\' font-size="13" fill="{INK}">',
        f'<rect width="{width}" height="{total_height}" fill="#ffffff"/>',
        *_axes(frame, step, labels, y_title, formatter, reference),
    ]
    for number, line in enumerate(series):
        if line in shown:
            out += _line(frame, number, line, columns if legend_rows else 0, shown.index(line))
    if not shown:
        out.append(
            f'<text x="{frame.left + frame.plot_w / 2:.0f}" y="{(frame.top + frame.base) / 2:.0f}" '
            f'text-anchor="middle" font-size="16">{escape(no_data)}</text>'
        )
    out.append("</svg>")
    return "".join(out), total_height
