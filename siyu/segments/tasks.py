"""Background jobs of the segments domain."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.db import utcnow
from siyu.jobs import service as jobs
from siyu.segments import service

log = logging.getLogger("siyu.segments")


@jobs.job(service.REFRESH_JOB)
def refresh_all(session: Session, payload: dict[str, Any]) -> None:
    """Refresh every saved segment, then schedule the next periodic run.

    Idempotent: a repeated run records only what changed since the previous one. The next
    run is deduplicated per time bucket, so retries and the after-scores runs never
    multiply the schedule.
    """
    now = utcnow()
    results = service.refresh_all(session, now=now, timezone=get_settings().timezone)
    log.info("refreshed %d segments (%s)", len(results), payload.get("reason", "schedule"))
    if results:
        service.schedule_refresh(session, now=now)
