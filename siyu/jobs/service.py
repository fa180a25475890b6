"""Enqueue, claim and run jobs.

* ``enqueue`` writes a row in the caller's transaction, so a job exists exactly when the
  work that asked for it committed (no lost or phantom jobs).
* ``claim`` takes due jobs with a lease: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and on
  SQLite a conditional UPDATE (SQLite serialises writers, so one claimant wins). A worker
  that dies leaves a lease that expires and the job is claimed again: handlers must be
  idempotent (they receive ids and check state).
* A failing job is retried with exponential backoff up to ``max_attempts``, then marked
  ``failed`` with its last error kept for inspection.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import utcnow
from siyu.jobs.models import Job

log = logging.getLogger("siyu.jobs")
Handler = Callable[[Session, dict[str, Any]], None]
_HANDLERS: dict[str, Handler] = {}


def lease() -> dt.timedelta:
    """How long a claim lasts (``SIYU_JOB_LEASE_SECONDS``)."""
    from siyu.config import get_settings

    return dt.timedelta(seconds=get_settings().job_lease_seconds)


def job(name: str) -> Callable[[Handler], Handler]:
    """Register ``fn(session, payload)`` as the handler of jobs called ``name``."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def handlers() -> dict[str, Handler]:
    return dict(_HANDLERS)


def enqueue(
    session: Session,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    dedup_key: str | None = None,
    run_at: dt.datetime | None = None,
    max_attempts: int = 5,
) -> None:
    """Add a job in the current transaction; a repeated ``dedup_key`` is ignored."""
    values = {"name": name, "payload": payload or {}, "dedup_key": dedup_key,
              "status": "queued", "run_at": run_at or utcnow(), "attempts": 0,
              "max_attempts": max_attempts, "created_at": utcnow()}
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert(Job) if dialect == "postgresql" else sqlite_insert(Job)).values(values)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["dedup_key"])
                    if dedup_key else stmt)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(session: Session, *, worker: str, limit: int = 10,
          names: set[str] | None = None) -> list[int]:
    """Lease up to ``limit`` due jobs to ``worker`` and return their ids (caller commits)."""
    now = utcnow()
    due = (
        select(Job.id)
        .where(
            ((Job.status == "queued") & (Job.run_at <= now))
            | ((Job.status == "running") & (Job.locked_until < now))
        )
        .order_by(Job.run_at, Job.id)
        .limit(limit)
    )
    if names:
        due = due.where(Job.name.in_(names))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(session.scalars(due))
    if not ids:
        return []
    # One conditional UPDATE for the batch (not one per job): a job another claimant took
    # meanwhile (SQLite) no longer matches and is not returned.
    result = session.execute(
        update(Job)
        .where(Job.id.in_(ids), (Job.status == "queued") | (Job.locked_until < now))
        .values(status="running", locked_by=worker, locked_until=now + lease(),
                attempts=Job.attempts + 1)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    taken = {int(i) for i in result.scalars()}
    return [i for i in ids if i in taken]


def _heartbeat(factory: sessionmaker[Session], job_id: int, worker: str,
               done: threading.Event) -> None:
    """Renew the claim on a running job every third of the lease until it ends."""
    period = lease().total_seconds() / 3
    while not done.wait(period):
        try:
            with factory() as session:
                session.execute(update(Job).where(Job.id == job_id, Job.locked_by == worker,
                                                  Job.status == "running")
                                .values(locked_until=utcnow() + lease()))
                session.commit()
        except Exception:  # a busy database: the next beat tries again
            log.debug("heartbeat for job %s failed", job_id, exc_info=True)


@dataclass
class RunSummary:
    done: int = 0
    retried: int = 0
    failed: int = 0


def run_job(factory: sessionmaker[Session], job_id: int, *, worker: str) -> str:
    """Run one claimed job in its own transaction; record success, retry or failure."""
    with factory() as session:
        row = session.get(Job, job_id)
        if row is None or row.status != "running" or row.locked_by != worker:
            return "skipped"
        name, payload, attempts, max_attempts = row.name, dict(row.payload), row.attempts, \
            row.max_attempts
    handler = _HANDLERS.get(name)
    error: str | None = None
    if handler is None:
        error = f"no handler registered for job {name!r}"
    else:
        done = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(factory, job_id, worker, done),
                                daemon=True)
        beat.start()
        with factory() as session:
            try:
                handler(session, payload)
                session.commit()
            except Exception:
                session.rollback()
                error = traceback.format_exc(limit=5)
                log.warning("job %s #%s failed (attempt %s)", name, job_id, attempts)
            finally:
                done.set()
        beat.join()
    with factory() as session:
        values: dict[str, Any]
        if error is None:
            values = {"status": "done", "finished_at": utcnow(), "locked_until": None,
                      "last_error": None}
            outcome = "done"
        elif attempts >= max_attempts:
            values = {"status": "failed", "finished_at": utcnow(), "locked_until": None,
                      "last_error": error}
            outcome = "failed"
        else:
            backoff = dt.timedelta(seconds=min(2 ** attempts, 600))
            values = {"status": "queued", "run_at": utcnow() + backoff, "locked_until": None,
                      "locked_by": None, "last_error": error}
            outcome = "retried"
        session.execute(update(Job).where(Job.id == job_id, Job.locked_by == worker)
                        .values(**values))
        session.commit()
    return outcome


def run_due(factory: sessionmaker[Session], *, worker: str | None = None, limit: int = 50,
            names: set[str] | None = None) -> RunSummary:
    """Claim and run the jobs that are due now; returns what happened."""
    worker = worker or worker_id()
    summary = RunSummary()
    with factory() as session:
        ids = claim(session, worker=worker, limit=limit, names=names)
        session.commit()
    for job_id in ids:
        outcome = run_job(factory, job_id, worker=worker)
        if outcome == "done":
            summary.done += 1
        elif outcome == "retried":
            summary.retried += 1
        elif outcome == "failed":
            summary.failed += 1
    return summary


def pending_count(session: Session) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(Job).where(
        Job.status.in_(("queued", "running")))) or 0
