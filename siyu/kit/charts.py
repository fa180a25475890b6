"""Small server-side SVG charts for the console: bar, stacked bar, line, histogram, funnel
and progress. Each function returns safe inline ``<svg>`` markup (``markupsafe.Markup``)
with the numbers written as text, so pages need no JavaScript and tests can read values.

Every label and title is escaped; sizes are in CSS pixels and the SVG scales to its
container (``viewBox`` + ``width="100%"``). Colours come from one palette; series keep
their colour across charts when given in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE: tuple[str, ...] = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2",
                            "#db2777", "#65a30d", "#ea580c", "#475569")
_TEXT = "#334155"
_GRID = "#e2e8f0"
_FONT = 'font-family="system-ui, sans-serif"'


@dataclass(frozen=True)
class Series:
    """A named series of values, one per category."""

    name: str
    values: Sequence[float]
    color: str | None = None


def _fmt(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def _svg(width: int, height: int, body: list[str], *, title: str, css_class: str) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css_class)}" '
            f'viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="{escape(title)}" {_FONT} font-size="12">'
            f"<title>{escape(title)}</title>")
    return Markup(head + "".join(body) + "</svg>")


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def bar_chart(items: Sequence[tuple[str, float]], *, title: str, width: int = 560,
              bar_height: int = 26, label_width: int = 110, color: str = PALETTE[0],
              value_format: str = "{}") -> Markup:
    """Horizontal bars, one per ``(label, value)``, each with its value at the end."""
    gap = 8
    height = max(len(items), 1) * (bar_height + gap) + gap
    top = max((v for _, v in items), default=0.0)
    span = width - label_width - 70
    body: list[str] = []
    for i, (label, value) in enumerate(items):
        y = gap + i * (bar_height + gap)
        length = 0.0 if top <= 0 else span * value / top
        body.append(
            f'<g class="bar" data-label="{escape(label)}" data-value="{_fmt(value)}">'
            f'<text x="{label_width - 8}" y="{y + bar_height / 2 + 4:.1f}" text-anchor="end" '
            f'fill="{_TEXT}">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" '
            f'rx="3" fill="{escape(color)}"/>'
            f'<text class="value" x="{label_width + length + 6:.1f}" '
            f'y="{y + bar_height / 2 + 4:.1f}" fill="{_TEXT}">'
            f"{escape(value_format.format(_fmt(value)))}</text></g>")
    return _svg(width, height, body, title=title, css_class="bar-chart")


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    out = []
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        cx = x + i * 92
        out.append(f'<g class="legend-item"><rect x="{cx:.1f}" y="{y - 9:.1f}" width="10" '
                   f'height="10" rx="2" fill="{escape(color)}"/>'
                   f'<text x="{cx + 14:.1f}" y="{y:.1f}" fill="{_TEXT}">{escape(s.name)}</text>'
                   "</g>")
    return out


def stacked_bar_chart(categories: Sequence[str], series: Sequence[Series], *, title: str,
                      width: int = 640, height: int = 260) -> Markup:
    """Vertical bars per category, stacked by series; each bar's total is written on top
    (below the legend: the tallest bar's total must not run into it)."""
    left, right, top, bottom = 44, 12, 42, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(categories), 1)
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    axis = _nice_max(max(totals, default=0.0))
    slot = plot_w / n
    bar_w = max(min(slot * 0.6, 48), 2)
    body = _legend(series, left, 14)
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{_GRID}"/><text x="{left - 6}" y="{y + 4:.1f}" '
                    f'text-anchor="end" fill="{_TEXT}">{_fmt(axis * frac)}</text>')
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar_w) / 2
        base: float = top + plot_h
        parts = []
        for j, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / axis
            base -= h
            color = s.color or PALETTE[j % len(PALETTE)]
            parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                         f'height="{h:.1f}" fill="{escape(color)}">'
                         f"<title>{escape(category)} {escape(s.name)}: {_fmt(value)}</title>"
                         "</rect>")
        body.append(
            f'<g class="stack" data-label="{escape(category)}" data-value="{_fmt(totals[i])}">'
            + "".join(parts)
            + f'<text class="value" x="{x + bar_w / 2:.1f}" y="{base - 4:.1f}" '
              f'text-anchor="middle" fill="{_TEXT}">{_fmt(totals[i])}</text>'
            + f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 20:.1f}" '
              f'text-anchor="middle" fill="{_TEXT}">{escape(category)}</text></g>')
    return _svg(width, height, body, title=title, css_class="stacked-bar-chart")


