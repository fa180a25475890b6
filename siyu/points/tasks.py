"""The daily points expiry job (``points.expire``): writes the expiry entries of every
cutoff passed (:func:`siyu.points.expiry.expire`, idempotent) and queues the next day's run.
A worker starting up queues the first one; nothing runs while points never expire
(``SIYU_POINTS_EXPIRE_AFTER_YEARS`` = 0), though the job keeps its daily slot."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from siyu.db import utcnow
from siyu.jobs import service as jobs

log = logging.getLogger("siyu.points")

EXPIRE_JOB = "points.expire"
RUN_AT_LOCAL = dt.time(0, 10)  # ten minutes into the brand's day: just after a cutoff


def next_run(now: dt.datetime, timezone: str) -> dt.datetime:
    """Today's 00:10 in brand time, or tomorrow's once it has passed."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    at = dt.datetime.combine(local.date(), RUN_AT_LOCAL, zone)
    if at <= local:
        at = dt.datetime.combine(local.date() + dt.timedelta(days=1), RUN_AT_LOCAL, zone)
    return at.astimezone(dt.UTC)


def schedule(session: Session, *, now: dt.datetime | None = None) -> dt.datetime:
    """Queue the next daily run (one per day, whoever asks, by dedup key)."""
    from siyu.config import get_settings

    tz = get_settings().timezone
    at = next_run(now or utcnow(), tz)
    jobs.enqueue(session, EXPIRE_JOB, {}, dedup_key=f"{EXPIRE_JOB}:{at:%Y%m%d}", run_at=at)
    return at


@jobs.job(EXPIRE_JOB)
def run_expire(session: Session, payload: dict[str, Any]) -> None:
    from siyu.points import expiry

    result = expiry.expire(session, now=utcnow())
    if result.entries:
        log.info("points expired: %s", result.to_dict())
    schedule(session)


def on_worker_start(factory: sessionmaker[Session]) -> None:
    """Make sure the next expiry run is queued; a cutoff passed while no worker ran is
    caught up by the next run (expiry is idempotent and writes every passed cutoff)."""
    with factory() as session:
        now = utcnow()
        schedule(session, now=now)
        # a worker starting after today's run time (it was down): run today's now
        from siyu.config import get_settings

        today = next_run(now, get_settings().timezone) - dt.timedelta(days=1)
        if today <= now:
            jobs.enqueue(session, EXPIRE_JOB, {}, dedup_key=f"{EXPIRE_JOB}:{today:%Y%m%d}",
                         run_at=now)
        session.commit()
