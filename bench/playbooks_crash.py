"""The crash test at scale: N customers enter a playbook with two e-mail steps and a wait;
a ``siyu worker`` is SIGKILLed at random moments (at least five times) and restarted; every
e-mail is counted at a real local SMTP server (aiosmtpd). SQLite runs one worker, PostgreSQL
two (one of them killed again and again). The outcome: nobody got any step twice, everyone
with consent got each step except deliveries recorded ``outcome_unknown`` (reported), the
customers without consent were held back with the reason ``no_consent``.

:func:`crash_run` is the machinery; tests/playbooks/test_crash.py runs it for 1,000
customers and asserts :meth:`CrashResult.problems` is empty, ``python -m bench
playbooks_crash --customers 10000`` for 10,000.
"""

from __future__ import annotations

import argparse
import random
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench import playbook_kit as kit

FILE = """\
name: 崩溃测试
status: active
trigger: {event: joined}
steps:
  - send: {channel: email, subject: "第一封 {{ customer.id }}", template: "您好"}
  - wait: 2s
  - send: {channel: email, subject: "第二封 {{ customer.id }}", template: "再会"}
"""


@dataclass
class CrashResult:
    customers: int
    workers: int
    kills: int
    seconds: float
    idle: bool
    received: Counter[str]
    expected: set[str]
    unknown: set[str]
    states: Counter[str]
    refused: set[int]
    no_consent: set[int]
    held_without_reason: int
    log_tail: str = ""
    problems_found: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """What broke the guarantees (empty: none)."""
        out = []
        if self.kills < 5:
            out.append(f"only {self.kills} kills")
        if not self.idle:
            out.append("runs or sends still open at the deadline:\n" + self.log_tail)
        twice = sorted(k for k, n in self.received.items() if n > 1)
        if twice:
            out.append(f"{len(twice)} steps sent twice, e.g. {twice[:3]}")
        if self.no_consent != self.refused:
            out.append("customers without consent not all held back with no_consent")
        if set(self.received) - self.expected:
            out.append("a message reached a customer without consent")
        missing = self.expected - set(self.received)
        if not missing <= self.unknown:
            out.append(f"lost: {sorted(missing - self.unknown)[:5]}")
        if self.states["sent"] != len(self.received) - len(self.unknown & set(self.received)):
            out.append(f"sent records {self.states['sent']} != messages counted "
                       f"{len(self.received)} (minus outcome_unknown that arrived)")
        if self.held_without_reason:
            out.append(f"{self.held_without_reason} held back without a reason")
        return out

    def figures(self) -> dict[str, Any]:
        return {"customers": self.customers, "workers": self.workers, "kills": self.kills,
                "seconds": round(self.seconds, 1), "messages": sum(self.received.values()),
                "expected": len(self.expected), "twice": sum(1 for n in self.received.values()
                                                             if n > 1),
                "outcome_unknown": self.states["outcome_unknown"],
                "held_no_consent": len(self.no_consent)}


def crash_run(sessions: sessionmaker[Session], database_url: str, customers: int, *,
              workers: int, kills: int = 5, gap: tuple[float, float] = (0.5, 2.5),
              timeout: float = 240, seed: int = 13, workdir: Path) -> CrashResult:
    """Seed ``customers`` (one in ten without marketing consent) into the empty database,
    apply the playbook, fire ``joined`` for all through the real ingest, run ``workers``
    worker processes against a local SMTP server, SIGKILL one ``kills`` times at random
    gaps, restart it each time, and wait (up to ``timeout`` s) until every run and send is
    done. Nothing is asserted here: see :meth:`CrashResult.problems`."""
    from siyu.channels.models import Delivery
    from siyu.config import get_settings
    from siyu.db import utcnow
    from siyu.events.service import ingest
    from siyu.playbooks import clock, service
    from siyu.playbooks.models import StepLog
    from tests.channels.smtp import smtp_server

    clock.use_clock(None)  # real time: the worker processes use the wall clock
    with sessions() as s:
        service.policy_apply(s, "quiet_hours: null\ndaily_marketing: 5\n")
        service.apply(s, FILE, file="crash.yaml")
        ids = kit.seed_customers(s, customers, consent=lambda i: i % 10 != 9,
                                 kinds=("email", "external_id"))
        s.commit()
    refused = {c for i, c in enumerate(ids) if i % 10 == 9}
    rng = random.Random(seed)
    log = workdir / "worker.log"
    env = {"SIYU_SMTP_HOST": "127.0.0.1", "SIYU_SMTP_FROM": "care@brand.example",
           "SIYU_JOB_LEASE_SECONDS": "2", "SIYU_ENVIRONMENT": "test"}
    with smtp_server() as box:
        env["SIYU_SMTP_PORT"] = str(box.port)
        with sessions() as s:
            for start in range(0, customers, 500):
                ingest(s, "events", [{"id": f"j{c}", "type": "joined", "ts": utcnow().isoformat(),
                                      "identities": [{"kind": "external_id", "value": f"x{c}"}]}
                                     for c in ids[start:start + 500]], settings=get_settings())
            s.commit()
        t0 = time.monotonic()
        deadline = t0 + timeout
        others = [kit.worker(database_url, log, env=env) for _ in range(workers - 1)]
        proc = kit.worker(database_url, log, env=env)
        done_kills = 0
        try:
            while done_kills < kills and time.monotonic() < deadline:
                time.sleep(rng.uniform(*gap))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                done_kills += 1
                proc = kit.worker(database_url, log, env=env)
            idle = kit.wait_idle(sessions, deadline=deadline, every=0.5)
            seconds = time.monotonic() - t0
        finally:
            kit.stop([proc, *others])
        received = Counter(str(m["Subject"]) for m in box.messages)
    with sessions() as s:
        states = Counter(s.scalars(select(Delivery.state).where(Delivery.key.is_not(None))))
        unknown = set(s.scalars(select(Delivery.content["subject"].as_string()).where(
            Delivery.state == "outcome_unknown")))
        held = len(s.scalars(select(StepLog.id).where(
            StepLog.outcome.in_(("suppressed", "deferred")), StepLog.reason.is_(None))).all())
        no_consent = set(s.scalars(select(StepLog.customer_id).where(
            StepLog.outcome == "suppressed", StepLog.reason == "no_consent")))
    expected = {f"{n} {c}" for c in ids if c not in refused for n in ("第一封", "第二封")}
    return CrashResult(customers=customers, workers=workers, kills=done_kills, seconds=seconds,
                       idle=idle, received=received, expected=expected, unknown=unknown,
                       states=states, refused=refused, no_consent=no_consent,
                       held_without_reason=held,
                       log_tail=log.read_text(errors="replace")[-3000:])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: 1 on SQLite, 2 on PostgreSQL)")
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--seed", type=int, default=13)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.common import scratch_database
    from siyu import migrate
    from siyu.db import make_engine, make_session_factory

    workers = args.workers or (2 if args.store == "postgresql" else 1)
    load_before = kit.load()
    with scratch_database(args.store) as url, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url)
        migrate.upgrade(engine)
        # Kills spread over the first minute or so, whatever the size.
        result = crash_run(make_session_factory(engine), url, args.customers,
                           workers=workers, kills=args.kills, gap=(1.0, 12.0),
                           timeout=3600, seed=args.seed, workdir=Path(tmp))
        engine.dispose()
    figures = {"store": args.store, **result.figures(), "load_before": load_before,
               "load_after": kit.load(), "problems": result.problems()}
    for k, v in figures.items():
        print(f"{k:18} {v}")
    return figures
