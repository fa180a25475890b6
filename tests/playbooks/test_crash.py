"""The crash test: 1,000 customers through two e-mail steps and a wait, the worker process
SIGKILLed at random moments at least five times and restarted; counted at a real local SMTP
server, nobody gets a step twice and everyone eligible gets each step except deliveries
recorded as ``outcome_unknown``. The machinery is :func:`bench.playbooks_crash.crash_run`
(``python -m bench playbooks_crash`` runs it for 10,000)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bench.playbooks_crash import crash_run

N = int(os.environ.get("SIYU_CRASH_CUSTOMERS", "1000"))


@pytest.mark.slow
def test_kills_lose_nothing_and_repeat_nothing(sessions: sessionmaker[Session],
                                               database_url: str, tmp_path: Path) -> None:
    # SQLite: one worker; PostgreSQL: two, one of them killed again and again.
    workers = 2 if database_url.startswith("postgresql") else 1
    result = crash_run(sessions, database_url, N, workers=workers, kills=5,
                       gap=(0.5, 2.5), timeout=240, seed=13, workdir=tmp_path)
    assert result.problems() == []
    assert result.kills >= 5
    assert len(result.received) >= len(result.expected) - len(result.unknown) > 0
    assert len(result.no_consent) == N // 10  # one in ten held back, each with its reason
    print(f"crash test: {result.figures()}")
