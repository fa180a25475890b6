"""A small hand-made population whose membership of every rule form is known by heart.

``NOW`` is 2026-06-15 12:00 UTC (20:00 in Shanghai). Customers, by name:

* A  上海 female VIP, born 1990-06-15 (36 today); car_mileage 6200 (number), color "red";
  tag VIP; phone + WeCom; paid orders 1 and 10 days ago (100, 200) and 100 days ago (300);
  SMS marketing granted 50 days ago then withdrawn 20 days ago; coupon_used 5 days ago;
  scores: growth, last order 1 day ago; created 100 days ago; referred by F 5 days ago.
* B  北京 male 会员, born 1990-06-16 (35); car_mileage "4800" (string); tag 投诉中; phone;
  a paid order exactly 30 days ago (50) and a cancelled one 2 days ago (999); SMS marketing
  withdrawn 50 days ago then granted 20 days ago; coupon_used 31 days ago; scores: decline,
  last order 61 days ago; created exactly 10 days ago; referred by F 40 days ago.
* C  no city, tier or birthday; car_mileage "abc"; openid only; a paid order 30 days and
  1 second ago (500) and a refunded one 3 days ago; no events, consents or scores row;
  created 10 days minus 1 second ago.
* D  上海 VIP, born 2000-02-29 (26); tag VIP; WeCom only; no orders; view_product an hour
  ago; SMS marketing granted and withdrawn at the same instant (the later row wins);
  scores: acquisition, no orders; created 500 days ago.
* E  merged into A (status "merged"): VIP in 上海 with recent orders, never matches.
* F  上海 VIP; paid orders 400, 300 and 200 days ago (100 each); coupon_used 100 days ago;
  referred A and B; scores: churned, first order 400 and last order 200 days ago; created
  800 days ago.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics.models import CustomerScore
from siyu.customers.models import (
    Consent,
    Customer,
    CustomerTag,
    Identity,
    Referral,
    Tag,
)
from siyu.events.models import Event, Order
from tests.console.conftest import (  # noqa: F401  (the console fixtures, for console tests)
    live_server,
    login,
    make_user,
    staff,
)

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def ago(days: float = 0, seconds: float = 0) -> dt.datetime:
    return NOW - dt.timedelta(days=days, seconds=seconds)


@dataclass
class Population:
    ids: dict[str, int]

    def names(self, customer_ids: Iterable[int]) -> set[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id[c] for c in customer_ids}


def build_population(session: Session) -> Population:
    """Insert the population above (no commit)."""
    tags = {name: Tag(name=name) for name in ("VIP", "投诉中")}
    session.add_all(tags.values())
    specs: dict[str, dict[str, Any]] = {
        "A": {"city": "上海", "gender": "female", "tier": "VIP",
              "birthday": dt.date(1990, 6, 15),
              "attributes": {"car_mileage": 6200, "color": "red"}, "created_at": ago(100)},
        "B": {"city": "北京", "gender": "male", "tier": "会员", "birthday": dt.date(1990, 6, 16),
              "attributes": {"car_mileage": "4800"}, "created_at": ago(10)},
        "C": {"attributes": {"car_mileage": "abc"}, "created_at": ago(10, -1)},
        "D": {"city": "上海", "tier": "VIP", "birthday": dt.date(2000, 2, 29),
              "created_at": ago(500)},
        "E": {"city": "上海", "tier": "VIP", "status": "merged", "created_at": ago(300)},
        "F": {"city": "上海", "tier": "VIP", "created_at": ago(800)},
    }
    customers = {name: Customer(name=f"客户{name}", **spec) for name, spec in specs.items()}
    session.add_all(customers.values())
    session.flush()
    ids = {name: c.id for name, c in customers.items()}
    customers["E"].merged_into_id = ids["A"]

    def ident(name: str, kind: str, value: str) -> Identity:
        return Identity(customer_id=ids[name], kind=kind, value=value)

    session.add_all([
        ident("A", "phone", "+8613800138001"), ident("A", "wecom_external_userid", "wmA"),
        ident("A", "external_id", "EXT-A"),
        ident("B", "phone", "+8613800138002"), ident("B", "external_id", "EXT-B"),
        ident("C", "wechat_openid", "oC"),
        ident("D", "wecom_external_userid", "wmD"),
        ident("E", "wecom_external_userid", "wmE"),
        ident("F", "phone", "+8613800138006"),
    ])
    session.flush()
    session.add_all([
        CustomerTag(customer_id=ids["A"], tag_id=tags["VIP"].id),
        CustomerTag(customer_id=ids["B"], tag_id=tags["投诉中"].id),
        CustomerTag(customer_id=ids["D"], tag_id=tags["VIP"].id),
        CustomerTag(customer_id=ids["E"], tag_id=tags["VIP"].id),
    ])

    orders = [
        ("A", ago(1), 100.0, "paid"), ("A", ago(10), 200.0, "completed"),
        ("A", ago(100), 300.0, "delivered"),
        ("B", ago(30), 50.0, "paid"), ("B", ago(2), 999.0, "cancelled"),
        ("C", ago(30, 1), 500.0, "paid"), ("C", ago(3), 700.0, "refunded"),
        ("E", ago(1), 100.0, "paid"), ("E", ago(2), 100.0, "paid"),
        ("E", ago(3), 100.0, "paid"),
        ("F", ago(400), 100.0, "paid"), ("F", ago(300), 100.0, "paid"),
        ("F", ago(200), 100.0, "paid"),
    ]
    session.add_all([Order(id=f"O{i}", customer_id=ids[n], ts=ts, amount=amount, status=st)
                     for i, (n, ts, amount, st) in enumerate(orders)])
    events = [("A", "coupon_used", ago(5)), ("B", "coupon_used", ago(31)),
              ("D", "view_product", ago(0, 3600)), ("F", "coupon_used", ago(100))]
    session.add_all([Event(id=f"E{i}", customer_id=ids[n], type=t, ts=ts)
                     for i, (n, t, ts) in enumerate(events)])
    session.add_all([
        Consent(customer_id=ids["A"], channel="sms", purpose="marketing", granted=True,
                at=ago(50)),
        Consent(customer_id=ids["A"], channel="sms", purpose="marketing", granted=False,
                at=ago(20)),
        Consent(customer_id=ids["B"], channel="sms", purpose="marketing", granted=False,
                at=ago(50)),
        Consent(customer_id=ids["B"], channel="sms", purpose="marketing", granted=True,
                at=ago(20)),
    ])
    session.flush()
    # Same instant: the row written later (higher id) is the decision in force.
    session.add(Consent(customer_id=ids["D"], channel="sms", purpose="marketing",
                        granted=True, at=ago(7)))
    session.flush()
    session.add(Consent(customer_id=ids["D"], channel="sms", purpose="marketing",
                        granted=False, at=ago(7)))
    session.add_all([
        Referral(referrer_id=ids["F"], referred_id=ids["A"], at=ago(5)),
        Referral(referrer_id=ids["F"], referred_id=ids["B"], at=ago(40)),
    ])

    def score(name: str, **values: Any) -> CustomerScore:
        return CustomerScore(customer_id=ids[name], computed_at=NOW, **values)

    session.add_all([
        score("A", lifecycle="growth", rfm_r=5, rfm_tier="VIP", clv=500.0,
              first_order_at=ago(100), last_order_at=ago(1), last_active_at=ago(1)),
        score("B", lifecycle="decline", rfm_r=2, clv=50.0, first_order_at=ago(30),
              last_order_at=ago(61), last_active_at=ago(31)),
        score("D", lifecycle="acquisition", rfm_r=1, last_active_at=ago(0, 3600)),
        score("F", lifecycle="churned", rfm_r=1, clv=10.0, first_order_at=ago(400),
              last_order_at=ago(200), last_active_at=ago(100)),
    ])
    session.flush()
    return Population(ids)


@pytest.fixture
def population(sessions: sessionmaker[Session]) -> Iterator[Population]:
    with sessions() as session:
        pop = build_population(session)
        session.commit()
    yield pop
