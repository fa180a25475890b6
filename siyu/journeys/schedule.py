"""When stages and scenarios are recomputed: for the customers a batch or a message touched
(within seconds, through the durable jobs), and for everyone once an hour (time alone moves
customers, e.g. a consumption cycle ending).

Kept apart from :mod:`siyu.journeys.service` so registering the ingest hook costs nothing
at start-up; the package's ``__init__`` registers it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.events.hooks import register_after_change
from siyu.jobs import service as jobs

CUSTOMERS_JOB = "journeys.recompute_customers"
ALL_JOB = "journeys.recompute_all"
CHUNK = 1000
FULL_EVERY = dt.timedelta(hours=1)


def request_customers(session: Session, customer_ids: Sequence[int]) -> None:
    """Queue a recomputation of these customers, in the caller's transaction (so it runs
    exactly when the change that asked for it committed)."""
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), CHUNK):
        jobs.enqueue(session, CUSTOMERS_JOB, {"customer_ids": ids[start:start + CHUNK]})
    schedule_full(session)


def schedule_full(session: Session, *, now: dt.datetime | None = None) -> dt.datetime:
    """Queue the hourly full recomputation at the next hour (once per hour however many
    callers ask); returns when it runs."""
    moment = now or utcnow()
    run_at = moment.replace(minute=0, second=0, microsecond=0) + FULL_EVERY
    jobs.enqueue(session, ALL_JOB, {}, dedup_key=f"{ALL_JOB}:{run_at.isoformat()}",
                 run_at=run_at)
    return run_at


def request_full(session: Session, *, now: dt.datetime | None = None) -> None:
    """Queue a full recomputation now (deduplicated per minute)."""
    moment = now or utcnow()
    jobs.enqueue(session, ALL_JOB, {}, dedup_key=f"{ALL_JOB}:now:{int(moment.timestamp() // 60)}",
                 run_at=moment)


def _after_change(session: Session, kind: str, customer_ids: Sequence[int]) -> None:
    request_customers(session, customer_ids)


def register() -> None:
    register_after_change("journeys.recompute_customers", _after_change)
