"""Reads for the agent inbox console: a conversation with its messages, bot decisions,
hand-off history and suggested replies (agent assist from the knowledge base)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.models import User
from siyu.db import utcnow
from siyu.service import service
from siyu.service.models import Agent, BotDecision, ConversationEvent, Message

MESSAGES_PER_PAGE = 50  # the agent page shows the newest ones; older pages on request


def conversation_detail(session: Session, conversation_id: int, *,
                        before_id: int | None = None) -> dict[str, Any]:
    """The conversation, its newest messages (or the page before ``before_id``; ``older`` and
    ``total`` to page back), bot decisions (newest last) and history events."""
    conv = service._conversation(session, conversation_id)
    decisions = session.scalars(select(BotDecision).where(
        BotDecision.conversation_id == conversation_id).order_by(BotDecision.id)).all()
    events = session.scalars(select(ConversationEvent).where(
        ConversationEvent.conversation_id == conversation_id)
        .order_by(ConversationEvent.id)).all()
    names = _names(session, events)
    titles = intent_titles(session, [d.intent for d in decisions])
    from siyu.channels import service as channels

    check = channels.reply_check(session, conversation_id)
    return {
        "reply_check": {"allowed": check.allowed, "message": None if check.allowed
                        else check.message(), "remaining": check.detail.get("remaining")},
        "conversation": service.conversation_to_dict(conv),
        "calls": channels.phone_calls(session, conversation_id) if conv.channel == "phone"
        else [],
        **service.message_page(session, conversation_id, before_id=before_id,
                               limit=MESSAGES_PER_PAGE),
        "decisions": [{"message_id": d.message_id, "action": d.action, "intent": d.intent,
                       "intent_title": titles.get(d.intent or "", d.intent),
                       "confidence": d.confidence, "reason": d.reason,
                       "latency_ms": d.latency_ms} for d in decisions],
        "events": [{"kind": e.kind, "actor": e.actor, "detail": e.detail,
                    "at": e.created_at, "text": describe_event(e, names)} for e in events],
    }


def intent_titles(session: Session, names: Sequence[str | None]) -> dict[str, str]:
    """Display titles of the named intents (those without one keep their name)."""
    from siyu.kb.models import Intent

    wanted = {n for n in names if n}
    if not wanted:
        return {}
    return {name: title or name for name, title in session.execute(
        select(Intent.name, Intent.title).where(Intent.name.in_(wanted)))}


ROUTING_ZH = {"advisor": "专属顾问优先", "skill": "按技能组", "generalist": "综合客服"}


def _names(session: Session, events: Sequence[ConversationEvent]) -> dict[int, str]:
    ids: set[int] = set()
    for e in events:
        if e.actor.startswith("user:") and e.actor[5:].isdigit():
            ids.add(int(e.actor[5:]))
        for key in ("user_id", "to_user_id"):
            if isinstance(e.detail.get(key), int):
                ids.add(e.detail[key])
    if not ids:
        return {}
    return {u.id: u.display_name or u.username
            for u in session.scalars(select(User).where(User.id.in_(ids)))}


def describe_event(e: ConversationEvent, names: dict[int, str]) -> str:
    """One line of the conversation's history in words: who did what."""
    def who(user_id: Any) -> str:
        return names.get(user_id, f"#{user_id}") if isinstance(user_id, int) else "—"

    actor = e.actor
    if actor == "bot":
        by = "机器人"
    elif actor.startswith("routing:"):
        by = f"自动分配（{ROUTING_ZH.get(actor[8:], actor[8:])}）"
    elif actor == "routing":
        by = "自动分配"
    elif actor.startswith("user:") and actor[5:].isdigit():
        by = who(int(actor[5:]))
    else:
        by = actor
    if e.kind == "handoff":
        group = service.SKILL_GROUPS.get(e.detail.get("skill_group") or "", "")
        reason = e.detail.get("reason") or ""
        return f"{by}转人工：{reason}" + (f"（{group}）" if group else "")
    if e.kind == "assigned":
        if actor == f"user:{e.detail.get('user_id')}":
            return f"{by} 接入会话"
        return f"{by} → 分配给 {who(e.detail.get('user_id'))}"
    if e.kind == "transferred":
        return f"{by} 转接给 {who(e.detail.get('to_user_id'))}"
    if e.kind == "closed":
        return f"{by} 结束会话"
    return f"{by} · {e.kind}"


