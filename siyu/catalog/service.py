"""Catalogue writes and reads: products with consumption cycles and bundles.

An import is validated as a whole before anything is written: a row whose bundle names an
SKU that is neither in the catalogue nor in the file, or whose bundles form a loop, is
rejected with its reason. The other rows land (upserted by SKU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.catalog.models import Product
from siyu.catalog.schemas import ProductIn
from siyu.kit.validation import BatchValidator, RecordError, check_records

_VALIDATOR: BatchValidator[ProductIn] = BatchValidator(ProductIn)


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    rejected: list[RecordError] = field(default_factory=list)


def upsert_products(session: Session, records: Sequence[Any]) -> UpsertResult:
    """Create or update products by SKU; see the module docstring. The last row of a SKU
    repeated in one batch wins."""
    checked = check_records(_VALIDATOR, records)
    result = UpsertResult(rejected=list(checked.rejected))
    existing = {p.sku: p for p in session.scalars(select(Product))}
    incoming: dict[str, tuple[int, ProductIn]] = {}
    for index, rec in checked.valid:
        incoming[rec.sku] = (index, rec)
    known = set(existing) | set(incoming)
    good: dict[str, ProductIn] = {}
    for sku, (index, rec) in incoming.items():
        problem = _bundle_problem(rec, known)
        if problem:
            result.rejected.append(RecordError(index, sku, [{"field": "bundle_of",
                                                             "reason": problem}]))
            continue
        good[sku] = rec
    graph = {sku: [c["sku"] for c in p.bundle_of] for sku, p in existing.items()}
    graph.update({sku: [c.sku for c in rec.bundle_of] for sku, rec in good.items()})
    for sku in list(good):
        if _loops(sku, graph):
            index = incoming[sku][0]
            result.rejected.append(RecordError(index, sku, [{
                "field": "bundle_of", "reason": "bundles contain each other in a loop"}]))
            del good[sku]
            graph[sku] = [c["sku"] for c in existing[sku].bundle_of] if sku in existing else []
    dropped = True
    while dropped:  # a bundle of a rejected new product cannot land either
        dropped = False
        for sku, rec in list(good.items()):
            problem = _bundle_problem(rec, set(existing) | set(good))
            if problem:
                result.rejected.append(RecordError(incoming[sku][0], sku, [{
                    "field": "bundle_of", "reason": problem}]))
                del good[sku]
                dropped = True
    for sku, rec in good.items():
        values = {"name": rec.name, "category": rec.category, "price": rec.price,
                  "cycle_days": rec.cycle_days,
                  "bundle_of": [c.model_dump() for c in rec.bundle_of]}
        product = existing.get(sku)
        if product is None:
            product = Product(sku=sku, **values)
            session.add(product)
            existing[sku] = product
            result.created += 1
        else:
            for name, value in values.items():
                setattr(product, name, value)
            result.updated += 1
    _refresh_effective_cycles(existing)
    session.flush()
    result.rejected.sort(key=lambda e: e.index)
    return result


def _bundle_problem(rec: ProductIn, known: set[str]) -> str | None:
    for item in rec.bundle_of:
        if item.sku == rec.sku:
            return "a bundle cannot contain itself"
        if item.sku not in known:
            return f"bundle component {item.sku} is not in the catalogue"
    return None


def _loops(start: str, graph: dict[str, list[str]]) -> bool:
    stack, seen = list(graph.get(start, [])), set()
    while stack:
        sku = stack.pop()
        if sku == start:
            return True
        if sku not in seen:
            seen.add(sku)
            stack.extend(graph.get(sku, []))
    return False


def _refresh_effective_cycles(products: dict[str, Product]) -> None:
    memo: dict[str, float | None] = {}

    def cycle(sku: str, depth: int = 0) -> float | None:
        if sku in memo:
            return memo[sku]
        product = products.get(sku)
        value: float | None = None
        if product is not None and depth < 20:
            if product.cycle_days is not None:
                value = float(product.cycle_days)
            elif product.bundle_of:
                parts = [(cycle(c["sku"], depth + 1), int(c.get("quantity", 1)))
                         for c in product.bundle_of]
                total = sum(days * qty for days, qty in parts if days is not None)
                value = total or None
        memo[sku] = value
        return value

    for sku, product in products.items():
        value = cycle(sku)
        if product.effective_cycle_days != value:
            product.effective_cycle_days = value


def product_to_dict(p: Product) -> dict[str, Any]:
    return {"sku": p.sku, "name": p.name, "category": p.category, "price": p.price,
            "cycle_days": p.cycle_days, "bundle_of": list(p.bundle_of),
            "effective_cycle_days": p.effective_cycle_days}


def list_products(session: Session) -> list[dict[str, Any]]:
    return [product_to_dict(p) for p in session.scalars(select(Product).order_by(Product.sku))]


def products_by_sku(session: Session, skus: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The catalogue rows of ``skus`` that exist, by SKU."""
    if not skus:
        return {}
    rows = session.scalars(select(Product).where(Product.sku.in_(list(set(skus)))))
    return {p.sku: product_to_dict(p) for p in rows}


def bundles_containing(session: Session, sku: str) -> list[dict[str, Any]]:
    """Bundles that contain ``sku`` (what to recommend when it runs out)."""
    return [product_to_dict(p) for p in session.scalars(select(Product).order_by(Product.sku))
            if any(c.get("sku") == sku for c in p.bundle_of)]
