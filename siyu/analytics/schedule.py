"""When scores are recomputed: after ingest (bucketed) and on request.

Kept apart from :mod:`siyu.analytics.service` (numpy, scipy) so that registering the
after-ingest hook costs nothing at start-up; the package's ``__init__`` registers it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.events.hooks import register_after_ingest
from siyu.jobs import service as jobs

RECOMPUTE_JOB = "analytics.recompute_scores"
RECOMPUTE_BUCKET_SECONDS = 600


def schedule_recompute(session: Session, *, now: dt.datetime | None = None) -> str:
    """Ask for a recomputation after new orders or events, in the caller's transaction.

    All requests within one 10-minute bucket share a dedup key, and the job runs when the
    bucket ends, so a stream of ingests costs one recomputation per bucket. Returns the key.
    """
    moment = now or utcnow()
    bucket = int(moment.timestamp() // RECOMPUTE_BUCKET_SECONDS)
    key = f"{RECOMPUTE_JOB}:{bucket}"
    run_at = dt.datetime.fromtimestamp((bucket + 1) * RECOMPUTE_BUCKET_SECONDS, dt.UTC)
    jobs.enqueue(session, RECOMPUTE_JOB, {}, dedup_key=key, run_at=run_at)
    return key


def _after_ingest(session: Session, kind: str, accepted: int) -> None:
    if accepted:
        schedule_recompute(session)


def request_recompute(session: Session, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Queue a recomputation to run now (deduplicated per minute, so repeated clicks queue
    one job)."""
    moment = now or utcnow()
    key = f"{RECOMPUTE_JOB}:manual:{int(moment.timestamp() // 60)}"
    jobs.enqueue(session, RECOMPUTE_JOB, {}, dedup_key=key, run_at=moment)
    return {"queued": True, "job": RECOMPUTE_JOB, "dedup_key": key}


def register() -> None:
    """New orders and events bring a recomputation at the end of the current 10-minute
    bucket."""
    register_after_ingest("analytics.schedule_recompute", _after_ingest)
