"""Data-subject export and erasure latency (p50/p99) on a seeded demo brand."""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from sqlalchemy import select

from bench.common import percentile, scratch_database, siyu
from siyu.config import Settings
from siyu.customers.models import Customer
from siyu.db import make_engine, make_session_factory
from siyu.privacy import service as privacy


def measure(url: str, samples: int) -> dict[str, Any]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    settings = Settings(database_url=url)
    with sessions() as session:
        ids = list(session.scalars(select(Customer.id).where(Customer.status == "active")))
    rng = random.Random(11)
    picked = rng.sample(ids, min(samples, len(ids)))
    export_ms, erase_ms, reclaim_ms, rows = [], [], [], []
    for cid in picked:
        with sessions() as session:
            t0 = time.perf_counter()
            doc = privacy.export_customer(session, cid, actor="bench")
            export_ms.append((time.perf_counter() - t0) * 1000)
            rows.append(sum(len(r) for r in doc["tables"].values()))
            session.commit()
        with sessions() as session:
            t0 = time.perf_counter()
            report = privacy.erase_customer(session, settings, cid, actor="bench")
            session.commit()
            erase_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        privacy.reclaim_space(engine, report)
        reclaim_ms.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return {"samples": len(picked), "rows_per_export_p50": percentile(rows, 50),
            "export_p50_ms": round(percentile(export_ms, 50), 1),
            "export_p99_ms": round(percentile(export_ms, 99), 1),
            "erase_p50_ms": round(percentile(erase_ms, 50), 1),
            "erase_p99_ms": round(percentile(erase_ms, 99), 1),
            "reclaim_p50_ms": round(percentile(reclaim_ms, 50), 1),
            "reclaim_p99_ms": round(percentile(reclaim_ms, 99), 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results = []
    for store in args.stores:
        with scratch_database(store) as url:
            siyu(["demo", "seed", "--customers", str(args.customers), "--seed", "42"], url)
            figures = {"store": store, "customers": args.customers, **measure(url, args.samples)}
        print(f"[privacy] {store:<10} customers {figures['customers']:>8}  export p50 "
              f"{figures['export_p50_ms']} ms p99 {figures['export_p99_ms']} ms "
              f"({figures['rows_per_export_p50']:.0f} rows)   erase p50 "
              f"{figures['erase_p50_ms']} ms "
              f"p99 {figures['erase_p99_ms']} ms   reclaim (checkpoint/VACUUM) p50 "
              f"{figures['reclaim_p50_ms']} ms p99 {figures['reclaim_p99_ms']} ms")
        results.append(figures)
    return {"privacy": results}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=100)
