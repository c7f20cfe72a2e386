"""SVG charts: named images, every value in words, hatching said in words, text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from plugin.insights.charts import Table, bar_chart, csv_rows, format_cell

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: object) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 (our own output, not untrusted input)


def _table(**kw: object) -> Table:
    base: dict[str, object] = {
        "key": "demo",
        "caption": "Meetings <by> month",
        "headers": ("Month", "Meetings"),
        "rows": [("May", 4), ("June", 2.5), ("July", None)],
        "description": "Held meetings.",
    }
    base.update(kw)
    return Table(**base)  # type: ignore[arg-type]


def test_a_chart_is_a_named_image_with_every_value_as_text() -> None:
    svg = _parse(bar_chart(_table()))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "chart-demo-title chart-demo-desc"
    title = svg.find(f"{SVG}title")
    desc = svg.find(f"{SVG}desc")
    assert title is not None
    assert title.text == "Meetings <by> month"  # escaped in the markup, read back as text
    assert desc is not None
    assert desc.text == "Held meetings. May: 4; June: 2.5; July: no data."
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert texts == ["May", "4", "June", "2.5", "July", "no data"]
    bars = list(svg.iter(f"{SVG}rect"))
    assert [float(b.get("width", 0)) for b in bars] == [300.0, 187.5]  # scaled to the largest
    assert all(b.get("fill") == "#0b5cad" for b in bars)


def test_a_marked_bar_is_hatched_and_says_why() -> None:
    svg = _parse(bar_chart(_table(marked={1: "month so far"})))
    pattern = svg.find(f"{SVG}defs/{SVG}pattern")
    assert pattern is not None
    assert pattern.get("id") == "chart-demo-hatch"
    fills = [b.get("fill") for b in svg.iter(f"{SVG}rect") if b.get("height") == "18"]
    assert fills == ["#0b5cad", "url(#chart-demo-hatch)"]
    assert "2.5 (month so far)" in [t.text for t in svg.iter(f"{SVG}text")]


def test_hostile_labels_stay_text() -> None:
    markup = str(bar_chart(_table(rows=[('<script>alert(1)</script>"', 1)])))
    assert "<script>" not in markup
    _parse(markup)  # still well-formed


def test_numbers_read_the_same_in_every_form() -> None:
    assert [format_cell(v) for v in (3, 2.0, 0.5, 66.67, None)] == [
        "3",
        "2",
        "0.5",
        "66.67",
        "no data",
    ]
    assert csv_rows(_table()) == [
        ("Month", "Meetings"),
        ["May", "4"],
        ["June", "2.5"],
        ["July", "no data"],
    ]
