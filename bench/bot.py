"""Bot pipeline latency per message (p50/p99): store the inbound message, then the whole bot
pass (context, keyword rules, intent, answer or action or FAQ, hand-off), each committed, on
a demo brand with its trained knowledge base, on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import demo_phones, percentile, scratch_database, service_messages, siyu
from siyu.customers.identity import IdentityRef
from siyu.db import make_engine, make_session_factory
from siyu.service import bot
from siyu.service import service as desk


def measure(url: str, n: int) -> dict[str, Any]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    phones = demo_phones(sessions, n + 50)
    texts = service_messages(n + 50, seed=3)
    latencies, decided = [], {}
    for i, (phone, text) in enumerate(zip(phones, texts, strict=False)):
        t0 = time.perf_counter()
        with sessions() as s:
            result = desk.receive_inbound(s, channel="webchat",
                                          identities=[IdentityRef("phone", phone)], text=text,
                                          external_id=f"bench-{i}")
            s.commit()
        with sessions() as s:
            outcome = bot.handle_inbound(s, result.message_id)
            s.commit()
        elapsed = (time.perf_counter() - t0) * 1000
        if i >= 50:  # the first ones load the model and warm the caches
            latencies.append(elapsed)
            if outcome is not None:
                decided[outcome.action] = decided.get(outcome.action, 0) + 1
    engine.dispose()
    return {"messages": len(latencies), "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
            "max_ms": round(max(latencies), 2), "actions": decided}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results = []
    for store in args.stores:
        with scratch_database(store) as url:
            siyu(["demo", "seed", "--customers", str(args.customers), "--seed", "7"], url)
            figures = {"store": store, **measure(url, args.messages)}
        print(f"[bot] {store:<10} {figures['messages']} messages: pipeline p50 "
              f"{figures['p50_ms']} ms, p99 {figures['p99_ms']} ms (max {figures['max_ms']} ms)"
              f"  actions {figures['actions']}", flush=True)
        results.append(figures)
    return {"bot": results}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=1000)
