"""Service metrics over a period: bot resolution rate, hand-off rate, first response time,
and satisfaction (CSAT) by agent and by intent; per channel (phone included) the
conversations resolved by the bot, transferred, the median time to resolution and CSAT.

Time to resolution is from a conversation's start to its close, or to its last message
while it is still open (a bot-resolved conversation is rarely closed by anyone)."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
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
               Conversation.first_response_at, Conversation.channel,
               Conversation.created_at, Conversation.closed_at, Conversation.last_message_at)
        .where(Conversation.created_at >= since)).all()
    total = len(convs)
    by_bot = sum(1 for c in convs if c.handled_by == "bot")
    handed = total - by_bot
    waits = [(c.first_response_at - c.waiting_since).total_seconds() for c in convs
             if c.first_response_at is not None and c.waiting_since is not None]
    csat_rows = session.execute(
        select(CsatAnswer.score, CsatAnswer.handled_by, CsatAnswer.intent,
               User.display_name, Conversation.channel)
        .outerjoin(User, User.id == CsatAnswer.agent_user_id)
        .outerjoin(Conversation, Conversation.id == CsatAnswer.conversation_id)
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
        "by_channel": _by_channel(convs, csat_rows),
        "resolution_minutes": {
            by: _median([_minutes(c) for c in convs if (c.handled_by == "bot") == (by == "bot")])
            for by in ("bot", "agent")},
    }


def _minutes(c: Any) -> float:
    end = c.closed_at or c.last_message_at or c.created_at
    return max(0.0, (end - c.created_at).total_seconds() / 60)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _by_channel(convs: Sequence[Any], csat_rows: Sequence[Any]) -> list[dict[str, Any]]:
    names = dict(labels.CHANNELS)
    out = []
    for channel in sorted({c.channel for c in convs}):
        rows = [c for c in convs if c.channel == channel]
        scores = [r.score for r in csat_rows if r.channel == channel]
        bot = sum(1 for c in rows if c.handled_by == "bot")
        out.append({"channel": channel, "name": names.get(channel, channel),
                    "conversations": len(rows), "by_bot": bot, "transferred": len(rows) - bot,
                    "resolution_p50_min": _median([_minutes(c) for c in rows]),
                    "csat": round(sum(scores) / len(scores), 2) if scores else None})
    return sorted(out, key=lambda d: -d["conversations"])
