"""Inline SVG charts computed as shapes: the templates draw them, so every label is escaped.

No script and no font from anywhere: a chart is rectangles, lines and text with a `<title>` on
each bar for the exact number. Bars are stacked by series (e.g. severity), told apart by colour
and by the chart's table of its numbers (`Chart.data`), which names each series in words.
Labels from the data (body types, chat types, senders) are cut to `LABEL_CHARS` in tooltips
and tables, and to what fits beside a bar, so the page stays small whatever the records hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from auditor.report.catalogue import Phrase
from auditor.report.display import clip, clip_drawn, label

WIDTH = 760
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 34
LABEL_WIDTH = 200
ROW = 22


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    tip: str


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"
    tip: str = ""


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: the shapes to draw, its legend (css class, name) and a one-line description."""

    key: str
    title: str
    width: int
    height: int
    rects: tuple[Rect, ...]
    lines: tuple[Line, ...]
    labels: tuple[Label, ...]
    legend: tuple[tuple[str, str], ...]
    description: str
    series: tuple[str, ...] = ()
    data: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.rects


Series = Sequence[tuple[str, str]]
Items = Sequence[tuple[str, Mapping[str, int]]]


def nice_ceiling(value: int) -> int:
    """The smallest round number (1, 1.2, 1.5, 2, … 8 times a power of ten) at or above `value`,
    whose half is round too, so the three ticks read well."""
    if value <= 2:
        return 2
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.6, 2, 3, 4, 5, 6, 8, 10):
        top = round(step * power)
        if top >= value and top % 2 == 0:
            return top
    return 10 * power


def _r(value: float) -> float:
    return round(value, 1)


def _tip(name_of_bar: str, name: str, count: int, series: Series) -> str:
    shown = label(name_of_bar)
    if len(series) == 1:
        return Phrase("{bar}: {count:,}", bar=shown, count=count)
    return Phrase("{bar}: {count:,} {series}", bar=shown, count=count, series=Phrase(name))


def _data(items: Items, series: Series) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The chart's numbers as rows of its table: each item's label and its count per series."""
    return tuple(
        (label(name), tuple(counts.get(each, 0) for each, _ in series)) for name, counts in items
    )


def column_chart(
    key: str, title: str, items: Items, series: Series, description: str, height: int = 220
) -> Chart:
    """Vertical stacked columns over time; at most about ten x labels whatever the bar count."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    totals = [sum(counts.get(name, 0) for name, _ in series) for _, counts in items]
    top = nice_ceiling(max(totals, default=0))
    rects: list[Rect] = []
    lines: list[Line] = []
    labels: list[Label] = []
    for fraction in (0, 0.5, 1):
        y = _r(TOP + plot_h * (1 - fraction))
        lines.append(Line(LEFT, y, WIDTH - RIGHT, y))
        labels.append(Label(LEFT - 6, y + 4, f"{round(top * fraction):,}", "end"))
    slot = plot_w / max(len(items), 1)
    every = max(1, math.ceil(len(items) / 10))
    for index, (name_of_column, counts) in enumerate(items):
        x = LEFT + index * slot
        base = TOP + plot_h
        for name, css in series:
            count = counts.get(name, 0)
            if count <= 0:
                continue
            bar = plot_h * count / top
            base -= bar
            rects.append(
                Rect(
                    _r(x + slot * 0.1),
                    _r(base),
                    _r(max(slot * 0.8, 0.5)),
                    _r(bar),
                    css,
                    _tip(name_of_column, name, count, series),
                )
            )
        if index % every == 0:
            labels.append(
                Label(_r(x + slot / 2), height - BOTTOM + 16, clip(name_of_column, 16), "middle")
            )
    return Chart(
        key,
        title,
        WIDTH,
        height,
        tuple(rects),
        tuple(lines),
        tuple(labels),
        tuple((css, Phrase(name)) for name, css in series) if len(series) > 1 else (),
        description,
        tuple(Phrase(name) for name, _ in series),
        _data(items, series),
    )


def bar_chart(key: str, title: str, items: Items, series: Series, description: str) -> Chart:
    """Horizontal stacked bars, one row per item: its name on the left, its total on the right."""
    height = TOP + max(len(items), 1) * ROW + 8
    plot_w = WIDTH - LABEL_WIDTH - RIGHT - 64
    totals = [sum(counts.get(name, 0) for name, _ in series) for _, counts in items]
    top = max(totals, default=0) or 1
    rects: list[Rect] = []
    labels: list[Label] = []
    for index, ((name, counts), total) in enumerate(zip(items, totals, strict=True)):
        y = TOP + index * ROW
        labels.append(Label(LABEL_WIDTH - 8, y + 15, clip_drawn(name, 28), "end", label(name)))
        x = float(LABEL_WIDTH)
        for part, css in series:
            count = counts.get(part, 0)
            if count <= 0:
                continue
            width = plot_w * count / top
            rects.append(
                Rect(_r(x), y + 3, _r(width), ROW - 6, css, _tip(name, part, count, series))
            )
            x += width
        labels.append(Label(_r(x + 6), y + 15, f"{total:,}"))
    return Chart(
        key,
        title,
        WIDTH,
        height,
        tuple(rects),
        (),
        tuple(labels),
        tuple((css, Phrase(name)) for name, css in series) if len(series) > 1 else (),
        description,
        tuple(Phrase(name) for name, _ in series),
        _data(items, series),
    )
