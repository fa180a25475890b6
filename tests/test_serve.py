"""``siyu serve --workers N``: several server processes share one database."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy.orm import Session, sessionmaker

from tests.channels.conftest import free_port
from tests.cli_helpers import wait_until_healthy

SIYU = [sys.executable, "-m", "siyu.cli"]


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc; Linux only, as CI is)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _batch(n: int, prefix: str) -> dict[str, object]:
    return {"events": [{"id": f"{prefix}-{i}", "type": "view_product",
                        "ts": "2026-05-01T10:00:00+08:00",
                        "identities": [{"kind": "wechat_openid", "value": f"o-{i % 50}"}]}
                       for i in range(n)]}


def test_two_processes_serve_concurrent_batches(
        tmp_path: Path, database_url: str, sessions: sessionmaker[Session]) -> None:
    # On PostgreSQL the suite's own database (``sessions`` empties it afterwards).
    url = (f"sqlite:///{tmp_path / 'serve.db'}" if database_url.startswith("sqlite")
           else database_url)
    env = {**os.environ, "SIYU_DATABASE_URL": url, "SIYU_ENVIRONMENT": "test"}
    subprocess.run([*SIYU, "db", "upgrade"], env=env, check=True, capture_output=True)
    key = subprocess.run([*SIYU, "apikey", "create", "serve-test"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([*SIYU, "serve", "--port", str(port), "--workers", "2",
                                 "--no-worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, proc, log_path, timeout=60)
            assert "2 processes" in log_path.read_text()
            servers = [c for c in _children(proc.pid)
                       if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
            assert len(servers) == 2, servers

            headers = {"Authorization": f"Bearer {key}"}

            def post(prefix: str) -> dict[str, object]:
                r = httpx.post(f"{base}/api/v1/events", json=_batch(400, prefix),
                               headers=headers, timeout=60)
                assert r.status_code == 200, r.text + log_path.read_text()[-4000:]
                return dict(r.json())

            # Eight batches at once, all naming the same 50 new visitors: the processes race
            # to create them, and each visitor still ends as one customer.
            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(post, [f"b{n}" for n in range(8)]))
            assert sum(int(r["accepted"]) for r in results) == 8 * 400  # type: ignore[call-overload]
            found = httpx.get(f"{base}/api/v1/customers", params={"per_page": 100},
                              headers=headers).json()
            assert found["total"] == 50, found
        finally:
            proc.terminate()
            proc.wait(timeout=20)
