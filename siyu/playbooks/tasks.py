"""The playbook engine inside the worker loop: each round claims and executes due runs in
batches (:func:`siyu.playbooks.engine.process_due`), one transaction per batch, until none
is due; and reads back WeCom mass-send results now and then."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from siyu.jobs import service as jobs_service
from siyu.jobs import worker
from siyu.playbooks import clock, engine
from siyu.playbooks.config import get_playbook_settings

log = logging.getLogger("siyu.playbooks")


def run_batches(factory: sessionmaker[Session], worker_name: str = "", *,
                max_batches: int = 20) -> int:
    """Execute due runs, a batch per transaction, up to ``max_batches``; returns how many."""
    from siyu.config import get_settings

    size = get_playbook_settings().playbook_batch
    tz = get_settings().timezone
    total = 0
    for _ in range(max_batches):
        with factory() as session:
            try:
                n = engine.process_due(session, now=clock.now(), limit=size, timezone=tz)
                session.commit()
            # SQLite busy, or two workers racing to create one tag: the batch rolled back
            # and its runs are claimed again.
            except (OperationalError, IntegrityError):
                session.rollback()
                log.warning("playbook batch rolled back; retrying", exc_info=True)
                time.sleep(0.05)
                continue
        total += n
        if n < size:
            break
    return total


worker.register_loop("playbooks", run_batches)


# -- clock triggers: a job at the next cron occurrence, and one a day --------------------------

SCHEDULE_JOB = "playbooks.schedule"
DAILY_JOB = "playbooks.daily"
# A schedule job found this late (a worker down for hours) skips ahead instead of sending
# yesterday's 10:00 greeting at 17:00.
MAX_LATENESS = dt.timedelta(hours=1)


def queue_next_schedule(session: Session, *, after: dt.datetime) -> dt.datetime | None:
    """Queue the schedule job for the next minute an active schedule trigger fires (one
    job per minute whoever asks: applying a playbook, the job itself, a starting worker)."""
    from siyu.config import get_settings
    from siyu.jobs import service as jobs
    from siyu.playbooks import triggers

    at = triggers.next_schedule_run(session, after, timezone=get_settings().timezone)
    if at is not None:
        jobs.enqueue(session, SCHEDULE_JOB, {"minute": at.isoformat()},
                     dedup_key=f"{SCHEDULE_JOB}:{at:%Y%m%d%H%M}", run_at=at)
    return at


def next_daily_run(now: dt.datetime, timezone: str) -> dt.datetime:
    """Today's ``SIYU_PLAYBOOK_DAILY_AT`` in brand time, or tomorrow's once it has passed."""
    from zoneinfo import ZoneInfo

    hour, minute = (int(x) for x in get_playbook_settings().playbook_daily_at.split(":"))
    local = now.astimezone(ZoneInfo(timezone))
    at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at <= local:
        at += dt.timedelta(days=1)
    return at.astimezone(dt.UTC)


def queue_daily(session: Session, *, now: dt.datetime, catch_up: bool = False) -> None:
    """Queue the next daily run; with ``catch_up`` (a worker starting) also today's, now,
    when today's moment has passed without one (its dedup key says whether it ran)."""
    from siyu.config import get_settings
    from siyu.jobs import service as jobs

    tz = get_settings().timezone
    at = next_daily_run(now, tz)
    today = at - dt.timedelta(days=1)
    if catch_up and today <= now:
        jobs.enqueue(session, DAILY_JOB, {}, dedup_key=f"{DAILY_JOB}:{today:%Y%m%d}",
                     run_at=now)
    jobs.enqueue(session, DAILY_JOB, {}, dedup_key=f"{DAILY_JOB}:{at:%Y%m%d}", run_at=at)


@jobs_service.job(SCHEDULE_JOB)
def run_schedule(session: Session, payload: dict[str, Any]) -> None:
    from siyu.config import get_settings
    from siyu.playbooks import triggers

    minute = dt.datetime.fromisoformat(str(payload["minute"]))
    now = clock.now()
    if now - minute <= MAX_LATENESS:
        triggers.on_minute(session, minute, timezone=get_settings().timezone)
    else:
        log.warning("schedule job for %s ran %s late; skipped", minute, now - minute)
    queue_next_schedule(session, after=max(minute, now - dt.timedelta(minutes=1)))


@jobs_service.job("playbooks.enter")
def run_enter(session: Session, payload: dict[str, Any]) -> None:
    """Enter the entries a large ingest batch recorded (see ``triggers.on_rows``)."""
    from siyu.playbooks import triggers

    triggers.enter_recorded(session, payload)


@jobs_service.job(DAILY_JOB)
def run_daily(session: Session, payload: dict[str, Any]) -> None:
    from siyu.config import get_settings
    from siyu.playbooks import triggers

    now = clock.now()
    triggers.on_day(session, now, timezone=get_settings().timezone)
    queue_daily(session, now=now)


def on_worker_start(factory: sessionmaker[Session]) -> None:
    """Queue the next schedule occurrence and the day's run (idempotent by dedup key)."""
    with factory() as session:
        now = clock.now()
        queue_next_schedule(session, after=now)
        queue_daily(session, now=now, catch_up=True)
        session.commit()
