"""SVG chart helpers: values as text, escaped labels, bounded geometry."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from siyu.kit import charts

NS = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_bar_chart_writes_each_value_and_scales_to_the_largest() -> None:
    svg = charts.bar_chart([("成长期", 30), ("流失", 120), ("回流", 0)], title="阶段")
    root = _parse(svg)
    bars = root.findall(f"{NS}g")
    assert [(g.get("data-label"), g.get("data-value")) for g in bars] == [
        ("成长期", "30"), ("流失", "120"), ("回流", "0")]
    widths = [float(rect.get("width", "nan")) for g in bars
              if (rect := g.find(f"{NS}rect")) is not None]
    assert widths[1] == 380.0 and widths[0] == 95.0 and widths[2] == 0.0
    assert root.find(f"{NS}title").text == "阶段"  # type: ignore[union-attr]


def test_labels_are_escaped() -> None:
    svg = charts.bar_chart([('<script>"x"</script>', 1)], title="a&b")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    _parse(svg)


def test_stacked_bars_histogram_line_funnel_progress() -> None:
    stacked = _parse(charts.stacked_bar_chart(
        ["01", "02"], [charts.Series("流失", [3, 0]), charts.Series("回流", [1, 2])],
        title="变化"))
    stacks = [g for g in stacked.iter(f"{NS}g") if g.get("class") == "stack"]
    assert [(g.get("data-label"), g.get("data-value")) for g in stacks] == [("01", "4"),
                                                                            ("02", "2")]
    assert len(stacks[0].findall(f"{NS}rect")) == 2 and len(stacks[1].findall(f"{NS}rect")) == 1
    hist = _parse(charts.histogram([("0–100", 5), ("≥100", 10)], title="CLV"))
    assert [g.get("data-value") for g in hist.iter(f"{NS}g")] == ["5", "10"]
    line = _parse(charts.line_chart(["a", "b", "c"], [charts.Series("x", [1, 2, 3])],
                                    title="l"))
    assert len(list(line.iter(f"{NS}circle"))) == 3
    steps = _parse(charts.funnel([("客户池", 1000), ("铁粉", 250)], title="f"))
    texts = [t.text for t in steps.iter(f"{NS}text")]
    assert texts == ["客户池 1,000（100%）", "铁粉 250（25%）"]
    bar = charts.progress(250, 1000, title="铁粉", unit=" 位")
    assert "250 / 1,000 位（25.0%）" in bar
    filled = re.search(r'width="(\d+\.\d)" height="22" rx="11" fill="#16a34a"', bar)
    assert filled is not None and filled.group(1) == "139.0"  # 556 px x 25%
    # Past the goal the bar is full and the real count is still shown.
    assert "1,500 / 1,000（100.0%）" in charts.progress(1500, 1000, title="满")