def line_chart(categories: Sequence[str], series: Sequence[Series], *, title: str,
               width: int = 640, height: int = 240, label_every: int = 1) -> Markup:
    """One polyline per series over the categories, with a dot and value at each point.
    With ``label_every`` N the axis names every Nth category (counted back from the last,
    so the latest is named) and the dots' tooltips all of them: for long daily series."""
    # The last category's label is centred on the right edge of the plot: leave room for
    # half of it, or it is cut off ("26-1" for "26-12").
    last = _text_width(categories[-1]) / 2 + 4 if categories else 0.0
    left, right, top, bottom = 44, max(12, int(last)), 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    axis = _nice_max(max((v for s in series for v in s.values), default=0.0))
    step = plot_w / max(len(categories) - 1, 1)
    body = _legend(series, left, 14)
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{_GRID}"/><text x="{left - 6}" y="{y + 4:.1f}" '
                    f'text-anchor="end" fill="{_TEXT}">{_fmt(axis * frac)}</text>')
    for i, category in enumerate(categories):
        if (len(categories) - 1 - i) % max(label_every, 1):
            continue
        body.append(f'<text x="{left + i * step:.1f}" y="{height - bottom + 20:.1f}" '
                    f'text-anchor="middle" fill="{_TEXT}">{escape(category)}</text>')
    for j, s in enumerate(series):
        color = escape(s.color or PALETTE[j % len(PALETTE)])
        points = [(left + i * step, top + plot_h * (1 - v / axis)) for i, v in enumerate(s.values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                       f"<title>{escape(s.name)} {escape(categories[i])}: {_fmt(s.values[i])}"
                       "</title></circle>" for i, (x, y) in enumerate(points))
        body.append(f'<g class="line" data-label="{escape(s.name)}">'
                    f'<polyline points="{path}" fill="none" stroke="{color}" '
                    f'stroke-width="2"/>{dots}</g>')
    return _svg(width, height, body, title=title, css_class="line-chart")


def histogram(buckets: Sequence[tuple[str, float]], *, title: str, width: int = 640,
              height: int = 240, color: str = PALETTE[5]) -> Markup:
    """Adjacent vertical bars, one per ``(bucket label, count)``, counts written on top."""
    left, right, top, bottom = 12, 12, 22, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max((v for _, v in buckets), default=0.0)
    slot = plot_w / max(len(buckets), 1)
    body = []
    for i, (label, value) in enumerate(buckets):
        h = 0.0 if top_value <= 0 else plot_h * value / top_value
        x = left + i * slot
        y = top + plot_h - h
        body.append(
            f'<g class="bin" data-label="{escape(label)}" data-value="{_fmt(value)}">'
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" height="{h:.1f}" '
            f'fill="{escape(color)}"/>'
            f'<text class="value" x="{x + slot / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
            f'fill="{_TEXT}">{_fmt(value)}</text>'
            f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 16:.1f}" '
            f'text-anchor="middle" fill="{_TEXT}">{escape(label)}</text></g>')
    return _svg(width, height, body, title=title, css_class="histogram")


def funnel(stages: Sequence[tuple[str, float]], *, title: str, width: int = 560,
           step_height: int = 40) -> Markup:
    """Centred bars narrowing with the values, each with its count and the share of the
    first stage."""
    height = max(len(stages), 1) * (step_height + 6) + 6
    first = stages[0][1] if stages else 0.0
    body = []
    for i, (label, value) in enumerate(stages):
        share = 0.0 if first <= 0 else value / first
        w = max(width * 0.9 * share, 4.0)
        x = (width - w) / 2
        y = 6 + i * (step_height + 6)
        body.append(
            f'<g class="funnel-step" data-label="{escape(label)}" data-value="{_fmt(value)}">'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{step_height}" rx="4" '
            f'fill="{PALETTE[i % len(PALETTE)]}" opacity="0.85"/>'
            f'<text class="value" x="{width / 2:.1f}" y="{y + step_height / 2 + 4:.1f}" '
            f'text-anchor="middle" fill="#0f172a">{escape(label)} {_fmt(value)}'
            f"（{share:.0%}）</text></g>")
    return _svg(width, height, body, title=title, css_class="funnel")


def progress(value: float, goal: float, *, title: str, width: int = 560,
             unit: str = "") -> Markup:
    """A progress bar of ``value`` towards ``goal`` with "value / goal（percent）"."""
    height = 56
    share = 0.0 if goal <= 0 else min(value / goal, 1.0)
    inner = width - 4
    label = f"{_fmt(value)} / {_fmt(goal)}{unit}（{share:.1%}）"
    body = [
        f'<g class="progress" data-value="{_fmt(value)}" data-goal="{_fmt(goal)}">'
        f'<rect x="2" y="24" width="{inner}" height="22" rx="11" fill="{_GRID}"/>'
        f'<rect x="2" y="24" width="{max(inner * share, 0):.1f}" height="22" rx="11" '
        f'fill="{PALETTE[1]}"/>'
        f'<text class="value" x="2" y="16" fill="{_TEXT}" font-size="14">{escape(label)}'
        "</text></g>"]
    return _svg(width, height, body, title=title, css_class="progress-chart")


