"""One definition of a purchase (siyu/events/purchases.py): the 360 header, the agent
sidebar (the same 360 read), "最近下单", RFM and its explanation, and segment counts agree.

A purchase is paid and not failed, cancelled or refunded; an order still ``created``
(待支付) is not one yet.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics import service as analytics
from siyu.analytics.config import ScoringConfig
from siyu.analytics.models import CustomerScore
from siyu.config import Settings
from siyu.customers.service import get_customer_360
from siyu.events.purchases import PURCHASE_STATUSES, is_purchase_status, purchase_stats
from siyu.segments.service import count_rule
from tests.analytics.builders import add_customers, add_orders, at, end_of_today


def _shop(sessions: sessionmaker[Session], settings: Settings) -> int:
    with sessions() as s:
        [cid] = add_customers(s, settings, {"id": "P1", "name": "王芳"})
        add_orders(s, settings, "P1",
                   (10, 100.0, "completed"), (7, 40.0, "shipped"), (5, 50.0, "paid"),
                   (3, 30.0, "refunded"), (2, 77.0, "created"), (2, 20.0, "cancelled"),
                   (1, 999.0, "payment_failed"))
        s.commit()
    return cid


def test_purchase_statuses_are_paid_and_not_failed_cancelled_or_refunded() -> None:
    assert PURCHASE_STATUSES == ("paid", "shipped", "delivered", "completed")
    for status in ("created", "payment_failed", "cancelled", "refunded"):
        assert not is_purchase_status(status)


def test_header_sidebar_recency_rfm_and_segments_count_the_same_purchases(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = _shop(sessions, settings)
    last_purchase = dt.datetime.fromisoformat(at(5)).astimezone(dt.UTC)
    with sessions() as s:
        view = get_customer_360(s, cid)
        stats = purchase_stats(s, cid)
    # 360 header and agent sidebar (both read the 360 view); 最近下单 is the last purchase,
    # not the failed payment of yesterday nor the unpaid order of two days ago.
    assert view["orders"]["count"] == 3 == stats.count
    assert view["orders"]["total_amount"] == 190.0 == stats.total_amount
    assert dt.datetime.fromisoformat(view["orders"]["last_at"]) == last_purchase

    analytics.recompute_scores(sessions, now=end_of_today(), config=ScoringConfig())
    with sessions() as s:
        score = s.get(CustomerScore, cid)
        assert score is not None
        assert (score.orders_count, score.spend) == (3, 190.0)
        assert score.last_order_at == last_purchase
        rfm_why = score.explanations["rfm"]
        assert rfm_why.startswith("5 天前购买") and "3 笔订单" in rfm_why, rfm_why
        assert count_rule(s, "orders >= 3").count == 1
        assert count_rule(s, "orders >= 4").count == 0
        assert count_rule(s, "spend >= 190").count == 1
        assert count_rule(s, "spend > 190").count == 0
