"""Background jobs of the journeys domain."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.db import utcnow
from siyu.jobs.service import job
from siyu.journeys import service
from siyu.journeys.schedule import ALL_JOB, CUSTOMERS_JOB, schedule_full

log = logging.getLogger("siyu.journeys")


@job(CUSTOMERS_JOB)
def recompute_customers(session: Session, payload: dict[str, Any]) -> None:
    """Recompute the stages and scenarios of the customers an order, event or message
    concerned. Idempotent: a retried run finds nothing left to change."""
    ids = [int(i) for i in payload.get("customer_ids", [])]
    service.recompute(session, now=utcnow(), customer_ids=ids,
                      timezone=get_settings().timezone)


@job(ALL_JOB)
def recompute_all(session: Session, payload: dict[str, Any]) -> None:
    """Recompute everyone (time alone moves customers: a cycle ends, a window closes), then
    queue the next hourly run."""
    now = utcnow()
    result = service.recompute(session, now=now, timezone=get_settings().timezone)
    schedule_full(session, now=now)
    log.info("journeys recomputed for %d customers in %.1fs (%d stage changes, %d entered, "
             "%d exited)", result.customers, result.seconds, result.stage_changes,
             result.entered, result.exited)
