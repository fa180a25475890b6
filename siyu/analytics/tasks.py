"""Background jobs of the analytics domain."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from siyu.analytics import service
from siyu.analytics.config import load_config
from siyu.config import get_settings
from siyu.db import utcnow
from siyu.jobs import service as jobs
from siyu.segments import service as segments

log = logging.getLogger("siyu.analytics")


@jobs.job(service.RECOMPUTE_JOB)
def recompute_scores(session: Session, payload: dict[str, Any]) -> None:
    """Recompute every customer's scores as of now, then ask saved segments to refresh.

    Idempotent: it rewrites the scores from the data, so a retried run gives the same rows;
    a stage change is recorded once because the second run sees it already stored.
    """
    result = service.recompute_scores(session, now=utcnow(), config=load_config(),
                                      timezone=get_settings().timezone)
    segments.request_refresh(session, reason="scores")
    log.info("scores recomputed for %d customers in %.1fs (%d transitions)",
             result.customers, result.seconds, result.transitions)
