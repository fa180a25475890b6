"""The demo brand's journeys: its after-sales scenarios (seed 001), recent conversations
that the bot recognises as their intents, and a recomputation over the last two weeks, so a
fresh demo's funnel, scenario counts and scenario entries over time are not blank. Runs
after the service desk's knowledge base is trained (the bot needs its model)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from siyu.db import session_scope
from siyu.journeys import service as journeys
from siyu.service.demo import seed_scenario_conversations

RECOMPUTE_DAYS_AGO: tuple[int, ...] = (12, 8, 4, 0)
"""Recomputed at these days before ``now``: the first is every customer's baseline, the
later ones record who entered and left a scenario (timeline events) on those days."""


@dataclass
class JourneysSeed:
    recognised: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def seed_demo_journeys(sessions: sessionmaker[Session], *, now: dt.datetime,
                       timezone: str = "Asia/Shanghai", conversations_per_kind: int = 40
                       ) -> JourneysSeed:
    """Install the demo scenarios, seed scenario conversations and recompute journeys at
    the moments of :data:`RECOMPUTE_DAYS_AGO`; returns what the bot recognised and each
    scenario's members now."""
    import time

    started = time.perf_counter()
    out = JourneysSeed()
    with session_scope(sessions) as session:
        journeys.install_demo_scenarios(session)
        out.recognised = seed_scenario_conversations(session, now=now,
                                                     per_kind=conversations_per_kind)
    for days in RECOMPUTE_DAYS_AGO:
        with session_scope(sessions) as session:
            journeys.recompute(session, now=now - dt.timedelta(days=days), timezone=timezone)
    with session_scope(sessions) as session:
        out.members = {s["name"]: s["members"] for s in journeys.list_scenarios(session)}
    out.seconds = time.perf_counter() - started
    return out