# Small talk the bot handles itself: an agent needs no suggestion to say hello.
SMALL_TALK = ("greeting", "thanks", "goodbye")


def suggest_replies(session: Session, conversation_id: int, k: int = 3) -> list[dict[str, Any]]:
    """Agent assist: for the customer's last message, the answer template of its intent
    filled from this customer's context, then the best FAQ answers; empty without a KB."""
    last = session.scalar(select(Message.text).where(
        Message.conversation_id == conversation_id, Message.direction == "in")
        .order_by(Message.id.desc()).limit(1))
    if not last:
        return []
    from siyu.kb.service import load_runtime, render
    from siyu.service.context import load_context

    runtime = load_runtime(session)
    out: list[dict[str, Any]] = []
    pred = runtime.classify(last)
    info = runtime.intent(pred.intent)
    if info is not None and info.answer and not pred.out_of_scope \
            and info.name not in SMALL_TALK:
        conv = service._conversation(session, conversation_id)
        from siyu.config import get_settings

        ctx = load_context(session, conv.customer_id, now=utcnow(),
                           timezone=get_settings().timezone)
        out.append({"question": f"意图「{info.title}」", "score": pred.confidence,
                    "answer": render(info.answer, ctx.placeholders())})
    seen = {o["answer"] for o in out}
    for h in runtime.faq(last, k=k):
        if h.answer not in seen and len(out) < k:
            out.append({"question": h.question, "answer": h.answer, "score": h.score})
            seen.add(h.answer)
    return out


def agents(session: Session) -> list[dict[str, Any]]:
    """Staff who can be given a conversation, with their desk status and current load."""
    from siyu.auth.service import can
    load = service.agent_load(session)
    status = {a.user_id: a.status for a in session.scalars(select(Agent))}
    users = session.scalars(select(User).order_by(User.id)).all()
    return [{"id": u.id, "name": u.display_name or u.username,
             "status": status.get(u.id, "offline"), "load": load.get(u.id, 0)}
            for u in users if u.is_active and can(u.role, "service.agent")]


_STATUS_ORDER = {"online": 0, "away": 1, "offline": 2}


def transfer_targets(session: Session, *, exclude_user_id: int | None = None
                     ) -> list[dict[str, Any]]:
    """Whom a conversation can be transferred to: online agents first (least loaded
    first), then away, then offline. The first is the default choice only when online,
    so a transfer never lands with someone who is not there by default."""
    targets = sorted((a for a in agents(session) if a["id"] != exclude_user_id),
                     key=lambda a: (_STATUS_ORDER.get(a["status"], 3), a["load"], a["id"]))
    for i, a in enumerate(targets):
        a["default"] = i == 0 and a["status"] == "online"
    return targets


def agent_status(session: Session, user_id: int) -> str:
    agent = session.get(Agent, user_id)
    return agent.status if agent is not None else "offline"


def agent_settings(session: Session, user_id: int) -> dict[str, Any]:
    """The agent's status, capacity and skill groups (defaults before they first set any)."""
    agent = session.get(Agent, user_id)
    if agent is None:
        return {"status": "offline", "capacity": 5, "skills": []}
    return {"status": agent.status, "capacity": agent.capacity, "skills": list(agent.skills or [])}


def recent_activity(session: Session, customer_id: int, *, limit: int = 5
                    ) -> dict[str, list[dict[str, Any]]]:
    """The customer's latest events and orders, newest first, for the side panel."""
    from siyu.events.models import Event, Order
    events = session.scalars(select(Event).where(Event.customer_id == customer_id)
                             .order_by(Event.ts.desc()).limit(limit)).all()
    orders = session.scalars(select(Order).where(Order.customer_id == customer_id)
                             .order_by(Order.ts.desc()).limit(limit)).all()
    from siyu.events.labels import event_type_zh, order_status_zh

    return {"events": [{"type": e.type, "label": event_type_zh(e.type), "ts": e.ts,
                        "properties": e.properties or {}} for e in events],
            "orders": [{"id": o.id, "ts": o.ts, "amount": o.amount, "status": o.status,
                        "status_zh": order_status_zh(o.status)} for o in orders]}


def new_messages(session: Session, conversation_id: int, after_id: int) -> dict[str, Any]:
    """What a polling conversation page needs: how many messages arrived after ``after_id``
    and the conversation's status."""
    conv = service._conversation(session, conversation_id)
    count = len(service.messages_of(session, conversation_id, after_id=after_id))
    return {"new": count, "status": conv.status}
