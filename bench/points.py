"""Points expiry and the liability report at scale: ``--customers`` customers with four
entries each (earned in three years, one redemption), expiring every passed year at once,
a re-run (writes nothing) and the liability report. ``--url`` names an empty database
(default: a temporary SQLite file); PostgreSQL: an empty scratch database."""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from pathlib import Path
from typing import Any

CST = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--url", default=None, help="an empty database (default: SQLite)")


def _measure(url: str, n: int) -> dict[str, Any]:
    from sqlalchemy import insert

    from siyu import migrate
    from siyu.customers.models import Customer
    from siyu.db import make_engine, make_session_factory
    from siyu.points import expiry
    from siyu.points.models import PointsEntry

    engine = make_engine(url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    rng = random.Random(1)
    with sessions() as s:
        s.execute(insert(Customer), [{"id": i, "name": f"c{i}", "attributes": {},
                                      "status": "active", "created_at": NOW,
                                      "updated_at": NOW} for i in range(1, n + 1)])
        rows = []
        for i in range(1, n + 1):
            for tag, year in (("a", 2023), ("b", 2024), ("c", 2025)):
                rows.append({"customer_id": i, "amount": rng.randint(100, 1000),
                             "source": "order", "key": f"{tag}{i}", "created_at": NOW,
                             "at": dt.datetime(year, rng.randint(1, 12), 5, tzinfo=CST)})
            rows.append({"customer_id": i, "amount": -rng.randint(1, 601), "source": "redeem",
                         "key": f"r{i}", "at": dt.datetime(2024, 12, 20, tzinfo=CST),
                         "created_at": NOW})
        s.execute(insert(PointsEntry), rows)
        s.commit()
    out: dict[str, Any] = {"customers": n, "entries": 4 * n}
    with sessions() as s:
        for name in ("expire", "rerun"):
            start = time.perf_counter()
            result = expiry.expire(s, now=NOW, years=1, timezone="Asia/Shanghai")
            s.commit()
            out[f"{name}_seconds"] = round(time.perf_counter() - start, 2)
            out[f"{name}_entries"] = result.entries
        start = time.perf_counter()
        report = expiry.liability(s, now=NOW, years=1, timezone="Asia/Shanghai")
        out["liability_seconds"] = round(time.perf_counter() - start, 2)
        out["outstanding"] = report["outstanding"]
    engine.dispose()
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.url:
        figures = _measure(args.url, args.customers)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            figures = _measure(f"sqlite:///{Path(tmp) / 'bench.db'}", args.customers)
    print(figures)
    return figures
