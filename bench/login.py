"""Sign-in time for a known user with a wrong password against an unknown name (the same
scrypt work at the production parameters, so the two cannot be told apart by timing)."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=10)


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["SIYU_PASSWORD_SCRYPT_LOG2N"] = "17"
    from siyu import migrate
    from siyu.auth import service
    from siyu.config import get_settings
    from siyu.db import make_engine, make_session_factory

    get_settings.cache_clear()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        with sessions() as session:
            service.create_user(session, "alice", "correct-horse-9", "agent")
            session.commit()
            service.dummy_hash()
            times: dict[str, list[float]] = {"wrong_password": [], "unknown_user": []}
            for _ in range(args.rounds):
                for name, label in (("alice", "wrong_password"), ("nobody", "unknown_user")):
                    start = time.perf_counter()
                    service.check_credentials(session, name, "wrong-password")
                    times[label].append((time.perf_counter() - start) * 1000)
        engine.dispose()
    figures = {k: round(statistics.median(v), 1) for k, v in times.items()}
    print(f"scrypt N=2^17 r=8 p=1, {args.rounds} rounds (median ms): "
          f"known user, wrong password {figures['wrong_password']} ms; "
          f"unknown user {figures['unknown_user']} ms")
    return figures
