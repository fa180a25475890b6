"""What the playbook benchmarks (and tests/playbooks/test_crash.py) share: customers seeded
in set-based inserts, ``siyu worker`` processes, waiting until the engine and the outbox are
idle, and the machine's load average to print beside every figure."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker


def load() -> str:
    """The 1/5/15-minute load average (the machine is shared: say how busy it was)."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def seed_customers(session: Session, n: int, *, consent: Callable[[int], bool] = lambda i: True,
                   kinds: tuple[str, ...] = ("email",), name: str = "客户",
                   extra: Callable[[int], dict[str, Any]] | None = None) -> list[int]:
    """``n`` customers with an e-mail (``c<id>@example.com``) and, for each kind in
    ``kinds`` other than e-mail, an identity ``<kind>-<id>`` (``external_id``: ``x<id>``);
    e-mail marketing consent for the ``i``-th where ``consent(i)``. Set-based (Core inserts
    of 5,000 rows); returns the ids in order. The caller commits."""
    from siyu.customers.models import Consent, Customer, Identity
    from siyu.db import utcnow

    now = utcnow()
    before = session.scalar(select(func.coalesce(func.max(Customer.id), 0))) or 0
    for start in range(0, n, 5000):
        session.execute(Customer.__table__.insert(),  # type: ignore[attr-defined]
                        [{"name": f"{name}{i}", "attributes": {}, "status": "active",
                          "created_at": now, "updated_at": now, **(extra(i) if extra else {})}
                         for i in range(start, min(n, start + 5000))])
    ids = [int(i) for i in session.scalars(select(Customer.id).where(Customer.id > before)
                                           .order_by(Customer.id))]

    def value(kind: str, cid: int) -> str:
        return {"email": f"c{cid}@example.com", "external_id": f"x{cid}"}.get(
            kind, f"{kind}-{cid}")

    for start in range(0, n, 5000):
        chunk = list(enumerate(ids[start:start + 5000], start))
        session.execute(Identity.__table__.insert(),  # type: ignore[attr-defined]
                        [{"customer_id": c, "kind": k, "value": value(k, c), "verified": False,
                          "created_at": now} for _, c in chunk for k in kinds])
        granted = [{"customer_id": c, "channel": "email", "purpose": "marketing",
                    "granted": True, "at": now - dt.timedelta(days=1), "source": "bench",
                    "created_at": now} for i, c in chunk if consent(i)]
        if granted:
            session.execute(Consent.__table__.insert(), granted)  # type: ignore[attr-defined]
    return ids


def worker(database_url: str, log: Path, *, env: dict[str, str] | None = None,
           poll: float = 0.2) -> subprocess.Popen[bytes]:
    """Start one ``siyu worker`` process (its output appended to ``log``)."""
    full = {**os.environ, "SIYU_DATABASE_URL": database_url, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "siyu.cli", "worker", "--poll", str(poll)],
                            env=full, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_started(log: Path, count: int, timeout: float = 60) -> None:
    """Wait until ``count`` workers said they are running in ``log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count("running; Ctrl-C") >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"workers did not start: {log.read_text(errors='replace')[-2000:]}")


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_quiet(procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    """Wait until the processes are idle (their start-up -- imports, the day's jobs -- done:
    under a quarter of a core over half a second), so a measurement does not share the
    CPU with it. Without /proc, wait a few seconds."""
    if not Path("/proc/self/stat").exists():
        time.sleep(5)
        return
    deadline = time.monotonic() + timeout
    before = sum(_cpu_ticks(p.pid) for p in procs)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(_cpu_ticks(p.pid) for p in procs)
        if now - before < 0.125 * os.sysconf("SC_CLK_TCK") * len(procs):
            return
        before = now


def open_runs(sessions: sessionmaker[Session]) -> int:
    """1 while any run is open or an ingest batch's entries wait to be entered (a pending
    ``playbooks.enter`` job), else 0: the idle poll reads one row (a count of 100,000 open
    runs every 0.2 s took a share of the machine from the workers it measures)."""
    from siyu.jobs.models import Job
    from siyu.playbooks.models import PlaybookRun

    with sessions() as s:
        if s.scalar(select(Job.id).where(Job.name == "playbooks.enter", Job.status.in_(
                ("queued", "running"))).limit(1)) is not None:
            return 1
        return int(s.scalar(select(PlaybookRun.id).where(
            PlaybookRun.status.in_(("active", "waiting"))).limit(1)) is not None)


def pending_sends(sessions: sessionmaker[Session]) -> int:
    """1 while any send job is pending, else 0 (one row read, as :func:`open_runs`)."""
    from siyu.jobs.models import Job

    with sessions() as s:
        return int(s.scalar(select(Job.id).where(
            Job.name == "channels.send", Job.status.in_(("queued", "running"))).limit(1))
            is not None)


def wait_idle(sessions: sessionmaker[Session], *, deadline: float, sends: bool = True,
              every: float = 0.25) -> bool:
    """Poll until no run is open (and, with ``sends``, no send job is pending) or the
    ``time.monotonic()`` deadline passes; whether it became idle."""
    while time.monotonic() < deadline:
        if open_runs(sessions) == 0 and (not sends or pending_sends(sessions) == 0):
            return True
        time.sleep(every)
    return False


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
