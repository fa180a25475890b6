"""Segment counts at scale: the time of ``siyu segments count`` for a five-condition rule with
one behaviour window, on SQLite and PostgreSQL, over a synthetic brand of N customers.

The population is generated here (numpy, bulk inserts), unless ``--sqlite-db`` names an
existing database (e.g. a 1M demo brand) to copy and measure instead. Figures: the median
and worst of ``--repeat`` in-process counts (``count_rule``), one end-to-end CLI run
(process start, migration check, parse, count), and the query plan on SQLite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from bench.common import scratch_database
from siyu import migrate
from siyu.db import make_engine, make_session_factory

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
RULE = ('tier in ("VIP", "金卡") and orders(last 30d) >= 2 and not tag("投诉中") '
        'and has(wecom_external_userid) and lifecycle in ("growth", "maturity")')
EXTRA_RULES = [
    'orders >= 3',
    'spend between 100 and 500',
    'spend(last 90d) > 1000',
    'last_order_days > 60',
    'event("coupon_used", last 30d) = 0',
    'consent("sms", "marketing") and city = "上海"',
    'attr("car_mileage") > 5000 and age >= 30',
]
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "南京", "重庆", "西安",
          "苏州", "天津", "长沙", "郑州", "青岛", "厦门", "合肥", "宁波", "昆明", "大连"]
TIERS = ["普通", "会员", "金卡", "VIP", "黑金"]
TIER_P = [0.45, 0.3, 0.15, 0.08, 0.02]
TAGS = ["素食", "健身人群", "宝妈", "控糖", "投诉中", "高价值", "送礼需求", "价格敏感"]
STATUSES = ["paid", "completed", "shipped", "delivered", "refunded", "cancelled",
            "payment_failed"]
STATUS_P = [0.3, 0.45, 0.08, 0.065, 0.035, 0.03, 0.04]
EVENT_TYPES = ["view_product", "add_to_cart", "coupon_received", "coupon_used", "app_login",
               "feedback", "share_product", "join_group", "live_stream_view",
               "points_earned"]
STAGES = ["acquisition", "growth", "maturity", "decline", "churned", "reactivated"]
DAYS = 730
CHUNK = 200_000
# Tables other benchmarks add to :func:`generate`'s whose identity sequence follows the rows.
SEQUENCED_EXTRA = ("conversations", "messages", "bot_decisions")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=float, default=3.0)
    parser.add_argument("--events-per-customer", type=float, default=6.0)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sqlite-db", type=Path,
                        help="measure a copy of this existing SQLite database instead")
    parser.add_argument("--url", action="append", default=[],
                        help="measure this existing database in place, as of now (SQLite or "
                             "PostgreSQL URL, e.g. a 1M demo brand); repeatable; replaces "
                             "--stores")
    parser.add_argument("--keep", type=Path,
                        help="keep the generated SQLite database at this path")


def _chunks(n: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, CHUNK):
        yield start, min(n, start + CHUNK)


def _ts(seconds: np.ndarray) -> list[str]:
    base = np.datetime64(NOW.replace(tzinfo=None), "s")
    stamps = base - seconds.astype("timedelta64[s]")
    return [str(s).replace("T", " ") + ".000000" for s in stamps]


def generate(n: int, orders_per: float, events_per: float, seed: int = 7
             ) -> dict[str, tuple[list[str], Iterator[list[tuple[Any, ...]]]]]:
    """Column names and row chunks per table, for a synthetic brand of ``n`` customers."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    created = rng.integers(0, DAYS * 86400, n)
    # Each person buys at their own steady rate (a few heavy buyers, many rare ones) from
    # the day they arrived, so recent months hold about twice the average share of orders,
    # as in a brand that keeps acquiring customers.
    age_days = created / 86400
    mean_age = DAYS / 2
    rate = rng.gamma(0.8, orders_per / mean_age / 0.8, n)
    n_orders = rng.poisson(rate * age_days)
    n_events = rng.poisson(events_per / mean_age * age_days)
    tier_of = rng.choice(len(TIERS), n, p=TIER_P)

    def customers() -> Iterator[list[tuple[Any, ...]]]:
        for a, b in _chunks(n):
            city = rng.integers(0, len(CITIES), b - a)
            gender = rng.choice(["male", "female", "unknown"], b - a, p=[0.4, 0.55, 0.05])
            birth = rng.integers(18 * 365, 65 * 365, b - a)
            mileage = rng.integers(0, 30000, b - a)
            has_car = rng.random(b - a) < 0.3
            created_s = _ts(created[a:b])
            rows = []
            for i in range(b - a):
                cid = int(ids[a + i])
                bday = (NOW.date() - dt.timedelta(days=int(birth[i]))).isoformat()
                attrs = f'{{"car_mileage": {int(mileage[i])}}}' if has_car[i] else "{}"
                status = "merged" if cid % 97 == 0 else "active"
                rows.append((cid, f"客户{cid}", str(gender[i]), bday, CITIES[city[i]],
                             TIERS[tier_of[a + i]], attrs, status, created_s[i],
                             created_s[i]))
            yield rows

    def identities() -> Iterator[list[tuple[Any, ...]]]:
        next_id = 1
        for a, b in _chunks(n):
            rows = []
            wecom = rng.random(b - a) < 0.3
            phone = rng.random(b - a) < 0.8
            for i in range(b - a):
                cid = int(ids[a + i])
                rows.append((next_id, cid, "external_id", f"HY{cid:07d}"))
                next_id += 1
                if phone[i]:
                    rows.append((next_id, cid, "phone", f"+86139{cid:08d}"))
                    next_id += 1
                if wecom[i]:
                    rows.append((next_id, cid, "wecom_external_userid", f"wm{cid:09d}"))
                    next_id += 1
            yield rows

    def customer_tags() -> Iterator[list[tuple[Any, ...]]]:
        for a, b in _chunks(n):
            rows = []
            k = rng.integers(0, 3, b - a)
            for i in range(b - a):
                for tag in set(rng.integers(1, len(TAGS) + 1, k[i]).tolist()):
                    rows.append((int(ids[a + i]), tag))
            yield rows

    def orders() -> Iterator[list[tuple[Any, ...]]]:
        oid = 0
        for a, b in _chunks(n):
            counts = n_orders[a:b]
            owner = np.repeat(ids[a:b], counts)
            total = int(counts.sum())
            # Orders fall between the customer's creation and now.
            age = np.repeat(created[a:b], counts)
            ago = (rng.random(total) * age).astype(np.int64)
            amount = np.round(rng.gamma(2.0, 90.0, total), 2)
            status = rng.choice(len(STATUSES), total, p=STATUS_P)
            stamps = _ts(ago)
            rows = []
            for j in range(total):
                oid += 1
                rows.append((f"O{oid:09d}", int(owner[j]), stamps[j], float(amount[j]),
                             STATUSES[status[j]], "miniprogram", "[]"))
            yield rows

    def events() -> Iterator[list[tuple[Any, ...]]]:
        eid = 0
        for a, b in _chunks(n):
            counts = n_events[a:b]
            owner = np.repeat(ids[a:b], counts)
            total = int(counts.sum())
            age = np.repeat(created[a:b], counts)
            stamps = _ts((rng.random(total) * age).astype(np.int64))
            kind = rng.integers(0, len(EVENT_TYPES), total)
            rows = []
            for j in range(total):
                eid += 1
                rows.append((f"E{eid:010d}", int(owner[j]), EVENT_TYPES[kind[j]], stamps[j],
                             "app", "{}"))
            yield rows

    def consents() -> Iterator[list[tuple[Any, ...]]]:
        cid_next = 0
        for a, b in _chunks(n):
            rows = []
            given = rng.random(b - a) < 0.6
            withdrawn = rng.random(b - a) < 0.1
            stamps = _ts(created[a:b])
            for i in range(b - a):
                if given[i]:
                    cid_next += 1
                    rows.append((cid_next, int(ids[a + i]), "sms", "marketing", True, stamps[i]))
                    if withdrawn[i]:
                        cid_next += 1
                        later = (NOW - dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
                        rows.append((cid_next, int(ids[a + i]), "sms", "marketing", False,
                                     later))
            yield rows

    def scores() -> Iterator[list[tuple[Any, ...]]]:
        computed = NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
        for a, b in _chunks(n):
            rows = []
            stage = rng.integers(0, len(STAGES), b - a)
            r, f, m = (rng.integers(1, 6, b - a) for _ in range(3))
            last = _ts(rng.integers(0, DAYS * 86400, b - a))
            for i in range(b - a):
                cnt = int(n_orders[a + i])
                rows.append((int(ids[a + i]), computed, cnt, 0.0, last[i] if cnt else None,
                             int(r[i]), int(f[i]), int(m[i]), int(r[i] + f[i] + m[i]),
                             STAGES[stage[i]], False, "{}", 0))
            yield rows

    def referrals() -> Iterator[list[tuple[Any, ...]]]:
        rid = 0
        for a, b in _chunks(n):
            rows = []
            refers = rng.random(b - a) < 0.05
            for i in np.nonzero(refers)[0]:
                referrer = int(ids[a + i])
                rid += 1
                referred = referrer % n + 1
                rows.append((rid, referrer, referred, _ts(np.array([created[a + i]]))[0]))
            yield rows

    return {
        "customers": (["id", "name", "gender", "birthday", "city", "tier", "attributes",
                       "status", "created_at", "updated_at"], customers()),
        "identities": (["id", "customer_id", "kind", "value"], identities()),
        "tags": (["id", "name"], iter([[(i + 1, t) for i, t in enumerate(TAGS)]])),
        "customer_tags": (["customer_id", "tag_id"], customer_tags()),
        "orders": (["id", "customer_id", "ts", "amount", "status", "channel", "items"],
                   orders()),
        "events": (["id", "customer_id", "type", "ts", "channel", "properties"], events()),
        "consents": (["id", "customer_id", "channel", "purpose", "granted", "at"], consents()),
        "customer_scores": (["customer_id", "computed_at", "orders_count", "spend",
                             "last_order_at", "rfm_r", "rfm_f", "rfm_m", "rfm_score",
                             "lifecycle", "is_true_fan", "explanations", "referrals_count"],
                            scores()),
        "referrals": (["id", "referrer_id", "referred_id", "at"], referrals()),
    }


def populate(engine: Engine, n: int, orders_per: float, events_per: float,
             tables: dict[str, tuple[list[str], Iterator[list[tuple[Any, ...]]]]] | None = None
             ) -> dict[str, int]:
    """Fill a migrated, empty database with ``tables`` (default: :func:`generate`'s);
    returns rows written per table."""
    written: dict[str, int] = {}
    if tables is None:
        tables = generate(n, orders_per, events_per)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA synchronous=OFF")
        else:
            cursor.execute("SET TIME ZONE 'UTC'")
        for table, (columns, chunks) in tables.items():
            t0 = time.perf_counter()
            count = 0
            for rows in chunks:
                count += len(rows)
                if engine.dialect.name == "sqlite":
                    marks = ", ".join("?" for _ in columns)
                    cursor.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
                else:
                    _copy(cursor, table, columns, rows)
            raw.commit()
            written[table] = count
            print(f"  {table}: {count:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
        if engine.dialect.name == "postgresql":
            # Rows came with explicit ids: move the identity sequences past them.
            extra = [t for t in SEQUENCED_EXTRA if t in tables]
            for table in ("customers", "identities", "tags", "consents", "referrals", *extra):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")
            raw.commit()
            driver = raw.driver_connection
            driver.autocommit = True  # type: ignore[union-attr]
            driver.execute("VACUUM ANALYZE")  # type: ignore[union-attr]
        else:
            cursor.execute("ANALYZE")
            raw.commit()
    finally:
        raw.close()
    return written


def _copy(cursor: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buf.seek(0)
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buf.getvalue())


def measure(url: str, repeat: int, now: dt.datetime = NOW) -> dict[str, Any]:
    """Time in-process counts of the benchmark rule and the extra rules, and one CLI run."""
    from siyu.segments import service

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    out: dict[str, Any] = {"rule": RULE}
    with sessions() as session:
        times = []
        count = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            count = service.count_rule(session, RULE, now=now).count
            times.append(time.perf_counter() - t0)
        out["count"] = count
        out["median_s"] = round(statistics.median(times), 4)
        out["max_s"] = round(max(times), 4)
        out["extra"] = {}
        for rule in EXTRA_RULES:
            t0 = time.perf_counter()
            c = service.count_rule(session, rule, now=now).count
            out["extra"][rule] = {"count": c, "s": round(time.perf_counter() - t0, 4)}
        if engine.dialect.name == "sqlite":
            out["plan"] = service.query_plan(session, RULE, now=now)
    engine.dispose()
    env = {**os.environ, "SIYU_DATABASE_URL": url}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "siyu.cli", "segments", "count", RULE,
                           "--now", now.isoformat()], env=env, capture_output=True, text=True,
                          check=True)
    out["cli_s"] = round(time.perf_counter() - t0, 3)
    out["cli_count"] = int(proc.stdout.strip().splitlines()[-1])
    return out


