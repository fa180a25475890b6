"""Durable jobs: enqueued with the transaction, claimed once, retried, never lost."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.jobs import service
from siyu.jobs.models import Job

CALLS: list[dict[str, Any]] = []


@service.job("test.record")
def _record(session: Session, payload: dict[str, Any]) -> None:
    CALLS.append(payload)


@service.job("test.flaky")
def _flaky(session: Session, payload: dict[str, Any]) -> None:
    CALLS.append(payload)
    if len([c for c in CALLS if c.get("flaky")]) < 2:
        raise RuntimeError("transient")


def test_job_enqueued_in_a_rolled_back_transaction_does_not_exist(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        service.enqueue(s, "test.record", {"n": 1})
        s.rollback()
    with sessions() as s:
        assert s.scalars(select(Job)).all() == []


def test_dedup_key_stores_one_job_and_it_runs_once(sessions: sessionmaker[Session]) -> None:
    CALLS.clear()
    with sessions() as s:
        service.enqueue(s, "test.record", {"n": 1}, dedup_key="k1")
        service.enqueue(s, "test.record", {"n": 1}, dedup_key="k1")
        s.commit()
    first = service.run_due(sessions, worker="w1")
    second = service.run_due(sessions, worker="w2")
    assert (first.done, second.done) == (1, 0)
    assert CALLS == [{"n": 1}]


def test_two_workers_never_claim_the_same_job(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        for i in range(6):
            service.enqueue(s, "test.record", {"n": i})
        s.commit()
    with sessions() as s:
        a = service.claim(s, worker="a", limit=4)
        s.commit()
    with sessions() as s:
        b = service.claim(s, worker="b", limit=4)
        s.commit()
    assert len(a) == 4 and len(b) == 2 and not set(a) & set(b)


def test_failing_job_is_retried_then_succeeds(sessions: sessionmaker[Session]) -> None:
    CALLS.clear()
    with sessions() as s:
        service.enqueue(s, "test.flaky", {"flaky": True})
        s.commit()
    assert service.run_due(sessions, worker="w").retried == 1
    with sessions() as s:
        job = s.scalars(select(Job)).one()
        assert job.status == "queued" and "transient" in (job.last_error or "")
        job.run_at = job.created_at  # due again now
        s.commit()
    assert service.run_due(sessions, worker="w").done == 1
    with sessions() as s:
        assert s.scalars(select(Job)).one().status == "done"


def test_unknown_job_fails_after_max_attempts(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        service.enqueue(s, "test.nobody", {}, max_attempts=1)
        s.commit()
    assert service.run_due(sessions, worker="w").failed == 1
    with sessions() as s:
        job = s.scalars(select(Job)).one()
        assert job.status == "failed" and "no handler" in (job.last_error or "")
