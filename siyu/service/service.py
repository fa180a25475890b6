"""The service desk's unit operations: receive a customer's message, send a reply through the
outbox, hand off, assign, transfer, close, and record satisfaction.

Functions take an explicit session and never commit; the route, job or channel that calls
them does, so a message, its job and its state change land together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.auth.models import User
from siyu.config import get_settings
from siyu.customers.identity import IdentityRef, Resolver
from siyu.db import utcnow
from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.events import hooks as event_hooks
from siyu.jobs import service as jobs
from siyu.kit.bulk import id_in
from siyu.service.models import (
    Agent,
    Conversation,
    ConversationEvent,
    CsatAnswer,
    Message,
)

BOT_JOB = "service.handle_inbound"
DELIVER_JOB = "channels.deliver"
MAX_TEXT = 2000
CSAT_QUESTION = ("本次服务已结束，请为我们的服务打分：回复数字 1-5"
                 "（5 = 非常满意，1 = 非常不满意）。")
CSAT_THANKS = "感谢您的评价！祝您生活愉快，有需要随时找我们～"
HANDOFF_NOTICE = "正在为您转接人工客服，请稍候，我们会尽快回复您～"
OPEN_STATES = ("bot", "waiting", "with_agent")
# Skill groups (技能组) a hand-off is routed to; an intent names its group, an agent lists the
# groups they take. Agents who list none are generalists and take any group.
GENERAL = "general"
SKILL_GROUPS: dict[str, str] = {GENERAL: "综合", "order": "订单物流", "aftersales": "售后",
                                "product": "产品咨询", "membership": "会员权益"}
COMPLAINTS = "aftersales"  # where an angry customer goes when the topic is unclear


@dataclass(frozen=True)
class InboundResult:
    conversation_id: int
    message_id: int
    customer_id: int
    duplicate: bool


def _open_conversation(session: Session, customer_id: int, channel: str,
                       now: dt.datetime) -> Conversation:
    conv = session.scalars(
        select(Conversation).where(Conversation.customer_id == customer_id,
                                   Conversation.channel == channel,
                                   Conversation.status.in_(OPEN_STATES))
        .order_by(Conversation.id.desc()).limit(1)).first()
    if conv is None:
        conv = Conversation(customer_id=customer_id, channel=channel, status="bot",
                            last_message_at=now)
        session.add(conv)
        session.flush()
    return conv


def _pending_csat(session: Session, customer_id: int, channel: str) -> Conversation | None:
    return session.scalars(
        select(Conversation).where(Conversation.customer_id == customer_id,
                                   Conversation.channel == channel,
                                   Conversation.csat_pending.is_(True))
        .order_by(Conversation.id.desc()).limit(1)).first()


def _existing(session: Session, channel: str, external_id: str) -> Message | None:
    return session.scalars(select(Message).where(Message.channel == channel,
                                                 Message.external_id == external_id)).first()


def receive_inbound(
    session: Session,
    *,
    channel: str,
    identities: Sequence[IdentityRef],
    text: str,
    external_id: str | None,
    sent_at: dt.datetime | None = None,
    payload: dict[str, Any] | None = None,
) -> InboundResult:
    """Store a customer's message once per (channel, external id) and queue the bot for it.

    The customer is found (or created) from ``identities`` by identity resolution. A digit
    1-5 answering a pending satisfaction question is stored as the answer. A message in a
    conversation held by a person is stored for them; the bot stays out of it.
    """
    if not identities:
        raise InvalidInput("a message needs at least one identity of its sender",
                           details=[{"field": "identities", "reason": "empty"}])
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"a message holds at most {MAX_TEXT} characters",
                           details=[{"field": "text", "reason": "too long"}])
    if external_id:
        seen = _existing(session, channel, external_id)
        if seen is not None:
            conv = session.get(Conversation, seen.conversation_id)
            assert conv is not None
            return InboundResult(conv.id, seen.id, conv.customer_id, True)
    now = utcnow()
    resolver = Resolver(session, source=f"{channel} message",
                        exclusive_kinds=get_settings().exclusive_identity_kinds)
    customer_id = resolver.resolve_one(list(identities))

    csat = (_pending_csat(session, customer_id, channel)
            if text in ("1", "2", "3", "4", "5") else None)
    conv = csat if csat is not None else _open_conversation(session, customer_id, channel, now)
    message = Message(conversation_id=conv.id, direction="in", channel=channel,
                      sender="customer", text=text, payload=payload or {}, status="received",
                      external_id=external_id, created_at=sent_at or now)
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:  # a concurrent retry of the same message won the race
        seen = _existing(session, channel, external_id or "")
        if seen is None:
            raise
        return InboundResult(conv.id, seen.id, customer_id, True)
    conv.last_message_at = now
    # A playbook waiting for the customer's reply on this channel goes on (siyu.playbooks).
    event_hooks.run_after_reply(session, customer_id, channel)
    if csat is not None:
        record_csat(session, csat, int(text))
        post_outbound(session, conversation_id=csat.id, sender="system", text=CSAT_THANKS)
    elif conv.status in ("bot", "waiting"):
        # While waiting the bot only answers a repeated request for a person (with the
        # customer's place in the queue); everything else waits for the agent.
        jobs.enqueue(session, BOT_JOB, {"message_id": message.id},
                     dedup_key=f"{BOT_JOB}:{message.id}")
    return InboundResult(conv.id, message.id, customer_id, False)


def post_outbound(session: Session, *, conversation_id: int, sender: str, text: str,
                  agent_user_id: int | None = None,
                  payload: dict[str, Any] | None = None) -> int:
    """Store a reply as ``queued`` and queue its delivery on the conversation's channel
    (the durable outbox: the channel job sends it once). Returns the message id."""
    if sender not in ("bot", "agent", "system"):
        raise InvalidInput(f"unknown sender {sender!r}", details=[
            {"field": "sender", "reason": "must be bot, agent or system"}])
    text = (text or "").strip()
    if not text:
        raise InvalidInput("a reply needs text", details=[{"field": "text", "reason": "empty"}])
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"a reply holds at most {MAX_TEXT} characters",
                           details=[{"field": "text", "reason": "too long"}])
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"no conversation {conversation_id}")
    now = utcnow()
    message = Message(conversation_id=conv.id, direction="out", channel=conv.channel,
                      sender=sender, agent_user_id=agent_user_id, text=text,
                      payload=payload or {}, status="queued", created_at=now)
    session.add(message)
    session.flush()
    if sender == "agent" and conv.first_response_at is None:
        conv.first_response_at = now
    conv.last_message_at = now
    jobs.enqueue(session, DELIVER_JOB, {"message_id": message.id},
                 dedup_key=f"deliver:{message.id}")
    return message.id


def _log(session: Session, conv: Conversation, kind: str, actor: str,
         **detail: Any) -> None:
    session.add(ConversationEvent(conversation_id=conv.id, kind=kind, actor=actor,
                                  detail=detail))


# -- hand-off, routing, agents ------------------------------------------------------------


def agent_load(session: Session) -> dict[int, int]:
    """Open conversations held by each agent."""
    rows = session.execute(
        select(Conversation.assigned_user_id, func.count())
        .where(Conversation.status == "with_agent", Conversation.assigned_user_id.is_not(None))
        .group_by(Conversation.assigned_user_id))
    return {int(user_id): int(n) for user_id, n in rows if user_id is not None}


def _available(session: Session, user_ids: Sequence[int] | None = None) -> list[Agent]:
    stmt = select(Agent).where(Agent.status == "online")
    if user_ids is not None:
        stmt = stmt.where(Agent.user_id.in_(user_ids))
    load = agent_load(session)
    return [a for a in session.scalars(stmt) if load.get(a.user_id, 0) < a.capacity]


def pick_agent(session: Session, skill_group: str | None, advisor_id: int | None = None
               ) -> tuple[int, str] | None:
    """Who takes a conversation now, and why: the customer's own advisor when online with
    room; else the least-loaded online agent of the skill group; else the least-loaded
    generalist (an agent who lists no skills); ``None`` when nobody has room (it queues)."""
    if advisor_id is not None and _available(session, [advisor_id]):
        return advisor_id, "advisor"
    candidates = _available(session)
    if not candidates:
        return None
    load = agent_load(session)
    group = skill_group or GENERAL
    for reason, pool in (("skill", [a for a in candidates if group in (a.skills or [])]),
                         ("generalist", [a for a in candidates if not a.skills])):
        if pool:
            best = min(pool, key=lambda a: (load.get(a.user_id, 0), a.user_id))
            return best.user_id, reason
    return None


def hand_off(session: Session, conv: Conversation, *, reason: str, advisor_id: int | None,
             skill_group: str | None = None, notice: bool = True) -> int | None:
    """Move the conversation to people (see ``pick_agent``), or to the queue of its skill
    group when nobody has room. Returns the assignee."""
    now = utcnow()
    group = skill_group if skill_group in SKILL_GROUPS else GENERAL
    conv.status = "waiting"
    conv.handoff_reason = reason
    conv.skill_group = group
    conv.advisor_id = advisor_id
    conv.handled_by = "agent"
    conv.waiting_since = now
    _log(session, conv, "handoff", "bot", reason=reason, skill_group=group)
    if notice:
        post_outbound(session, conversation_id=conv.id, sender="system", text=HANDOFF_NOTICE)
    picked = pick_agent(session, group, advisor_id)
    if picked is None:
        return None
    _assign(session, conv, picked[0], actor=f"routing:{picked[1]}")
    return picked[0]


def queue_position(session: Session, conv: Conversation) -> int:
    """The conversation's place (1 = next) among those waiting, oldest first, as
    ``route_waiting`` serves them."""
    since = conv.waiting_since or utcnow()
    ahead = session.scalar(select(func.count()).select_from(Conversation).where(
        Conversation.status == "waiting", Conversation.id != conv.id,
        (Conversation.waiting_since < since)
        | ((Conversation.waiting_since == since) & (Conversation.id < conv.id))))
    return int(ahead or 0) + 1


def route_waiting(session: Session) -> int:
    """Assign queued conversations, oldest first, while agents have room (called when an
    agent comes online or frees a place). Returns how many were assigned."""
    assigned = 0
    waiting = list(session.scalars(select(Conversation).where(Conversation.status == "waiting")
                                   .order_by(Conversation.waiting_since, Conversation.id)))
    for conv in waiting:
        picked = pick_agent(session, conv.skill_group, conv.advisor_id)
        if picked is not None:
            _assign(session, conv, picked[0], actor=f"routing:{picked[1]}")
            session.flush()
            assigned += 1
    return assigned


def _assign(session: Session, conv: Conversation, user_id: int, *, actor: str) -> None:
    conv.assigned_user_id = user_id
    conv.status = "with_agent"
    _log(session, conv, "assigned", actor, user_id=user_id)


def _conversation(session: Session, conversation_id: int) -> Conversation:
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"no conversation {conversation_id}")
    return conv


def take(session: Session, conversation_id: int, user_id: int) -> Conversation:
    """An agent takes a conversation (from the queue, or from the bot)."""
    conv = _conversation(session, conversation_id)
    if conv.status == "closed":
        raise Conflict(f"conversation {conversation_id} is closed")
    if conv.status == "with_agent" and conv.assigned_user_id == user_id:
        return conv
    conv.handled_by = "agent"
    if conv.waiting_since is None:
        conv.waiting_since = utcnow()
    _assign(session, conv, user_id, actor=f"user:{user_id}")
    return conv


class ReplyRefused(Conflict):
    """The conversation's channel cannot deliver a reply now (e.g. the official account's
    48-hour window closed); the message says why and which channels remain."""

    code = "reply_refused"


def _check_channel(session: Session, conversation_id: int) -> None:
    from siyu.channels import service as channels

    check = channels.reply_check(session, conversation_id)
    if not check.allowed:
        raise ReplyRefused(check.message(), details={
            "reason": check.code, "alternatives": check.alternatives, **check.detail})


def agent_reply(session: Session, conversation_id: int, user_id: int, text: str) -> int:
    """An agent answers; a conversation not yet theirs becomes theirs. Refused (409, nothing
    stored) when the channel cannot deliver it now."""
    conv = _conversation(session, conversation_id)
    if conv.status == "closed":
        raise Conflict(f"conversation {conversation_id} is closed")
    _check_channel(session, conversation_id)
    if conv.status != "with_agent" or conv.assigned_user_id != user_id:
        take(session, conversation_id, user_id)
    return post_outbound(session, conversation_id=conv.id, sender="agent", text=text,
                         agent_user_id=user_id)


def transfer(session: Session, conversation_id: int, *, to_user_id: int,
             by_user_id: int) -> Conversation:
    conv = _conversation(session, conversation_id)
    if conv.status == "closed":
        raise Conflict(f"conversation {conversation_id} is closed")
    if session.get(User, to_user_id) is None:
        raise InvalidInput(f"no user {to_user_id}", details=[{"field": "to_user_id",
                                                              "reason": "unknown user"}])
    conv.handled_by = "agent"
    _assign(session, conv, to_user_id, actor=f"user:{by_user_id}")
    _log(session, conv, "transferred", f"user:{by_user_id}", to_user_id=to_user_id)
    return conv


def close(session: Session, conversation_id: int, *, actor: str) -> Conversation:
    """Close the conversation and ask the customer for a satisfaction score (1-5) on the
    same channel."""
    conv = _conversation(session, conversation_id)
    if conv.status == "closed":
        return conv
    conv.status = "closed"
    conv.closed_at = utcnow()
    conv.csat_pending = True
    _log(session, conv, "closed", actor)
    post_outbound(session, conversation_id=conv.id, sender="system", text=CSAT_QUESTION,
                  payload={"csat": True})
    session.flush()
    route_waiting(session)
    return conv


def record_csat(session: Session, conv: Conversation, score: int) -> CsatAnswer:
    if not 1 <= score <= 5:
        raise InvalidInput("a satisfaction score is 1-5", details=[
            {"field": "score", "reason": "out of range"}])
    conv.csat_pending = False
    answer = CsatAnswer(conversation_id=conv.id, score=score, handled_by=conv.handled_by,
                        agent_user_id=conv.assigned_user_id, intent=conv.last_intent)
    session.add(answer)
    session.flush()
    return answer


def set_agent_status(session: Session, user_id: int, status: str | None = None,
                     capacity: int | None = None,
                     skills: Sequence[str] | None = None) -> Agent:
    """Set an agent's online status, capacity and skill groups (each optional); coming online
    or gaining room pulls waiting conversations to them."""
    errors: list[dict[str, str]] = []
    if status is not None and status not in ("online", "away", "offline"):
        errors.append({"field": "status", "reason": "must be online, away or offline"})
    if capacity is not None and not 1 <= capacity <= 50:
        errors.append({"field": "capacity", "reason": "must be between 1 and 50"})
    unknown = [g for g in skills or () if g not in SKILL_GROUPS]
    if unknown:
        errors.append({"field": "skills", "reason": f"unknown skill group {unknown[0]!r}; "
                       f"one of {', '.join(SKILL_GROUPS)}"})
    if errors:
        raise InvalidInput("; ".join(f"{e['field']}: {e['reason']}" for e in errors),
                           details=errors)
    agent = session.get(Agent, user_id)
    if agent is None:
        agent = Agent(user_id=user_id, skills=[], status="offline", capacity=5)
        session.add(agent)
    if status is not None:
        agent.status = status
    if capacity is not None:
        agent.capacity = capacity
    if skills is not None:
        agent.skills = sorted(set(skills))
    session.flush()
    if agent.status == "online":
        route_waiting(session)
    return agent


# -- reading ------------------------------------------------------------------------------


def conversation_to_dict(conv: Conversation) -> dict[str, Any]:
    def iso(v: dt.datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {"id": conv.id, "customer_id": conv.customer_id, "channel": conv.channel,
            "status": conv.status, "assigned_user_id": conv.assigned_user_id,
            "handoff_reason": conv.handoff_reason, "last_intent": conv.last_intent,
            "skill_group": conv.skill_group, "advisor_id": conv.advisor_id,
            "handled_by": conv.handled_by, "opened_at": iso(conv.created_at),
            "waiting_since": iso(conv.waiting_since),
            "first_response_at": iso(conv.first_response_at),
            "last_message_at": iso(conv.last_message_at), "closed_at": iso(conv.closed_at),
            "csat_pending": conv.csat_pending}


def message_to_dict(m: Message) -> dict[str, Any]:
    return {"id": m.id, "conversation_id": m.conversation_id, "direction": m.direction,
            "channel": m.channel, "sender": m.sender, "agent_user_id": m.agent_user_id,
            "text": m.text or "", "status": m.status,
            "error": (m.payload or {}).get("delivery_error") if m.status == "failed" else None,
            "at": m.created_at.isoformat() if m.created_at else None}


def conversations_of(session: Session, customer_id: int, *, limit: int = 50
                     ) -> list[dict[str, Any]]:
    rows = session.scalars(select(Conversation).where(Conversation.customer_id == customer_id)
                           .order_by(Conversation.id.desc()).limit(limit))
    return [conversation_to_dict(c) for c in rows]


def messages_of(session: Session, conversation_id: int, *, after_id: int = 0,
                limit: int = 200) -> list[dict[str, Any]]:
    _conversation(session, conversation_id)
    rows = session.scalars(select(Message).where(Message.conversation_id == conversation_id,
                                                 Message.id > after_id)
                           .order_by(Message.id).limit(limit))
    return [message_to_dict(m) for m in rows]


def message_page(session: Session, conversation_id: int, *, before_id: int | None = None,
                 limit: int = 50) -> dict[str, Any]:
    """The newest ``limit`` messages (before ``before_id`` when paging back), oldest first,
    with ``older`` (the id to page back from, or None at the start) and ``total``."""
    _conversation(session, conversation_id)
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if before_id is not None:
        stmt = stmt.where(Message.id < before_id)
    rows = list(session.scalars(stmt.order_by(Message.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit][::-1]
    total = session.scalar(select(func.count()).select_from(Message)
                           .where(Message.conversation_id == conversation_id)) or 0
    return {"messages": [message_to_dict(m) for m in rows],
            "older": rows[0].id if more and rows else None, "total": int(total)}


def queue(session: Session, *, user_id: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """The waiting queue (oldest first) and, for ``user_id``, their own open conversations."""
    waiting = session.scalars(select(Conversation).where(Conversation.status == "waiting")
                              .order_by(Conversation.waiting_since, Conversation.id))
    mine: list[Conversation] = []
    if user_id is not None:
        mine = list(session.scalars(select(Conversation).where(
            Conversation.status == "with_agent", Conversation.assigned_user_id == user_id)
            .order_by(Conversation.last_message_at.desc())))
    return {"waiting": [conversation_to_dict(c) for c in waiting],
            "mine": [conversation_to_dict(c) for c in mine]}


def low_csat_customers(session: Session, customer_ids: list[int], *, max_score: int,
                       since: dt.datetime) -> set[int]:
    """Which of ``customer_ids`` answered a satisfaction question with ``max_score`` or
    less since ``since`` (the contact policy sends them to care, not marketing)."""
    out: set[int] = set()
    for start in range(0, len(customer_ids), 500):
        out.update(int(c) for c in session.scalars(
            select(Conversation.customer_id).join(CsatAnswer,
                                                  CsatAnswer.conversation_id == Conversation.id)
            .where(id_in(Conversation.customer_id, customer_ids[start:start + 500], session),
                   CsatAnswer.score <= max_score, CsatAnswer.created_at >= since)))
    return out


def last_inbound_at(session: Session, customer_ids: list[int], *, channels: list[str]
                    ) -> dict[int, dt.datetime]:
    """Each customer's latest inbound message time on any of ``channels`` (the platforms'
    session windows count from it)."""
    out: dict[int, dt.datetime] = {}
    for start in range(0, len(customer_ids), 500):
        rows = session.execute(
            select(Conversation.customer_id, func.max(Message.created_at))
            .join(Message, Message.conversation_id == Conversation.id)
            .where(id_in(Conversation.customer_id, customer_ids[start:start + 500], session),
                   Message.direction == "in", Message.channel.in_(channels))
            .group_by(Conversation.customer_id))
        out.update({int(c): t for c, t in rows if t is not None})
    return out
