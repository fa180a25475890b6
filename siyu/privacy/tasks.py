"""The retention job: once a day, purge raw events, conversation messages and audit entries
older than their configured retention (``SIYU_RETENTION_*_DAYS``; 0 keeps forever).

The job re-queues itself for the next day (one job per day, by dedup key); a worker starting
up queues the first one, so ``siyu serve`` and ``siyu worker`` keep it going.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings, get_settings
from siyu.db import Base, utcnow
from siyu.jobs import service as jobs
from siyu.privacy import registry
from siyu.privacy import service as privacy

RETENTION_JOB = "privacy.retention"
RUN_HOUR_UTC = 19  # 03:00 in Beijing, when the brand sleeps


def next_run(now: dt.datetime) -> dt.datetime:
    today = now.replace(hour=RUN_HOUR_UTC, minute=0, second=0, microsecond=0)
    return today if today > now else today + dt.timedelta(days=1)


def schedule(session: Session, *, now: dt.datetime | None = None) -> dt.datetime:
    """Queue the next daily run (once per day, whoever asks)."""
    at = next_run(now or utcnow())
    jobs.enqueue(session, RETENTION_JOB, {}, dedup_key=f"{RETENTION_JOB}:{at.date()}",
                 run_at=at)
    return at


def purge_expired(session: Session, settings: Settings, *, now: dt.datetime | None = None,
                  actor: str = "system:retention") -> dict[str, int]:
    """Delete rows older than their table's retention; returns the rows deleted per table.
    Rows that belong to a purged row (``via`` it in the registry) go with it. The audit log
    is purged through :func:`siyu.privacy.service.purge_audit`, which records itself; the
    other purges are recorded as one ``retention.purge`` entry."""
    import siyu.models  # noqa: F401  (every domain's tables)

    moment = now or utcnow()
    tables = Base.metadata.tables
    counts: dict[str, int] = {}
    audit_cutoff: dt.datetime | None = None
    for holding in registry.holdings():
        if holding.retention is None:
            continue
        setting, column = holding.retention
        days = int(getattr(settings, setting))
        if days <= 0:
            continue
        cutoff = moment - dt.timedelta(days=days)
        if holding.table == "audit_log":
            audit_cutoff = cutoff
            continue
        table = tables[holding.table]
        expired = table.c[column] < cutoff
        (pk,) = table.primary_key.columns
        for child in registry.holdings():
            for link in (child.via, child.purged_with):
                if link is None or link[1] != holding.table:
                    continue
                child_table = tables[child.table]
                result = session.execute(delete(child_table).where(
                    child_table.c[link[0]].in_(select(pk).where(expired))))
                if result.rowcount:  # type: ignore[attr-defined]
                    counts[child.table] = counts.get(child.table, 0) + int(
                        result.rowcount)  # type: ignore[attr-defined]
        result = session.execute(delete(table).where(expired))
        if result.rowcount:  # type: ignore[attr-defined]
            counts[holding.table] = int(result.rowcount)  # type: ignore[attr-defined]
    if counts:
        privacy.record_audit(session, actor=actor, action="retention.purge",
                             detail={"deleted": counts, "at": moment.isoformat()})
    if audit_cutoff is not None:
        counts["audit_log"] = privacy.purge_audit(session, before=audit_cutoff, actor=actor)
    return counts


@jobs.job(RETENTION_JOB)
def run_retention(session: Session, payload: dict[str, Any]) -> None:
    purge_expired(session, get_settings())
    schedule(session)


@jobs.job(privacy.VACUUM_JOB)
def run_vacuum(session: Session, payload: dict[str, Any]) -> None:
    """VACUUM the tables an erasure touched (PostgreSQL), so dead row versions holding the
    erased values are reclaimed now rather than whenever autovacuum comes by."""
    from siyu.privacy import erasure

    tables = [t for t in payload.get("tables", []) if isinstance(t, str)]
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    erasure.reclaim_space(engine, tables)


def on_worker_start(factory: sessionmaker[Session]) -> None:
    """Make sure a retention run is queued (idempotent: one per day by dedup key)."""
    with factory() as session:
        schedule(session)
        session.commit()