def _text_width(text: str) -> float:
    """About how wide ``text`` is at the charts' 12px font (CJK glyphs are square)."""
    return sum(12.5 if ord(ch) > 0x2E80 else 7.0 for ch in text)


def _free_label_spot(label: str, x: float, y: float,
                     placed: list[tuple[float, float, float, float]]
                     ) -> tuple[float, float, str]:
    """Where a point's label goes: right of the dot, else left of it, else stepped down or
    up until it overlaps no label already placed (whose boxes ``placed`` holds; this one's
    is added)."""
    w, h = _text_width(label), 14.0
    for dy in (0.0, 14.0, -14.0, 28.0, -28.0, 42.0, -42.0, 56.0):
        for anchor in ("start", "end"):
            lx = x + 9 if anchor == "start" else x - 9
            x0 = lx if anchor == "start" else lx - w
            box = (x0, y + dy - 8, x0 + w, y + dy - 8 + h)
            if all(box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3]
                   for b in placed):
                placed.append(box)
                return lx, y + dy + 4, anchor
    placed.append((x + 9, y - 8, x + 9 + w, y + 6))
    return x + 9, y + 4, "start"


def quadrant_chart(points: Sequence[tuple[str, float, float]], *, title: str,
                   x_label: str, y_label: str, x_split: float | None = None,
                   y_split: float | None = None, quadrant_labels: Sequence[str] = (),
                   width: int = 560, height: int = 380,
                   links: Sequence[str | None] = ()) -> Markup:
    """Labelled points ``(label, x, y)`` on two axes split into four quadrants (at the means
    unless ``x_split`` / ``y_split`` are given). ``quadrant_labels`` name the quadrants
    top-right, top-left, bottom-left, bottom-right; ``links`` make points clickable."""
    left, right, top, bottom = 48, 16, 16, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [p[1] for p in points] or [0.0]
    ys = [p[2] for p in points] or [0.0]
    x_max = _nice_max(max(xs)) if max(xs) > 0 else 1.0
    y_lo, y_hi = min(0.0, min(ys)), max(1.0, max(ys))
    xs_ = x_split if x_split is not None else sum(xs) / len(xs)
    ys_ = y_split if y_split is not None else sum(ys) / len(ys)

    def px(x: float) -> float:
        return left + plot_w * x / x_max

    def py(y: float) -> float:
        return top + plot_h * (1 - (y - y_lo) / (y_hi - y_lo))

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
            f'stroke="{_GRID}"/>',
            f'<line x1="{px(xs_):.1f}" x2="{px(xs_):.1f}" y1="{top}" y2="{top + plot_h}" '
            f'stroke="{_GRID}" stroke-dasharray="4 3"/>',
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(ys_):.1f}" y2="{py(ys_):.1f}" '
            f'stroke="{_GRID}" stroke-dasharray="4 3"/>',
            f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle" '
            f'fill="{_TEXT}">{escape(x_label)}</text>',
            f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" fill="{_TEXT}" '
            f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{escape(y_label)}</text>']
    corners = [(left + plot_w - 6, top + 14, "end"), (left + 6, top + 14, "start"),
               (left + 6, top + plot_h - 6, "start"), (left + plot_w - 6, top + plot_h - 6,
                                                       "end")]
    for (cx, cy, anchor), label in zip(corners, quadrant_labels, strict=False):
        body.append(f'<text class="quadrant" x="{cx}" y="{cy}" text-anchor="{anchor}" '
                    f'fill="#94a3b8">{escape(label)}</text>')
    placed: list[tuple[float, float, float, float]] = []
    for i, (label, x, y) in enumerate(points):
        lx, ly, anchor = _free_label_spot(label, px(x), py(y), placed)
        dot = (f'<g class="point" data-label="{escape(label)}" data-x="{x:.4f}" '
               f'data-y="{y:.4f}"><circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="6" '
               f'fill="{PALETTE[i % len(PALETTE)]}"/><text x="{lx:.1f}" y="{ly:.1f}" '
               f'text-anchor="{anchor}" fill="{_TEXT}">{escape(label)}</text></g>')
        link = links[i] if i < len(links) else None
        body.append(f'<a href="{escape(link)}">{dot}</a>' if link else dot)
    return _svg(width, height, body, title=title, css_class="quadrant-chart")
