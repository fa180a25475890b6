"""Where the tests find their data.

Data whose licence allows it ships in ``tests/data`` (see its README): WeCom's documented
callback vector and the CDNOW sample from the MIT-licensed ``lifetimes`` wheel. Data sets of
unstated licence (SMP2019, waimai) are read from ``SIYU_SHARED_DATA`` or ``../shared/data``
when present; a test that needs one is skipped with a one-line reason otherwise.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

TEST_DATA = Path(__file__).resolve().parent / "data"
CDNOW_SAMPLE = TEST_DATA / "cdnow" / "CDNOW_sample.txt"
WECOM_VECTOR = TEST_DATA / "wecom" / "official_vector.json"


def shared_data_dir() -> Path | None:
    """The folder of shared data sets, or None when this machine has none.

    ``SIYU_SHARED_DATA`` names it; without it, ``../shared/data`` beside the repository is
    used when it exists. A fresh clone with nothing beside it has neither.
    """
    configured = os.environ.get("SIYU_SHARED_DATA", "").strip()
    path = Path(configured) if configured else (
        Path(__file__).resolve().parents[2] / "shared" / "data")
    return path if path.is_dir() else None


def shared_data_set(name: str) -> Path:
    """The shared data set ``name``, or skip the calling test with a one-line reason."""
    root = shared_data_dir()
    if root is None:
        pytest.skip(f"{name}: shared data absent (set SIYU_SHARED_DATA or place "
                    "../shared/data beside the repository)")
    path = root / name
    if not path.is_dir():
        pytest.skip(f"{name}: not found in {root}")
    return path


def wecom_vector() -> dict[str, Any]:
    """WeCom's documented callback example (tests/data/wecom/SOURCE.md)."""
    data: dict[str, Any] = json.loads(WECOM_VECTOR.read_text(encoding="utf-8"))
    return data


def cdnow_orders() -> list[dict[str, str]]:
    """The CDNOW sample as siyu order rows: customer_id, order_id, ts, amount, quantity.

    Order ids are made from line numbers (``cdnow-1`` ...), the date becomes ISO 8601 and
    the amount keeps its printed digits, so the rows are exactly what the file says.
    """
    rows: list[dict[str, str]] = []
    lines = CDNOW_SAMPLE.read_text(encoding="ascii").splitlines()
    for number, line in enumerate(lines, start=1):
        customer, _sample_id, day, quantity, amount = line.split()
        rows.append({
            "customer_id": customer,
            "order_id": f"cdnow-{number}",
            "ts": dt.datetime.strptime(day, "%Y%m%d").date().isoformat(),
            "amount": amount,
            "quantity": quantity,
        })
    return rows


def write_cdnow_orders_csv(path: Path) -> Path:
    """Write the CDNOW sample as an orders CSV (``siyu import orders``) at ``path``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["customer_id", "order_id", "ts", "amount",
                                                    "quantity"])
        writer.writeheader()
        writer.writerows(cdnow_orders())
    return path
