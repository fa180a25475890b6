"""Journeys at scale: recognition latency for one customer after an event, and the full
recomputation of stages and scenarios, on SQLite and PostgreSQL.

The population is :mod:`bench.segments`' synthetic brand (numpy, bulk inserts) with what
journeys read on top: orders whose items name the demo catalogue's SKUs (cycles and
bundles; some sent to another recipient), and a share of customers with a recent message
the bot recognised (帮亲友购买, 换购, 退货, 投诉 ...). The demo knowledge base is seeded and
trained and the demo scenarios installed, as in a real deployment.

Figures:

* ``full_first_s``: the first full recomputation (everyone gets a stage: 1M baseline rows,
  every scenario's entries with their why and timeline events);
* ``full_next_s``: the next one, a day later (only what changed is written) -- what the
  hourly job costs;
* ``latency_message_ms`` p50/p99: a web chat message stored (``receive_inbound``,
  committed) -> the bot's job recognises the intent and queues the customer -> the
  journeys job recomputes that customer; measured from the inbound commit to the
  journeys job's commit, running the jobs as the worker does (``jobs.run_due``). The
  worker is woken by the commit; its poll interval (0.5 s) bounds the wait otherwise;
* ``latency_order_ms`` p50/p99: an order posted through ``ingest`` -> its journeys job.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import func, select

from bench import segments as base
from bench.common import copy_of_database, percentile, scratch_database
from siyu import migrate
from siyu.db import make_engine, make_session_factory

NOW = base.NOW
# The demo catalogue's SKUs with their cycles, plus bundles (their cycle is the parts').
SKUS = ["HY-OAT-01", "HY-OAT-02", "HY-NUT-01", "HY-NUT-02", "HY-PRO-01", "HY-WHEY-01",
        "HY-MEAL-01", "HY-COL-01", "HY-SNK-01", "HY-BOX-01", "HY-BOX-02"]
SKU_P = np.array([16, 8, 14, 5, 10, 9, 9, 8, 9, 4, 4], dtype=float)
INTENTS = ["buy_for_family", "switch_product", "return_request", "exchange_request",
           "complaint", "delivery_time", "how_to_take"]
INTENT_P = [0.2, 0.15, 0.15, 0.1, 0.1, 0.15, 0.15]
TEXTS = {"buy_for_family": "想给我妈也买一盒", "switch_product": "这个吃腻了想换别的试试",
         "return_request": "买多了想退货", "exchange_request": "规格发错了要换货",
         "complaint": "质量太差要投诉", "delivery_time": "什么时候发货",
         "how_to_take": "一天吃几条"}
MESSAGE_SHARE = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=float, default=3.0)
    parser.add_argument("--events-per-customer", type=float, default=6.0)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--samples", type=int, default=40,
                        help="latency samples per path (message, order)")
    parser.add_argument("--seed-into", metavar="URL",
                        help="populate this (empty) database and stop: measure it later with "
                             "--measure-copy-of, e.g. when the machine is quiet")
    parser.add_argument("--measure-copy-of", metavar="URL", action="append", default=[],
                        help="measure a scratch copy of a database --seed-into populated "
                             "(repeatable: one per store) instead of seeding")


def _catalogue() -> list[dict[str, Any]]:
    from siyu.demo.catalog import PRODUCTS

    rows: list[dict[str, Any]] = [
        {"sku": p.sku, "name": p.name, "category": p.category, "price": p.price,
         "cycle_days": p.cycle_days} for p in PRODUCTS]
    rows += [{"sku": "HY-BOX-01", "name": "益生菌燕麦组合装", "price": 239.0,
              "bundle_of": "HY-PRO-01|HY-OAT-01"},
             {"sku": "HY-BOX-02", "name": "每日坚果季度装", "price": 349.0,
              "bundle_of": "HY-NUT-01*3"}]
    return rows


def generate(n: int, orders_per: float, events_per: float, seed: int = 11
             ) -> dict[str, tuple[list[str], Iterator[list[tuple[Any, ...]]]]]:
    """bench.segments' tables, with orders carrying catalogue items and recipients, and
    conversations whose last message the bot recognised."""
    tables = base.generate(n, orders_per, events_per)
    rng = np.random.default_rng(seed)
    columns, plain = tables["orders"]
    sku_p = SKU_P / SKU_P.sum()

    def orders() -> Iterator[list[tuple[Any, ...]]]:
        for rows in plain:
            k = len(rows)
            sku = rng.choice(len(SKUS), k, p=sku_p)
            qty = 1 + rng.poisson(0.5, k)
            gift = rng.random(k) < 0.03
            out = []
            for j, row in enumerate(rows):
                items = f'[{{"sku": "{SKUS[sku[j]]}", "quantity": {int(qty[j])}}}]'
                out.append((*row[:6], items, "亲友" if gift[j] else None))
            yield out

    tables["orders"] = ([*columns, "recipient_name"], orders())
    talkers = np.flatnonzero(rng.random(n) < MESSAGE_SHARE) + 1
    ago = rng.integers(60, 30 * 86400, len(talkers))
    intent = rng.choice(len(INTENTS), len(talkers), p=INTENT_P)
    stamps = base._ts(ago)

    def conversations() -> Iterator[list[tuple[Any, ...]]]:
        yield [(i + 1, int(cid), "webchat", "closed", stamps[i], "bot", False, stamps[i])
               for i, cid in enumerate(talkers)]

    def messages() -> Iterator[list[tuple[Any, ...]]]:
        yield [(i + 1, i + 1, "in", "webchat", "customer", TEXTS[INTENTS[intent[i]]], "{}",
                "received", stamps[i]) for i in range(len(talkers))]

    def decisions() -> Iterator[list[tuple[Any, ...]]]:
        yield [(i + 1, i + 1, i + 1, "answer", INTENTS[intent[i]], 0.8, "bench", "[]", 5.0,
                stamps[i]) for i in range(len(talkers))]

    tables["conversations"] = (["id", "customer_id", "channel", "status", "last_message_at",
                                "handled_by", "csat_pending", "created_at"], conversations())
    tables["messages"] = (["id", "conversation_id", "direction", "channel", "sender", "text",
                           "payload", "status", "created_at"], messages())
    tables["bot_decisions"] = (["id", "conversation_id", "message_id", "action", "intent",
                                "confidence", "reason", "steps", "latency_ms", "created_at"],
                               decisions())
    return tables


def _setup(url: str) -> None:
    """The catalogue, the trained demo knowledge base and the demo scenarios."""
    from siyu.catalog.service import upsert_products
    from siyu.journeys import service
    from siyu.kb.demo import seed_demo_kb

    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        upsert_products(session, _catalogue())
        seed_demo_kb(session)
        service.install_demo_scenarios(session)
        session.commit()
    engine.dispose()


def _full(url: str, now: dt.datetime) -> dict[str, Any]:
    from siyu.journeys import service
    from siyu.journeys.models import CustomerJourney

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    out: dict[str, Any] = {}
    for label, moment in (("first", now), ("next", now + dt.timedelta(days=1))):
        t0 = time.perf_counter()
        with sessions() as session:
            result = service.recompute(session, now=moment)
            session.commit()
        out[f"full_{label}_s"] = round(time.perf_counter() - t0, 2)
        out[f"full_{label}"] = result.to_dict()
        print(f"  full recomputation ({label}): {out[f'full_{label}_s']:.1f} s "
              f"{result.to_dict()}", flush=True)
    with sessions() as session:
        out["stages"] = dict(session.execute(select(CustomerJourney.stage, func.count())
                                             .group_by(CustomerJourney.stage)).all())
        out["scenarios"] = {s["name"]: s["members"] for s in service.list_scenarios(session)}
    engine.dispose()
    return out


def _latency(url: str, samples: int) -> dict[str, Any]:
    """Message -> bot -> journeys job, and order -> journeys job, per customer."""
    from siyu.config import Settings
    from siyu.customers.identity import IdentityRef
    from siyu.events.service import ingest
    from siyu.jobs import service as jobs
    from siyu.journeys import service
    from siyu.journeys import tasks as _journey_tasks  # noqa: F401  (job handlers)
    from siyu.journeys.schedule import CUSTOMERS_JOB
    from siyu.service import service as desk
    from siyu.service import tasks as _desk_tasks  # noqa: F401  (job handlers)
    from siyu.service.service import BOT_JOB

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    settings = Settings(database_url=url)
    message_ms: list[float] = []
    order_ms: list[float] = []
    recognised = 0
    for i in range(samples):
        cid = 1 + (i * 7919) % 90_000  # customers of the first chunks, spread out
        if cid % 97 == 0:  # bench.segments marks these merged
            cid += 1
        with sessions() as session:
            inbound = desk.receive_inbound(
                session, channel="webchat", identities=[IdentityRef("external_id",
                                                                     f"HY{cid:07d}")],
                text="想给我妈也买一盒", external_id=f"bench-{i}")
            session.commit()
        t0 = time.perf_counter()
        jobs.run_due(sessions, names={BOT_JOB})
        jobs.run_due(sessions, names={CUSTOMERS_JOB})
        message_ms.append((time.perf_counter() - t0) * 1000)
        with sessions() as session:
            view = service.customer_journey(session, inbound.customer_id)
            recognised += any(s["name"] == "帮亲友购买" for s in view["scenarios"])
        with sessions() as session:
            ingest(session, "orders", [{
                "id": f"bench-order-{i}", "ts": dt.datetime.now(dt.UTC).isoformat(),
                "amount": 199.0, "items": [{"sku": "HY-PRO-01", "quantity": 2}],
                "identities": [{"kind": "external_id", "value": f"HY{cid:07d}"}]}],
                settings=settings)
            session.commit()
        t0 = time.perf_counter()
        jobs.run_due(sessions, names={CUSTOMERS_JOB})
        order_ms.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    out = {"latency_message_ms": {"p50": round(percentile(message_ms, 50), 1),
                                  "p99": round(percentile(message_ms, 99), 1),
                                  "max": round(max(message_ms), 1)},
           "latency_order_ms": {"p50": round(percentile(order_ms, 50), 1),
                                "p99": round(percentile(order_ms, 99), 1),
                                "max": round(max(order_ms), 1)},
           "samples": samples, "message_recognised": recognised}
    print(f"  message -> scenario: p50 {out['latency_message_ms']['p50']:.0f} ms, "
          f"p99 {out['latency_message_ms']['p99']:.0f} ms ({recognised}/{samples} entered "
          f"帮亲友购买); order -> recomputed: p50 {out['latency_order_ms']['p50']:.0f} ms, "
          f"p99 {out['latency_order_ms']['p99']:.0f} ms", flush=True)
    return out


def _populate(url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    t0 = time.perf_counter()
    rows = base.populate(engine, args.customers, args.orders_per_customer,
                         args.events_per_customer,
                         tables=generate(args.customers, args.orders_per_customer,
                                         args.events_per_customer))
    engine.dispose()
    _setup(url)
    return {"rows": rows, "populate_s": round(time.perf_counter() - t0, 1)}


def _measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = make_engine(url)
    migrate.upgrade(engine)  # a copy seeded before a later migration landed
    engine.dispose()
    result = _full(url, NOW)
    result.update(_latency(url, args.samples))
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"customers": args.customers, "now": NOW.isoformat()}
    if args.seed_into:
        figures["seeded"] = _populate(args.seed_into, args)
        print(f"seeded {args.seed_into}: {figures['seeded']}", flush=True)
        return figures
    if args.measure_copy_of:
        for source in args.measure_copy_of:
            store = "sqlite" if source.startswith("sqlite") else "postgresql"
            print(f"{store} (a copy of the seeded database):", flush=True)
            with copy_of_database(source) as url:
                figures[store] = _measure(url, args)
        return figures
    for store in [s.strip() for s in args.stores.split(",") if s.strip()]:
        print(f"{store}:", flush=True)
        with scratch_database(store) as url:
            result = _populate(url, args)
            result.update(_measure(url, args))
            figures[store] = result
    return figures
