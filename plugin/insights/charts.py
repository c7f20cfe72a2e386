"""Accessible charts drawn on the server as inline SVG (no JavaScript, no chart library).

Every chart is drawn from a :class:`Table`, the same numbers the page prints below it as a
real ``<table>`` and offers as CSV, so the three never disagree. A chart is an image with
a name and a description (``role="img"``, ``<title>``, ``<desc>``); each bar carries its
category and value as text beside it, so colour is never the only cue; bars that stand
for something different (a month still running) are hatched and say so in words. Text is
the page's text colour on white (14.6:1), bars the link blue (6.4:1 against white).

Only presentation attributes are used, never ``style``: the Content-Security-Policy
allows no inline styles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from markupsafe import Markup, escape

__all__ = ["Table", "bar_chart", "csv_rows", "format_cell"]

TEXT_COLOUR: Final = "#1f2933"
BAR_COLOUR: Final = "#0b5cad"
#: Geometry of a horizontal bar chart, in SVG user units (the SVG scales to its box).
WIDTH: Final = 720
LABEL_WIDTH: Final = 210
BAR_MAX: Final = 300
ROW_HEIGHT: Final = 30
BAR_HEIGHT: Final = 18
FONT_SIZE: Final = 14


@dataclass(frozen=True)
class Table:
    """Numbers with a caption and column headers: a chart, an HTML table and a CSV file."""

    key: str  #: used in element ids and the CSV file name
    caption: str
    headers: tuple[str, ...]
    rows: list[tuple[object, ...]]
    #: One or two sentences saying what the chart shows (its SVG description).
    description: str = ""
    #: Column charted (the first column is always the category).
    value_column: int = 1
    #: Rows drawn hatched, and the words saying why (e.g. "month so far").
    marked: dict[int, str] = field(default_factory=dict)
    unit: str = ""


def format_cell(value: object) -> str:
    """How a number reads in the table, the chart and the CSV (None: no data)."""
    if value is None:
        return "no data"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"
    return str(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def bar_chart(table: Table) -> Markup:
    """A horizontal bar chart of ``table``'s value column, labelled bar by bar."""
    values = [_number(row[table.value_column]) for row in table.rows]
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    height = ROW_HEIGHT * max(1, len(table.rows)) + 8
    ids = f"chart-{escape(table.key)}"
    parts: list[str] = [
        f'<svg class="chart" role="img" aria-labelledby="{ids}-title {ids}-desc" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" '
        f'font-size="{FONT_SIZE}">',
        f'<title id="{ids}-title">{escape(table.caption)}</title>',
        f'<desc id="{ids}-desc">{escape(_description(table))}</desc>',
    ]
    if table.marked:
        parts.append(
            f'<defs><pattern id="{ids}-hatch" width="6" height="6" '
            'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
            f'<rect width="6" height="6" fill="#ffffff"/>'
            f'<rect width="3" height="6" fill="{BAR_COLOUR}"/></pattern></defs>'
        )
    for i, (row, value) in enumerate(zip(table.rows, values, strict=True)):
        y = 4 + i * ROW_HEIGHT
        middle = y + BAR_HEIGHT / 2 + FONT_SIZE * 0.35
        parts.append(
            f'<text x="0" y="{middle:.1f}" fill="{TEXT_COLOUR}">'
            f"{escape(_shorten(format_cell(row[0])))}</text>"
        )
        width = 0.0 if value is None else max(0.0, value) / top * BAR_MAX
        if width > 0:
            fill = f"url(#{ids}-hatch)" if i in table.marked else BAR_COLOUR
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                f'fill="{fill}" stroke="{BAR_COLOUR}"/>'
            )
        label = format_cell(row[table.value_column]) + (table.unit if value is not None else "")
        if i in table.marked:
            label += f" ({table.marked[i]})"
        parts.append(
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{middle:.1f}" fill="{TEXT_COLOUR}">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    # Every interpolated text went through escape(); numbers are formatted by us.
    return Markup("".join(parts))  # noqa: S704


def _description(table: Table) -> str:
    """The chart's description: what it shows, then every value in words."""
    values = "; ".join(
        f"{format_cell(row[0])}: {format_cell(row[table.value_column])}"
        + (f" ({table.marked[i]})" if i in table.marked else "")
        for i, row in enumerate(table.rows)
    )
    return " ".join(part for part in (table.description, values + ".") if part)


def _shorten(label: str, limit: int = 26) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def csv_rows(table: Table) -> Sequence[Sequence[object]]:
    """The table as CSV rows: headers, then the values as the page prints them."""
    return [table.headers, *[[format_cell(v) for v in row] for row in table.rows]]
