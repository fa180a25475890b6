"""A fresh demo shows a believable brand's journeys: the catalogue with cycles and bundles,
orders whose statuses moved (some refunded), conversations the bot recognised, and every
default scenario and journey stage populated."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.catalog.models import Product
from siyu.config import Settings
from siyu.db import make_session_factory, session_scope
from siyu.demo.generator import seed_demo
from siyu.demo.journeys import JourneysSeed, seed_demo_journeys
from siyu.events.models import Event, Order
from siyu.events.purchases import purchase_stats
from siyu.events.service import ORDER_STATUS_CHANGED
from siyu.journeys import defaults
from siyu.journeys import service as journeys
from siyu.journeys.service import SCENARIO_ENTERED
from siyu.kb.demo import seed_demo_kb
from tests.conftest import empty_all_tables

NOW = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)
N = 2_000


@pytest.fixture(scope="module")
def demo(engine: Engine, database_url: str) -> Iterator[tuple[sessionmaker[Session],
                                                             JourneysSeed]]:
    empty_all_tables(engine)
    sessions = make_session_factory(engine)
    settings = Settings(database_url=database_url, environment="test")
    seed_demo(sessions, settings, customers=N, seed=7, now=NOW)
    with session_scope(sessions) as session:
        seed_demo_kb(session)
    report = seed_demo_journeys(sessions, now=NOW, conversations_per_kind=12)
    yield sessions, report
    empty_all_tables(engine)


def test_every_default_scenario_has_members(demo: tuple[sessionmaker[Session],
                                                        JourneysSeed]) -> None:
    _, report = demo
    names = [s["name"] for s in defaults.DEMO_SCENARIOS]
    assert set(report.members) == set(names)
    for name in names:
        assert report.members[name] > 0, name
    # The bot itself recognised what the customers wrote.
    for intent in ("buy_for_family", "switch_product", "complaint"):
        assert report.recognised.get(intent, 0) > 0, intent
    assert report.recognised.get("return_request", 0) + report.recognised.get(
        "exchange_request", 0) > 0


def test_the_funnel_has_every_stage_and_entries_spread_over_days(
        demo: tuple[sessionmaker[Session], JourneysSeed]) -> None:
    sessions, _ = demo
    with sessions() as session:
        stages = journeys.funnel(session)
        flow = journeys.daily_flow(session, now=NOW, days=30)
        entered_days = session.scalar(select(func.count(func.distinct(func.date(Event.ts))))
                                      .where(Event.type == SCENARIO_ENTERED))
    assert [s["stage"] for s in stages] == journeys.STAGE_ORDER
    for stage in stages:
        assert stage["customers"] > 0, stage["stage"]
    assert entered_days and entered_days >= 3
    assert sum(sum(days) for days in flow["entered"].values()) > 0


def test_orders_move_through_statuses_and_refunds_are_not_purchases(
        demo: tuple[sessionmaker[Session], JourneysSeed]) -> None:
    sessions, _ = demo
    with sessions() as session:
        changes = list(session.scalars(select(Event).where(
            Event.type == ORDER_STATUS_CHANGED)))
        assert changes
        moves = {(e.properties["from"], e.properties["to"]) for e in changes}
        assert {("paid", "shipped"), ("shipped", "delivered"),
                ("delivered", "completed"), ("delivered", "refunded")} <= moves
        refunded_ids = {e.properties["order_id"] for e in changes
                        if e.properties["to"] == "refunded"}
        order = session.get(Order, sorted(refunded_ids)[0])
        assert order is not None and order.status == "refunded"
        assert order.updated_at is not None and order.updated_at > order.ts
        stats = purchase_stats(session, order.customer_id)
        purchases = session.scalar(select(func.count()).select_from(Order).where(
            Order.customer_id == order.customer_id,
            Order.status.in_(["paid", "shipped", "delivered", "completed"])))
        assert stats.count == purchases
        assert session.scalar(select(func.count()).select_from(Order).where(
            Order.recipient_name.is_not(None))) > 0


def test_the_catalogue_holds_cycles_and_bundles(
        demo: tuple[sessionmaker[Session], JourneysSeed]) -> None:
    sessions, _ = demo
    with sessions() as session:
        products = {p.sku: p for p in session.scalars(select(Product))}
        skus = {item["sku"] for items in session.scalars(select(Order.items))
                for item in items}
    box = products["HY-BOX-01"]
    assert box.bundle_of and box.cycle_days is None
    # Two 30-day oat packs and one 30-day box of nuts.
    assert box.effective_cycle_days == 90
    assert products["HY-OAT-01"].cycle_days == 30
    assert skus <= set(products)
