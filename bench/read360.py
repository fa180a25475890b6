"""Customer 360 read latency (p50/p99) over loopback HTTP, and demo seeding time."""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.common import api_key, percentile, scratch_database, server, siyu
from siyu.customers.models import Customer
from siyu.db import make_engine


def _sample_ids(url: str, n: int, seed: int) -> list[int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        top = conn.scalar(select(func.max(Customer.id))) or 0
        rng = random.Random(seed)
        candidates = [rng.randint(1, top) for _ in range(n * 2)]
        active = set(conn.scalars(select(Customer.id).where(
            Customer.id.in_(candidates), Customer.status == "active")))
    engine.dispose()
    return [c for c in candidates if c in active][:n]


def _count(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = int(conn.scalar(select(func.count()).select_from(Customer)
                            .where(Customer.status == "active")) or 0)
    engine.dispose()
    return n


def measure(url: str, requests: int) -> dict[str, Any]:
    key = api_key(url)
    ids = _sample_ids(url, requests, seed=7)
    with server(url) as base, httpx.Client(base_url=base, timeout=30,
                                           headers={"Authorization": f"Bearer {key}"}) as c:
        for cid in ids[:50]:  # warm-up: connections
            c.get(f"/api/v1/customers/{cid}").raise_for_status()
        passes = []
        # First pass: rows and index pages read for the first time (cold); second: warm.
        for _ in range(2):
            latencies = []
            for cid in ids:
                t0 = time.perf_counter()
                r = c.get(f"/api/v1/customers/{cid}")
                latencies.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            passes.append(latencies)
        cold, latencies = passes
        by_phone = []
        for cid in ids[:300]:
            phone = next((i["value"] for i in c.get(f"/api/v1/customers/{cid}").json()[
                "identities"] if i["kind"] == "phone"), None)
            if phone is None:
                continue
            t0 = time.perf_counter()
            c.get("/api/v1/customers", params={"identity": f"phone:{phone}"}).raise_for_status()
            by_phone.append((time.perf_counter() - t0) * 1000)
    return {"requests": len(latencies),
            "cold_p50_ms": round(percentile(cold, 50), 2),
            "cold_p99_ms": round(percentile(cold, 99), 2),
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
            "by_phone_p50_ms": round(percentile(by_phone, 50), 2),
            "by_phone_p99_ms": round(percentile(by_phone, 99), 2)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results = []
    for store in args.stores:
        existing = args.db if store == "sqlite" else args.pg_db
        if existing:
            figures = {"store": store, "customers": _count(existing),
                       **measure(existing, args.requests)}
        else:
            with scratch_database(store) as url:
                t0 = time.perf_counter()
                siyu(["demo", "seed", "--customers", str(args.customers), "--seed", "42"], url)
                seed_s = time.perf_counter() - t0
                figures = {"store": store, "customers": args.customers,
                           "seed_seconds": round(seed_s, 1), **measure(url, args.requests)}
        print(f"[read360] {store:<10} customers {figures['customers']:>9}  "
              f"seed {figures.get('seed_seconds', '-')} s   360 p50 {figures['p50_ms']} ms  "
              f"p99 {figures['p99_ms']} ms (first pass p50 {figures['cold_p50_ms']} ms, "
              f"p99 {figures['cold_p99_ms']} ms)   by phone p50 {figures['by_phone_p50_ms']} ms  "
              f"p99 {figures['by_phone_p99_ms']} ms")
        results.append(figures)
    return {"read360": results}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--db", help="measure an existing SQLite database URL instead of "
                                     "seeding one")
    parser.add_argument("--pg-db", help="measure an existing PostgreSQL database URL instead of "
                                        "seeding one")
