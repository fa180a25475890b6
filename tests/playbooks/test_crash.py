"""The crash test: 1,000 customers through two e-mail steps and a wait, the worker process
SIGKILLed at random moments at least five times and restarted; counted at a real local SMTP
server, nobody gets a step twice and everyone eligible gets each step except deliveries
recorded as ``outcome_unknown``."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.models import Delivery
from siyu.config import get_settings
from siyu.customers.models import Consent, Customer, Identity
from siyu.db import utcnow
from siyu.events.service import ingest
from siyu.jobs.models import Job
from siyu.playbooks import clock, service
from siyu.playbooks.models import PlaybookRun, StepLog
from tests.channels.smtp import smtp_server

N = int(os.environ.get("SIYU_CRASH_CUSTOMERS", "1000"))
FILE = """\
name: 崩溃测试
status: active
trigger: {event: joined}
steps:
  - send: {channel: email, subject: "第一封 {{ customer.id }}", template: "您好"}
  - wait: 2s
  - send: {channel: email, subject: "第二封 {{ customer.id }}", template: "再会"}
"""


def _worker(database_url: str, smtp_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SIYU_DATABASE_URL": database_url, "SIYU_SMTP_HOST": "127.0.0.1",
           "SIYU_SMTP_PORT": str(smtp_port), "SIYU_SMTP_FROM": "care@brand.example",
           "SIYU_JOB_LEASE_SECONDS": "2", "SIYU_ENVIRONMENT": "test"}
    return subprocess.Popen([sys.executable, "-m", "siyu.cli", "worker", "--poll", "0.2"],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_kills_lose_nothing_and_repeat_nothing(sessions: sessionmaker[Session],
                                               database_url: str, tmp_path: Path) -> None:
    clock.use_clock(None)  # real time: the worker processes use the wall clock
    with sessions() as s:
        service.policy_apply(s, "quiet_hours: null\ndaily_marketing: 5\n")
        service.apply(s, FILE, file="crash.yaml")
        customers = [Customer(name=f"客户{i}") for i in range(N)]
        s.add_all(customers)
        s.flush()
        now = utcnow()
        for i, c in enumerate(customers):
            s.add(Identity(customer_id=c.id, kind="email", value=f"c{c.id}@example.com"))
            s.add(Identity(customer_id=c.id, kind="external_id", value=f"x{c.id}"))
            if i % 10 == 9:  # no marketing consent: held back, with a reason
                continue
            s.add(Consent(customer_id=c.id, channel="email", purpose="marketing",
                          granted=True, at=now - dt.timedelta(days=1), source="test"))
        s.commit()
        ids = [c.id for c in customers]
        refused = {c for i, c in enumerate(ids) if i % 10 == 9}
    rng = random.Random(13)
    log = tmp_path / "worker.log"
    with smtp_server() as box:
        with sessions() as s:
            for start in range(0, N, 500):
                ingest(s, "events", [{"id": f"j{c}", "type": "joined", "ts": utcnow().isoformat(),
                                      "identities": [{"kind": "external_id", "value": f"x{c}"}]}
                                     for c in ids[start:start + 500]], settings=get_settings())
            s.commit()
        kills = 0
        deadline = time.monotonic() + 240
        # SQLite: one worker; PostgreSQL: two, one of them killed again and again.
        workers = 2 if database_url.startswith("postgresql") else 1
        others = [_worker(database_url, box.port, log) for _ in range(workers - 1)]
        proc = _worker(database_url, box.port, log)
        while kills < 5 and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.5, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = _worker(database_url, box.port, log)
        try:
            while time.monotonic() < deadline:
                with sessions() as s:
                    open_runs = s.scalar(select(func.count()).select_from(PlaybookRun).where(
                        PlaybookRun.status.in_(("active", "waiting")))) or 0
                    pending = s.scalar(select(func.count()).select_from(Job).where(
                        Job.name == "channels.send", Job.status.in_(("queued", "running")))) or 0
                if open_runs == 0 and pending == 0:
                    break
                time.sleep(0.5)
        finally:
            for p in [proc, *others]:
                p.kill()
                p.wait(timeout=10)
        received = Counter(str(m["Subject"]) for m in box.messages)
    assert kills >= 5
    assert open_runs == 0 and pending == 0, log.read_text()[-3000:]
    assert max(received.values()) == 1  # nobody got any step twice
    with sessions() as s:
        states = Counter(s.scalars(select(Delivery.state).where(Delivery.key.is_not(None))))
        unknown = set(s.scalars(select(Delivery.content["subject"].as_string()).where(
            Delivery.state == "outcome_unknown")))
        held = s.scalar(select(func.count()).select_from(StepLog).where(
            StepLog.outcome.in_(("suppressed", "deferred")), StepLog.reason.is_(None)))
        no_consent = set(s.scalars(select(StepLog.customer_id).where(
            StepLog.outcome == "suppressed", StepLog.reason == "no_consent")))
    assert no_consent == refused  # every customer held back has the recorded reason
    expected = {f"{n} {c}" for c in ids if c not in refused for n in ("第一封", "第二封")}
    assert not set(received) - expected  # nothing reached a customer without consent
    missing = expected - set(received)
    assert missing <= unknown, sorted(missing - unknown)[:5]
    assert states["sent"] == len(received) - len(unknown & set(received))
    assert held == 0
    print(f"crash test: {kills} kills, {len(received)} messages, "
          f"{states['outcome_unknown']} outcome_unknown")
