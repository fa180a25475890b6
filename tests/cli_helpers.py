"""Run the ``siyu`` CLI in-process against the test database."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from siyu.config import get_settings


def run_cli(monkeypatch: pytest.MonkeyPatch, database_url: str, *args: str) -> Result:
    monkeypatch.setenv("SIYU_DATABASE_URL", database_url)
    get_settings.cache_clear()
    from siyu.cli import app

    try:
        return CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        get_settings.cache_clear()


def wait_until_healthy(base: str, proc: subprocess.Popen[bytes], log_path: Path,
                       timeout: float = 60) -> None:
    """Poll ``base``/healthz until it answers 200; fail with the process's log if it exits
    or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{base} did not become healthy: {log_path.read_text()}")
        time.sleep(0.2)
