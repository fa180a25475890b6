"""Shared benchmark plumbing: scratch databases, a server subprocess, percentiles, and the
service desk's traffic (customers' messages, demo phones) shared by the bot and phone benches."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

VAGUE_MESSAGES = ["怎么回事", "在吗", "你好", "帮我看看", "有个问题", "嗯嗯", "？？"]

PG_SERVER = os.environ.get("SIYU_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@contextlib.contextmanager
def scratch_database(store: str) -> Iterator[str]:
    """A fresh, empty database URL on ``store`` (sqlite|postgresql), removed afterwards."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    name = f"siyu_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(PG_SERVER), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def copy_of_database(url: str) -> Iterator[str]:
    """A scratch copy of the database at ``url`` (a SQLite file copied, or a PostgreSQL
    ``CREATE DATABASE ... TEMPLATE``), removed afterwards: a benchmark seeded once can be
    measured again from the same starting point, e.g. when the machine is quiet."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import shutil

        with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
            target = Path(tmp) / "bench.db"
            shutil.copyfile(str(parsed.database), target)
            yield f"sqlite:///{target}"
        return
    name = f"siyu_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"'))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def siyu(args: list[str], url: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIYU_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "siyu.cli", *args], env=env, text=True,
                          capture_output=True, check=True, **kwargs)  # type: ignore[call-overload]


def api_key(url: str) -> str:
    return siyu(["apikey", "create", "bench"], url).stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def server(url: str, *, extra_env: dict[str, str] | None = None, processes: int = 1,
           worker: bool = False, pids: list[int] | None = None) -> Iterator[str]:
    """Run ``siyu serve`` (``--workers processes``; with ``worker`` the job loop runs in the
    server process, as plain ``siyu serve`` does) on a free loopback port; yield its URL."""
    port = free_port()
    env = {**os.environ, "SIYU_DATABASE_URL": url, **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "siyu.cli", "serve", "--port", str(port),
         "--worker" if worker else "--no-worker", "--workers", str(processes)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    if pids is not None:  # the caller reads the server's CPU time (/proc/PID/stat)
        pids.append(proc.pid)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                detail = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"server did not start: {detail}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def service_messages(n: int, seed: int) -> list[str]:
    """``n`` customer messages: the demo knowledge base's intent examples, 15% vague ones."""
    from siyu.kb.demo import load_data

    rng = random.Random(seed)
    examples = [e for i in load_data()["intents"] for e in i["examples"]]
    return [rng.choice(VAGUE_MESSAGES) if rng.random() < 0.15 else rng.choice(examples)
            for _ in range(n)]


def demo_phones(sessions: Any, limit: int) -> list[str]:
    """Up to ``limit`` phone numbers held by the seeded demo customers, in a stable order."""
    from sqlalchemy import select

    from siyu.customers.models import Identity

    with sessions() as s:
        return list(s.scalars(select(Identity.value).where(Identity.kind == "phone")
                              .order_by(Identity.id).limit(limit)))
