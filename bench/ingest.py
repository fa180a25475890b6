"""Ingest throughput: events/s through the batch API over loopback HTTP and through
``siyu import``, on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import api_key, scratch_database, server, siyu

BATCH = 10_000


def _customers(n: int) -> list[dict[str, Any]]:
    return [{"id": f"C{i:07d}", "identities": [
        {"kind": "phone", "value": f"+86139{i:08d}"},
        {"kind": "wechat_openid", "value": f"o-{i}"}], "name": f"客户{i}"} for i in range(n)]


def _events(batch_no: int, n_customers: int) -> list[dict[str, Any]]:
    out = []
    for j in range(BATCH):
        i = (batch_no * 7919 + j * 13) % n_customers
        # one in ten events comes from a visitor not seen before
        ident = (f"o-{i}" if j % 10 else f"o-new-{batch_no}-{j}")
        out.append({"id": f"b{batch_no}-{j}", "type": ("view_product", "add_to_cart",
                                                       "coupon_used")[j % 3],
                    "ts": "2026-05-01T10:00:00+08:00", "channel": "miniprogram",
                    "identities": [{"kind": "wechat_openid", "value": ident}],
                    "properties": {"sku": f"SKU{j % 40}"}})
    return out


def _post_concurrently(base: str, key: str, payloads: list[bytes], clients: int) -> float:
    """Post every payload from ``clients`` threads at once; the wall time in seconds."""
    from concurrent.futures import ThreadPoolExecutor

    def post(payload: bytes) -> None:
        with httpx.Client(base_url=base, timeout=300, headers={
                "Authorization": f"Bearer {key}", "content-type": "application/json"}) as c:
            r = c.post("/api/v1/events", content=payload)
            r.raise_for_status()
            assert r.json()["accepted"] == BATCH, r.text[:300]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, payloads))
    return time.perf_counter() - t0


def measure_store(store: str, batches: int, n_customers: int, processes: int = 1,
                  clients: int = 1) -> dict[str, Any]:
    with scratch_database(store) as url:
        siyu(["db", "upgrade"], url)
        key = api_key(url)
        payloads = [orjson.dumps({"events": _events(b, n_customers)}) for b in range(batches)]
        result: dict[str, Any] = {"store": store, "events": batches * BATCH}
        with server(url) as base, httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}",
                                        "content-type": "application/json"},
                timeout=120) as client:
            body = orjson.dumps({"customers": _customers(n_customers)[:BATCH]})
            for start in range(0, n_customers, BATCH):
                chunk = _customers(n_customers)[start:start + BATCH]
                body = orjson.dumps({"customers": chunk})
                client.post("/api/v1/customers", content=body).raise_for_status()
            times = []
            for payload in payloads:
                t0 = time.perf_counter()
                r = client.post("/api/v1/events", content=payload)
                r.raise_for_status()
                assert r.json()["accepted"] == BATCH, r.text[:300]
                times.append(time.perf_counter() - t0)
            result["api_events_per_s"] = round(batches * BATCH / sum(times))
            result["api_batch_ms_p50"] = round(sorted(times)[len(times) // 2] * 1000, 1)
            # the same batches again: all duplicates, nothing stored twice
            t0 = time.perf_counter()
            r = client.post("/api/v1/events", content=payloads[0])
            result["api_retry_batch_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            assert r.json()["duplicates"] == BATCH
        if processes > 1 or clients > 1:
            # The same work from several clients at once into several server processes.
            fresh = [orjson.dumps({"events": _events(b, n_customers)})
                     for b in range(batches * 2, batches * 3)]
            with server(url, processes=processes) as base:
                seconds = _post_concurrently(base, key, fresh, clients)
            result["parallel"] = {"processes": processes, "clients": clients,
                                  "events_per_s": round(batches * BATCH / seconds)}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "events.jsonl"
            with path.open("wb") as fh:
                for b in range(batches, batches * 2):
                    for rec in _events(b, n_customers):
                        fh.write(orjson.dumps(rec) + b"\n")
            t0 = time.perf_counter()
            out = siyu(["import", "events", str(path), "--json"], url)
            elapsed = time.perf_counter() - t0
            summary = json.loads(out.stdout)
            assert summary["accepted"] == batches * BATCH, summary
            result["import_events_per_s"] = round(batches * BATCH / elapsed)
        return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    results = [measure_store(store, args.batches, args.customers, args.processes, args.clients)
               for store in args.stores]
    for r in results:
        print(f"[ingest] {r['store']:<10} API {r['api_events_per_s']:>8,} events/s "
              f"(batch of 10,000: p50 {r['api_batch_ms_p50']} ms; retried batch "
              f"{r['api_retry_batch_ms']} ms)   import {r['import_events_per_s']:>8,} events/s")
        if "parallel" in r:
            par = r["parallel"]
            print(f"[ingest] {r['store']:<10} API {par['events_per_s']:>8,} events/s with "
                  f"{par['clients']} clients into {par['processes']} server processes")
    return {"ingest": results}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2,
                        help="server processes for the concurrent run (siyu serve --workers)")
    parser.add_argument("--clients", type=int, default=4,
                        help="clients posting at once in the concurrent run (1 and "
                             "--processes 1 skip it)")
