"""Chart labels stay readable: clustered quadrant points get labels that do not overlap,
and a stacked bar's total sits below the legend."""

from __future__ import annotations

import re

from siyu.kit import charts


def test_labels_of_clustered_quadrant_points_do_not_overlap() -> None:
    points = [("物流", 0.30, 0.62), ("口味", 0.29, 0.63), ("产品功效", 0.05, 0.80),
              ("价格", 0.04, 0.80), ("包装", 0.04, 0.81), ("客服", 0.03, 0.80)]
    svg = str(charts.quadrant_chart(points, title="t", x_label="x", y_label="y"))
    labels = re.findall(r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="(start|end)"[^>]*>'
                        r"([^<]+)</text></g>", svg)
    assert len(labels) == len(points)
    boxes = []
    for x, y, anchor, text in labels:
        w = charts._text_width(text)
        x0 = float(x) if anchor == "start" else float(x) - w
        boxes.append((x0, float(y) - 12, x0 + w, float(y) + 2))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_a_stacked_bars_total_sits_below_the_legend() -> None:
    svg = str(charts.stacked_bar_chart(["11月"], [charts.Series("回流期", [25.0])], title="t"))
    total_y = float(re.search(r'<text class="value" x="[\d.]+" y="([\d.]+)"', svg).group(1))
    legend_y = float(re.search(r'<g class="legend-item">.*?<text x="[\d.]+" y="([\d.]+)"',
                               svg).group(1))
    assert total_y - 12 > legend_y + 2


def test_a_line_charts_last_label_fits_inside_the_picture() -> None:
    """The dashboard's fan trend cut its last month to 「26-1」."""
    svg = str(charts.line_chart(["26-08", "26-09", "26-12"], [charts.Series("铁粉数", [5, 5, 6])],
                                title="t", width=480))
    labels = re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle"[^>]*>([^<]+)</text>',
                        svg)
    x, text = labels[-1]
    assert text == "26-12"
    assert float(x) + charts._text_width(text) / 2 <= 480
