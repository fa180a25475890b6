"""Score recomputation at scale: the time of ``recompute_scores`` (all customers: SQL
aggregates, numpy rules, bulk replace of ``customer_scores``) on SQLite and PostgreSQL.

Each size gets a scratch database filled with the segments benchmark's synthetic brand
(``bench.segments.populate``: N customers, ~3 orders and ~6 events each), unless
``--sqlite-db`` names an existing database (e.g. the 1M demo brand at /tmp/demo1m.db) that
is copied and measured as the SQLite figure for the largest size. Two runs per database:
the first replaces the generator's placeholder scores, the second replaces real ones
(what cron does); both are reported with the phase timings of the second.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import scratch_database
from siyu import migrate
from siyu.analytics import service
from siyu.analytics.config import ScoringConfig
from siyu.db import make_engine, make_session_factory, utcnow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="20000,1000000",
                        help="comma-separated customer counts")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--orders-per-customer", type=float, default=3.0)
    parser.add_argument("--events-per-customer", type=float, default=6.0)
    parser.add_argument("--sqlite-db", type=Path,
                        help="measure a copy of this SQLite database for the largest size")
    parser.add_argument("--url", action="append", default=[],
                        help="measure this existing database in place (SQLite or PostgreSQL "
                             "URL, e.g. a 1M demo brand); repeatable; replaces --sizes/--stores")


@contextlib.contextmanager
def _sqlite_copy(source: Path) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-scores-") as tmp:
        target = Path(tmp) / "copy.db"
        shutil.copyfile(source, target)
        for suffix in ("-wal", "-shm"):
            extra = Path(f"{source}{suffix}")
            if extra.exists():
                shutil.copyfile(extra, Path(f"{target}{suffix}"))
        yield f"sqlite:///{target}"


def measure(url: str, now: dt.datetime) -> dict[str, Any]:
    """Two full recomputations on ``url`` as of ``now``; seconds and phase timings."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    runs = []
    phases: dict[str, float] = {}
    for _ in range(2):
        marks: list[tuple[str, float]] = []

        def mark(step: str, _done: int, _total: int, into: list[tuple[str, float]] = marks
                 ) -> None:
            into.append((step, time.perf_counter()))

        t0 = time.perf_counter()
        result = service.recompute_scores(sessions, now=now, config=ScoringConfig(),
                                          progress=mark)
        total = time.perf_counter() - t0
        runs.append({"seconds": round(total, 2), "customers": result.customers,
                     "buyers": result.buyers, "true_fans": result.true_fans,
                     "transitions": result.transitions})
        last = t0
        phases = {}
        for step, at in marks:
            phases[step] = round(at - last, 2)
            last = at
        print(f"    run: {total:.1f} s for {result.customers:,} customers  {phases}",
              flush=True)
    engine.dispose()
    return {"runs": runs, "phases_last_run": phases,
            "customers_per_second": round(runs[-1]["customers"] / runs[-1]["seconds"])}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.segments import NOW, populate

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    figures: dict[str, Any] = {}
    for url in args.url:
        store = url.split(":", 1)[0].split("+", 1)[0]
        print(f"{store} (existing):", flush=True)
        figures[f"{store}/existing"] = {"source": "existing database", "now": utcnow().isoformat(),
                                        **measure(url, utcnow())}
    if args.url:
        sizes = []
    for store in [s.strip() for s in args.stores.split(",") if s.strip()]:
        for n in sizes:
            key = f"{store}/{n}"
            print(f"{key}:", flush=True)
            demo = store == "sqlite" and args.sqlite_db is not None and n == max(sizes)
            ctx = _sqlite_copy(args.sqlite_db) if demo else scratch_database(store)
            with ctx as url:
                if demo:
                    now = utcnow()
                    source = f"copy of {args.sqlite_db}"
                else:
                    engine = make_engine(url)
                    migrate.upgrade(engine)
                    t0 = time.perf_counter()
                    written = populate(engine, n, args.orders_per_customer,
                                       args.events_per_customer)
                    engine.dispose()
                    print(f"  populated in {time.perf_counter() - t0:.0f} s", flush=True)
                    now = NOW
                    source = (f"synthetic: {written.get('orders', 0):,} orders, "
                              f"{written.get('events', 0):,} events")
                figures[key] = {"source": source, "now": now.isoformat(),
                                **measure(url, now)}
    for key, value in figures.items():
        print(f"{key:>22}: {value['runs'][-1]['seconds']:.1f} s "
              f"({value['customers_per_second']:,} customers/s; {value['source']})")
    return figures
