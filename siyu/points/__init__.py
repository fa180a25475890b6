"""Points ledger: append-only, idempotent entries per customer and the balance; the rewards
catalogue and redemption; points earned by purchases and taken back on refunds.

Importing the package registers the ingest hook that earns and reverses order points
(:func:`_after_rows`; off unless ``SIYU_POINTS_PER_YUAN`` is set) and awards reviews
(:func:`siyu.points.earn.for_reviews`; ``SIYU_POINTS_REVIEW``, not for a file import).
"""

from __future__ import annotations

from typing import Any

from siyu.events.hooks import register_after_rows

REVERSING_STATUSES = frozenset({"refunded", "cancelled"})


def _after_rows(session: Any, kind: str, rows: list[dict[str, Any]], source: str) -> None:
    from siyu.events.purchases import is_purchase_status
    from siyu.points import service
    from siyu.points.config import get_points_settings

    per_yuan = get_points_settings().points_per_yuan
    earn = per_yuan > 0 and source != "import"
    if kind == "orders":
        if not earn:
            return
        for row in rows:
            if is_purchase_status(str(row.get("status") or "paid")):
                service.earn_for_order(session, int(row["customer_id"]), str(row["id"]),
                                       float(row.get("amount") or 0), per_yuan=per_yuan)
        return
    if source != "import":
        from siyu.points import earn as earn_rules

        earn_rules.for_reviews(session, rows)
    for row in rows:
        if row.get("type") != "order_status_changed":
            continue
        props = row.get("properties") or {}
        order_id, to = str(props.get("order_id") or ""), str(props.get("to") or "")
        if not order_id:
            continue
        if to in REVERSING_STATUSES:
            service.reverse_order_points(session, int(row["customer_id"]), order_id)
        elif earn and is_purchase_status(to):
            from siyu.events.models import Order

            order = session.get(Order, order_id)
            if order is not None:
                service.earn_for_order(session, order.customer_id, order_id,
                                       float(order.amount), per_yuan=per_yuan)


register_after_rows("points.orders", _after_rows)
