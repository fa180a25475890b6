"""Playbook step executions per second: a segment-entered broadcast to N customers.

N customers (with e-mail and marketing consent) enter one playbook at once
(``triggers.on_segment_changes``); workers (threads, each its own connection, as separate
``siyu worker`` processes would be) run :func:`siyu.playbooks.tasks.run_batches` until every
run is done. A run here is two steps (a marketing e-mail through the full contact policy and
a tag), so step executions = 2 x N; the e-mails are handed to the outbox, not to an SMTP
server (provider latency excluded, as the issue asks).
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from sqlalchemy import func, select, text

from bench.common import scratch_database

FILE = """\
name: 广播
status: active
trigger: {segment_entered: 新客}
steps:
  - send:
      channel: email
      subject: "{{ customer.name }}，新品上市"
      template: "您好 {{ customer.name }}"
  - tag: {add: 已广播}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)


def _seed(url: str, n: int) -> None:
    from siyu.db import make_engine, utcnow

    engine = make_engine(url)
    now = utcnow()
    with engine.begin() as conn:
        for start in range(0, n, 5000):
            rows = [{"name": f"客户{i}", "attributes": {},
                     "status": "active", "created_at": now, "updated_at": now}
                    for i in range(start, min(n, start + 5000))]
            from siyu.customers.models import Consent, Customer, Identity

            conn.execute(Customer.__table__.insert(), rows)  # type: ignore[attr-defined]
        ids = [r[0] for r in conn.execute(select(Customer.id))]
        for start in range(0, n, 5000):
            chunk = ids[start:start + 5000]
            conn.execute(Identity.__table__.insert(),  # type: ignore[attr-defined]
                         [{"customer_id": c, "kind": "email", "value": f"c{c}@example.com",
                           "verified": False, "created_at": now} for c in chunk])
            conn.execute(Consent.__table__.insert(),  # type: ignore[attr-defined]
                         [{"customer_id": c, "channel": "email", "purpose": "marketing",
                           "granted": True, "at": now, "source": "bench", "created_at": now}
                          for c in chunk])
    engine.dispose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from siyu import migrate
    from siyu.db import make_engine, make_session_factory
    from siyu.playbooks import service, tasks, triggers
    from siyu.playbooks.models import PlaybookRun

    with scratch_database(args.store) as url:
        engine = make_engine(url, pool_size=args.workers + 2) if args.store == "postgresql" \
            else make_engine(url)
        migrate.upgrade(engine)
        _seed(url, args.customers)
        factory = make_session_factory(engine)
        with factory() as s:
            service.policy_apply(s, "quiet_hours: null\n")
            service.apply(s, FILE, file="bench.yaml")
            ids = [int(c) for c in s.scalars(text("SELECT id FROM customers"))]
            t0 = time.perf_counter()
            triggers.on_segment_changes(s, "新客", ids, [])
            s.commit()
            entered = time.perf_counter() - t0
        t1 = time.perf_counter()
        threads = [threading.Thread(target=lambda: [tasks.run_batches(factory, max_batches=10**6)
                                                    for _ in range(3)])
                   for _ in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t1
        with factory() as s:
            done = s.scalar(select(func.count()).select_from(PlaybookRun).where(
                PlaybookRun.status == "done")) or 0
        engine.dispose()
    figures = {"store": args.store, "workers": args.workers, "customers": args.customers,
               "enter_seconds": round(entered, 2), "runs_done": int(done),
               "execute_seconds": round(elapsed, 2),
               "step_executions_per_second": round(2 * done / elapsed, 1)}
    for k, v in figures.items():
        print(f"{k:28} {v}")
    return figures
