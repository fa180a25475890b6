"""Playbook step executions per second: a segment-entered broadcast to N customers.

N customers (with e-mail and marketing consent) enter one playbook at once
(``triggers.on_segment_changes``, committed by the benchmark); W ``siyu worker`` processes,
started and idle beforehand, are woken by the commit (PostgreSQL ``NOTIFY``; SQLite: their
poll) and run the engine until every run is done. A run is two steps (a marketing e-mail
through the full contact policy into the outbox, and a tag), so step executions = 2 x N.
Provider latency is excluded: the measurement ends when the last run is done, and the
outbox's send jobs -- which the workers take only between engine rounds of 20 batches -- go
to no SMTP server.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import playbook_kit as kit
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
    parser.add_argument("--workers", type=int, default=1,
                        help="siyu worker processes")
    parser.add_argument("--batch", type=int, default=None,
                        help="SIYU_PLAYBOOK_BATCH for the workers (default: theirs, 500)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from siyu import migrate
    from siyu.db import make_engine, make_session_factory
    from siyu.playbooks import service, triggers
    from siyu.playbooks.models import PlaybookRun

    load_before = kit.load()
    with scratch_database(args.store) as url, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        with factory() as s:
            ids = kit.seed_customers(s, args.customers)
            service.policy_apply(s, "quiet_hours: null\n")
            service.apply(s, FILE, file="bench.yaml")
            s.commit()
        log = Path(tmp) / "workers.log"
        env = {"SIYU_PLAYBOOK_BATCH": str(args.batch)} if args.batch else {}
        procs = [kit.worker(url, log, env=env) for _ in range(args.workers)]
        try:
            kit.wait_started(log, args.workers)
            kit.wait_quiet(procs)  # past their start-up work (imports, the day's jobs)
            with factory() as s:
                t0 = time.perf_counter()
                triggers.on_segment_changes(s, "新客", ids, [])
                s.commit()
                t1 = time.perf_counter()
            idle = kit.wait_idle(factory, deadline=time.monotonic() + 3600, sends=False,
                                 every=0.2)
            t2 = time.perf_counter()
        finally:
            kit.stop(procs)
        with factory() as s:
            done = s.scalar(select(func.count()).select_from(PlaybookRun).where(
                PlaybookRun.status == "done")) or 0
        engine.dispose()
    if not idle:
        raise RuntimeError(f"runs still open after an hour: {log.read_text()[-2000:]}")
    figures = {"store": args.store, "workers": args.workers, "customers": args.customers,
               "enter_seconds": round(t1 - t0, 2), "runs_done": int(done),
               "execute_seconds": round(t2 - t1, 2),
               "step_executions_per_second": round(2 * done / (t2 - t1), 1),
               "load_before": load_before, "load_after": kit.load()}
    for k, v in figures.items():
        print(f"{k:28} {v}")
    return figures
