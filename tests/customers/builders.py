"""Small builders of customers for the customers domain's tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.service import upsert_customers
from siyu.events.service import ingest

START = dt.datetime(2026, 6, 1, 2, 0)  # 10:00 Beijing time


def loyal_customer(sessions: sessionmaker[Session], settings: Settings, *, days: int = 40,
                   attributes: dict[str, Any] | None = None) -> int:
    """A customer with, on each of ``days`` days, an order, a coupon and a login; and an
    after-sales request every tenth day."""
    with sessions() as s:
        cid = upsert_customers(s, [{"id": "L1", "name": "林晓雯", "identities": [
            {"kind": "phone", "value": "13800138000"}],
            "attributes": attributes or {}}], settings=settings).customer_ids[0]
        orders, events = [], []
        for day in range(days):
            ts = (START + dt.timedelta(days=day)).isoformat()
            orders.append({"id": f"O{day:03d}", "customer_id": "L1", "ts": ts, "amount": 99,
                           "status": "completed", "channel": "tmall"})
            events.append({"id": f"c{day}", "customer_id": "L1", "type": "coupon_used",
                           "ts": ts, "channel": "app"})
            events.append({"id": f"l{day}", "customer_id": "L1", "type": "app_login",
                           "ts": ts, "channel": "app"})
            if day % 10 == 0:
                events.append({"id": f"a{day}", "customer_id": "L1",
                               "type": "after_sales_request", "ts": ts, "channel": "app"})
        ingest(s, "orders", orders, settings=settings)
        ingest(s, "events", events, settings=settings)
        s.commit()
    return cid
