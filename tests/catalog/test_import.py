"""``siyu import products``: the catalogue with cycles and bundles."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.catalog.importer import import_products
from siyu.catalog.models import Product

CSV = """sku,name,category,price,cycle_days,bundle_of
OAT,燕麦片 1kg,oats,59,30,
NUT,每日坚果 30 袋,nuts,129,30,
DUO,燕麦坚果组合装,bundle,169,,OAT*2|NUT
BAD,坏组合,bundle,10,,GHOST*2
NEG,负周期,oats,10,-3,
"""


def test_import_products_with_bundles_and_rejects(
        tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    path = tmp_path / "products.csv"
    path.write_text(CSV, encoding="utf-8")
    summary = import_products(sessions, path)
    assert (summary["rows"], summary["accepted"], summary["rejected"]) == (5, 3, 2)
    reasons = (tmp_path / "products.csv.rejects.csv").read_text(encoding="utf-8")
    assert "5,BAD" in reasons and "GHOST" in reasons
    assert "6," in reasons and "cycle_days" in reasons
    with sessions() as s:
        products = {p.sku: p for p in s.scalars(select(Product))}
    assert set(products) == {"OAT", "NUT", "DUO"}
    assert products["DUO"].bundle_of == [{"sku": "OAT", "quantity": 2},
                                         {"sku": "NUT", "quantity": 1}]
    assert products["DUO"].effective_cycle_days == 90.0
    assert products["OAT"].effective_cycle_days == 30.0

    # Re-importing updates by SKU, and a component's new cycle flows into its bundles.
    path.write_text("sku,name,cycle_days\nOAT,燕麦片 1kg,45\n", encoding="utf-8")
    again = import_products(sessions, path)
    assert (again["accepted"], again["updated"], again["rejected"]) == (0, 1, 0)
    with sessions() as s:
        duo = s.get(Product, "DUO")
        assert duo is not None and duo.effective_cycle_days == 120.0


def test_bundle_loops_are_rejected(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"sku": "A", "name": "a", "cycle_days": 10}\n'
                    '{"sku": "B", "name": "b", "bundle_of": "A|C"}\n'
                    '{"sku": "C", "name": "c", "bundle_of": [{"sku": "B", "quantity": 1}]}\n',
                    encoding="utf-8")
    summary = import_products(sessions, path)
    assert summary["accepted"] == 1
    assert summary["rejected"] == 2