@contextmanager
def _sqlite_copy(source: Path) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-seg-") as tmp:
        target = Path(tmp) / "copy.db"
        shutil.copyfile(source, target)
        yield f"sqlite:///{target}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"customers": args.customers, "now": NOW.isoformat()}
    for url in args.url:
        store = url.split(":", 1)[0].split("+", 1)[0]
        result = measure(url, args.repeat, now=dt.datetime.now(dt.UTC))
        figures[f"{store}_existing"] = result
        _report(store, result)
    stores = [] if args.url else [s.strip() for s in args.stores.split(",") if s.strip()]
    for store in stores:
        print(f"{store}:", flush=True)
        if store == "sqlite" and args.sqlite_db:
            ctx = _sqlite_copy(args.sqlite_db)
        else:
            ctx = scratch_database(store)
        with ctx as url:
            engine = make_engine(url)
            migrate.upgrade(engine)
            if not (store == "sqlite" and args.sqlite_db):
                t0 = time.perf_counter()
                figures[f"{store}_rows"] = populate(engine, args.customers,
                                                    args.orders_per_customer,
                                                    args.events_per_customer)
                figures[f"{store}_populate_s"] = round(time.perf_counter() - t0, 1)
            engine.dispose()
            result = measure(url, args.repeat)
            figures[store] = result
            _report(store, result)
            if store == "sqlite" and args.keep and not args.sqlite_db:
                shutil.copyfile(url.removeprefix("sqlite:///"), args.keep)
    return figures


def _report(store: str, result: dict[str, Any]) -> None:
    print(f"{store}: count {result['count']:,}: median {result['median_s'] * 1000:.0f} ms, "
          f"max {result['max_s'] * 1000:.0f} ms; CLI end to end {result['cli_s']:.2f} s",
          flush=True)
    for rule, r in result["extra"].items():
        print(f"    {r['s'] * 1000:7.0f} ms  {r['count']:>9,}  {rule}", flush=True)
    if "plan" in result:
        print("  plan:\n    " + "\n    ".join(result["plan"]), flush=True)
