"""The console crawl's eyes: what a newcomer would notice on one page.

``inspect_page`` gathers, in the browser, the visible text (outside ``code``, ``pre``,
``textarea``, form fields and elements marked ``data-raw``, where code-like text belongs) and
the boxes of every visible text run; ``defects`` turns that, the page's HTTP answers and its
console messages into one readable line per defect:

* an HTTP error on the page or anything it loads, a browser-console error or an uncaught
  exception;
* visible text that looks like an internal identifier: snake_case words, raw ISO timestamps,
  English words outside :data:`ALLOWED_WORDS` (brand, product and trade names);
* half-width punctuation between Chinese characters (or ending a Chinese sentence);
* text running out of its box, a page wider than the window, and text drawn over text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# English a Chinese console legitimately shows: trade names, units and the acronyms the
# trade uses in Chinese too. Anything else in English is someone's identifier leaking.
ALLOWED_WORDS = {
    # products and channels people know by these names
    "app", "wecom", "wechat", "sms", "siyu", "api", "csv", "json", "yaml", "url", "sdk",
    "email", "vip", "kol", "sku", "id", "ip", "ok",
    # metrics the trade names in English
    "rfm", "ltv", "cac", "clv", "nps", "csat", "ces", "roi", "gmv", "aov", "bg", "nbd",
    "top", "auc",
    # the demo brand's products, couriers and order-id prefixes
    "hy", "sf", "zt", "sc", "sof", "whey", "oat", "col", "nut", "meal", "pro", "snk", "gift",
    "pm", "am",
}
# Demo data values that are identifiers by nature (openids, parcel and order numbers) are
# data, not leaks: mixed-case tokens with digits are left alone.
_DATA_TOKEN = re.compile(r"(?<![\w*-])(?=[A-Za-z0-9*-]*\d)[A-Za-z0-9*-]{6,}(?![\w*-])")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b")
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_ISO = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_WORD = re.compile(r"[A-Za-z]{2,}")
_HAN = r"[\u3400-\u9fff]"
_HALF_WIDTH = re.compile(rf"{_HAN}[,:;?!](?=\s*(?:{_HAN}|$))")

# Runs in the page: visible text runs with their element, boxes and overflow.
_COLLECT = r"""() => {
  const SKIP = new Set(['SCRIPT','STYLE','CODE','PRE','TEXTAREA','INPUT','SELECT','OPTION',
                        'NOSCRIPT','TEMPLATE']);
  const skipped = (el) => {
    for (let e = el; e; e = e.parentElement) {
      if (SKIP.has(e.tagName) || e.hasAttribute('data-raw')) return true;
    }
    return false;
  };
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    if (el.classList.length) s += '.' + Array.from(el.classList).join('.');
    const parent = el.parentElement;
    return parent ? describe1(parent) + ' > ' + s : s;
  };
  const describe1 = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    if (el.classList.length) s += '.' + el.classList[0];
    return s;
  };
  const runs = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.replace(/\s+/g, ' ').trim();
    const el = node.parentElement;
    if (!text || !el || skipped(el)) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    if (!el.getClientRects().length) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const rects = Array.from(range.getClientRects())
      .filter(r => r.width > 1 && r.height > 1)
      .map(r => [r.left, r.top, r.right, r.bottom]);
    if (!rects.length) continue;
    // Does the text run out of the box that should hold it (the nearest block-level or
    // overflow-clipping ancestor)?
    let box = el;
    while (box.parentElement && getComputedStyle(box).display.startsWith('inline')) {
      box = box.parentElement;
    }
    const b = box.getBoundingClientRect();
    const clip = getComputedStyle(box).overflowX !== 'visible';
    const spill = clip ? 0 : Math.max(0, ...rects.map(r => r[2] - b.right),
                                      ...rects.map(r => b.left - r[0]));
    runs.push({text, where: describe(el), rects, spill, svg: !!el.closest('svg')});
  }
  return {
    runs,
    pageWidth: document.documentElement.scrollWidth,
    windowWidth: window.innerWidth,
  };
}"""


@dataclass
class Visit:
    """What one page visit saw."""

    url: str
    status: int
    failed_loads: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


def inspect_page(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(_COLLECT)
    return result


def _overlaps(a: list[float], b: list[float]) -> bool:
    """Do two text boxes cover each other by more than a quarter of the smaller one? (A
    glyph's box is taller than its line at a tight line-height, so a sliver is no defect.)"""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w > 1 and h > 1 and w * h > 0.25 * smaller


def text_defects(text: str) -> list[str]:
    """What a person would find wrong with one visible text run."""
    found = []
    cleaned = _EMAIL.sub(" ", text)
    cleaned = _DATA_TOKEN.sub(" ", cleaned)
    for m in _SNAKE.finditer(cleaned):
        found.append(f"internal identifier {m.group(0)!r}")
    if _ISO.search(text):
        found.append("raw ISO timestamp")
    cleaned = _SNAKE.sub(" ", cleaned)
    english = sorted({w for w in _WORD.findall(cleaned) if w.lower() not in ALLOWED_WORDS})
    if english:
        found.append(f"English {', '.join(english)}")
    for m in _HALF_WIDTH.finditer(text):
        found.append(f"half-width {m.group(0)[-1]!r} after {m.group(0)[0]}")
    return found


def defects(visit: Visit, seen: dict[str, Any]) -> list[str]:
    """One line per defect on the page."""
    out: list[str] = []
    if visit.status >= 400:
        out.append(f"HTTP {visit.status}")
    out += [f"failed to load {u}" for u in visit.failed_loads]
    out += [f"console error: {m}" for m in visit.console_errors]
    runs = seen["runs"]
    for run in runs:
        for problem in text_defects(run["text"]):
            out.append(f"{problem} in {run['where']}: {run['text'][:80]!r}")
        if run["spill"] > 2:
            out.append(f"text runs {run['spill']:.0f}px out of its box in {run['where']}: "
                       f"{run['text'][:40]!r}")
    if seen["pageWidth"] > seen["windowWidth"] + 2:
        out.append(f"page is {seen['pageWidth']}px wide in a {seen['windowWidth']}px window")
    boxes = sorted(((r, i) for i, run in enumerate(runs) for r in run["rects"]),
                   key=lambda x: x[0][1])
    reported: set[tuple[int, int]] = set()
    for k, (a, i) in enumerate(boxes):
        for b, j in boxes[k + 1:]:
            if b[1] >= a[3]:
                break
            if i != j and (min(i, j), max(i, j)) not in reported and _overlaps(a, b):
                reported.add((min(i, j), max(i, j)))
                out.append(f"text over text: {runs[i]['text'][:30]!r} ({runs[i]['where']}) "
                           f"and {runs[j]['text'][:30]!r} ({runs[j]['where']})")
    return out
