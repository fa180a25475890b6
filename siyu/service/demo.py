"""The demo brand's service desk: its advisors (role agent) get skill groups, so hand-offs
route by what the customer asked (订单物流 / 售后 / 产品咨询 / 会员权益); every fourth advisor
is a generalist who takes anything. All start offline: whoever signs in goes online."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.models import User
from siyu.service.models import Agent
from siyu.service.service import GENERAL, SKILL_GROUPS

CAPACITY = 5


def seed_agents(session: Session) -> int:
    """Agent settings for every active agent-role user without any; returns how many."""
    groups = [g for g in SKILL_GROUPS if g != GENERAL]
    have = set(session.scalars(select(Agent.user_id)))
    users = [u for u in session.scalars(select(User.id).where(User.role == "agent",
                                                               User.is_active)
                                        .order_by(User.id)) if u not in have]
    for i, user_id in enumerate(users):
        skills = [] if i % 4 == 3 else [groups[i % len(groups)]]
        session.add(Agent(user_id=user_id, status="offline", capacity=CAPACITY, skills=skills))
    session.flush()
    return len(users)
