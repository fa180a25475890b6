"""Retention: events, messages and audit entries past their configured days are purged by
the daily job, which records what it did; recent rows and orders stay."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.identity import IdentityRef
from siyu.events.models import Event, Order
from siyu.events.service import ingest
from siyu.jobs import service as jobs
from siyu.jobs.models import Job
from siyu.privacy import service as privacy
from siyu.privacy import tasks
from siyu.privacy.models import AuditEntry
from siyu.service import service as desk
from siyu.service.models import BotDecision, Message
from tests.cli_helpers import run_cli

NOW = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)


def _plant(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        ingest(session, "events", [
            {"id": "old", "customer_id": "R1", "type": "view_product", "ts": "2025-01-01T08:00:00"},
            {"id": "new", "customer_id": "R1", "type": "view_product", "ts": "2026-11-30T08:00:00"},
        ], settings=settings)
        ingest(session, "orders", [{"id": "O-old", "customer_id": "R1",
                                    "ts": "2025-01-01T08:00:00", "amount": 10}],
               settings=settings)
        for n, when in enumerate((dt.datetime(2025, 1, 1, tzinfo=dt.UTC), NOW)):
            got = desk.receive_inbound(session, channel="webchat",
                                       identities=[IdentityRef("phone", "+8613800138000", True)],
                                       text=f"消息 {n}", external_id=f"r-{n}", sent_at=when)
            # the bot's reasons may quote the message: they go with it
            session.add(BotDecision(conversation_id=got.conversation_id,
                                    message_id=got.message_id, action="answer",
                                    reason=f"引用：消息 {n}"))
        session.add(AuditEntry(at=dt.datetime(2022, 1, 1, tzinfo=dt.UTC), actor="user:old",
                               action="login.success"))
        session.commit()


def test_purge_by_configured_days(sessions: sessionmaker[Session], settings: Settings) -> None:
    _plant(sessions, settings)
    configured = settings.model_copy(update={"retention_events_days": 365,
                                             "retention_messages_days": 365,
                                             "retention_audit_days": 365})
    with sessions() as session:
        counts = tasks.purge_expired(session, configured, now=NOW)
        session.commit()
    assert counts == {"events": 1, "messages": 1, "bot_decisions": 1, "audit_log": 1}
    with sessions() as session:
        assert session.scalars(select(Event.id)).all() == ["new"]
        assert session.scalars(select(Message.text)).all() == ["消息 1"]
        assert session.scalars(select(BotDecision.reason)).all() == ["引用：消息 1"]
        assert session.scalar(select(func.count()).select_from(Order)) == 1  # never purged
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == ["retention.purge", "audit.purge"]  # the 2022 entry is gone


def test_zero_days_keeps_everything(sessions: sessionmaker[Session], settings: Settings) -> None:
    _plant(sessions, settings)
    keep = settings.model_copy(update={"retention_events_days": 0,
                                       "retention_messages_days": 0, "retention_audit_days": 0})
    with sessions() as session:
        assert tasks.purge_expired(session, keep, now=NOW) == {}
        assert session.scalar(select(func.count()).select_from(Event)) == 2


def test_daily_job_is_queued_once_and_requeues_itself(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the run happens at 03:00 Beijing time; it queues the next day's
    monkeypatch.setattr(tasks, "utcnow", lambda: dt.datetime(2026, 12, 2, 19, 0, 5,
                                                             tzinfo=dt.UTC))
    with sessions() as session:
        first = tasks.schedule(session, now=NOW)
        tasks.schedule(session, now=NOW + dt.timedelta(hours=1))
        session.commit()
        assert first == dt.datetime(2026, 12, 2, 19, 0, tzinfo=dt.UTC)
        assert session.scalar(select(func.count()).select_from(Job)
                              .where(Job.name == tasks.RETENTION_JOB)) == 1
        # make it due, and let a worker run it
        session.execute(update(Job).values(run_at=NOW - dt.timedelta(days=1)))
        session.commit()
    summary = jobs.run_due(sessions, worker="test")
    assert summary.done == 1
    with sessions() as session:
        rows = session.execute(select(Job.status, Job.run_at).where(
            Job.name == tasks.RETENTION_JOB).order_by(Job.id)).all()
        assert [r.status for r in rows] == ["done", "queued"]
        assert rows[1].run_at == dt.datetime(2026, 12, 3, 19, 0, tzinfo=dt.UTC)


def test_cli(monkeypatch: pytest.MonkeyPatch, database_url: str,
             sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        privacy.record_audit(session, actor="user:a", action="login.success")
        session.commit()
    monkeypatch.setenv("SIYU_RETENTION_AUDIT_DAYS", "30")
    result = run_cli(monkeypatch, database_url, "privacy", "retention", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"audit_log": 0}
    result = run_cli(monkeypatch, database_url, "privacy", "registry", "--json")
    rows = {r["table"]: r for r in json.loads(result.output)}
    assert rows["messages"]["retention"] == "retention_messages_days"
    assert rows["orders"]["erase"] == "anonymise"
