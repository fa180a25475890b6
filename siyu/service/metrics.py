"""Service metrics over a period: bot resolution rate, hand-off rate, first response time,
and satisfaction (CSAT) by agent and by intent."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.auth.models import User
from siyu.db import utcnow
from siyu.kb import service as kb
from siyu.kit import labels
from siyu.service.models import Conversation, CsatAnswer


def summary(session: Session, *, days: int = 30, now: dt.datetime | None = None
            ) -> dict[str, Any]:
    since = (now or utcnow()) - dt.timedelta(days=days)
    convs = session.execute(
        select(Conversation.handled_by, Conversation.status, Conversation.waiting_since,
               Conversation.first_response_at)
        .where(Conversation.created_at >= since)).all()
    total = len(convs)
    by_bot = sum(1 for c in convs if c.handled_by == "bot")
    handed = total - by_bot
    waits = [(c.first_response_at - c.waiting_since).total_seconds() for c in convs
             if c.first_response_at is not None and c.waiting_since is not None]
    csat_rows = session.execute(
        select(CsatAnswer.score, CsatAnswer.handled_by, CsatAnswer.intent,
               User.display_name)
        .outerjoin(User, User.id == CsatAnswer.agent_user_id)
        .where(CsatAnswer.created_at >= since)).all()

    def group(key: Any) -> list[dict[str, Any]]:
        buckets: dict[str, list[int]] = {}
        for row in csat_rows:
            buckets.setdefault(key(row), []).append(row.score)
        return sorted(({"name": k, "answers": len(v), "csat": round(sum(v) / len(v), 2)}
                       for k, v in buckets.items()), key=lambda d: -d["answers"])

    scores = [r.score for r in csat_rows]
    titles = {**dict(labels.INTENTS), **kb.intent_titles(session)}
    return {
        "days": days,
        "conversations": total,
        "bot_resolution_rate": round(by_bot / total, 4) if total else None,
        "handoff_rate": round(handed / total, 4) if total else None,
        "open": sum(1 for c in convs if c.status != "closed"),
        "waiting": session.scalar(select(func.count()).select_from(Conversation)
                                  .where(Conversation.status == "waiting")) or 0,
        "first_response_p50_s": round(statistics.median(waits), 1) if waits else None,
        "csat": round(sum(scores) / len(scores), 2) if scores else None,
        "csat_answers": len(scores),
        "csat_by_agent": group(lambda r: r.display_name or ("机器人" if r.handled_by == "bot"
                                                              else "未分配")),
        "csat_by_intent": group(lambda r: titles.get(r.intent, r.intent) if r.intent
                                else "未识别"),
    }
