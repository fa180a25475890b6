"""The demo's service history: a new demo's agent desk and service metrics show months of
conversations, hand-offs with their reasons and first responses, and CSAT that differs by
advisor and by intent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.demo import generator
from siyu.kb.demo import seed_demo_kb
from siyu.service import metrics
from siyu.service.demo import seed_agents, seed_service_history
from siyu.service.models import Conversation


def test_the_demo_seeds_months_of_service_history(sessions: sessionmaker[Session],
                                                  settings: Settings) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    generator.seed_demo(sessions, settings, customers=100, seed=42, now=now)
    with sessions() as session:
        seed_demo_kb(session)  # the intents' Chinese titles, as in `siyu demo`
        seed_agents(session)
        assert seed_service_history(session, now=now, conversations=300) == 300
        assert seed_service_history(session, now=now) == 0  # once only
        session.commit()
    with sessions() as session:
        oldest = session.scalar(select(func.min(Conversation.created_at)))
        assert oldest is not None and (now - oldest).days >= 60
        month = metrics.summary(session, days=30, now=now)
    assert month["conversations"] >= 60
    assert 0.1 < month["handoff_rate"] < 0.6
    assert month["first_response_p50_s"] is not None
    assert month["csat"] is not None and month["open"] == 0
    agents = [row for row in month["csat_by_agent"] if row["name"] != "机器人"]
    assert len(agents) >= 5 and all(row["name"].startswith("顾问") for row in agents)
    intents = {row["name"] for row in month["csat_by_intent"]}
    assert len(intents) >= 5 and "未识别" not in intents
    assert all(not name.isascii() for name in intents), intents  # named, not codes
