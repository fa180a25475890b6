"""What counts as a purchase: the one definition every count, total, recency and score uses.

An order is a purchase once it is paid and as long as it is not failed, cancelled or
refunded: ``paid``, ``shipped``, ``delivered`` and ``completed``. An order still ``created``
(待支付) is not yet a purchase; ``payment_failed``, ``cancelled`` and ``refunded`` never are.
The 360 header, the agent sidebar, RFM and CLV, segments (orders/spend/AOV) and "最近下单"
all read this module, so they agree. A new order status (journeys) is added to
``PURCHASE_STATUSES`` when it means the money was taken and kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from siyu.events.models import Order

PURCHASE_STATUSES: tuple[str, ...] = ("paid", "shipped", "delivered", "completed")
"""Order statuses that are purchases (paid, and not failed, cancelled or refunded)."""


def is_purchase_status(status: str) -> bool:
    """Whether an order in ``status`` is a purchase."""
    return status in PURCHASE_STATUSES


def is_purchase() -> ColumnElement[bool]:
    """SQL condition on ``orders``: the order is a purchase."""
    return Order.status.in_(PURCHASE_STATUSES)


@dataclass(frozen=True)
class PurchaseStats:
    """A customer's purchases: how many, how much, first and last."""

    count: int
    total_amount: float
    first_at: dt.datetime | None
    last_at: dt.datetime | None


def purchase_stats(session: Session, customer_id: int) -> PurchaseStats:
    """Count, total (rounded to the cent), first and last time of a customer's purchases."""
    row = session.execute(
        select(func.count(), func.coalesce(func.sum(Order.amount), 0.0), func.min(Order.ts),
               func.max(Order.ts))
        .where(Order.customer_id == customer_id, is_purchase())
    ).one()
    return PurchaseStats(int(row[0]), round(float(row[1]), 2), row[2], row[3])
