"""The channels' one door into the service desk (``siyu.service``): conversations and messages.

Everything the channels read or write of the service domain goes through this module, so
the contract between the two is in one place:

* inbound: :func:`receive_inbound` is ``siyu.service.service.receive_inbound`` (stores a
  customer message once per (channel, external id) and enqueues the bot after commit);
* outbound: the service stores replies as messages with status ``queued`` and enqueues
  ``channels.deliver``; the channels read them with :func:`load_outbound`, set their status
  with :func:`set_message_status` and stream them to the web chat with
  :func:`customer_messages`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.customers.identity import IdentityRef
from siyu.customers.models import Identity


@dataclass(frozen=True)
class OutboundMessage:
    """A message waiting to go out on its channel: a service-desk reply (``conversation_id``
    set) or, from :func:`siyu.channels.outbox.enqueue_message`, any other outbound message
    (``key`` set; ``id`` is then the delivery's id and ``content`` holds the subject,
    addressing and channel-specific fields)."""

    id: int
    conversation_id: int | None
    customer_id: int
    channel: str
    sender: str
    text: str
    status: str
    payload: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    purpose: str = "service"
    content: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipient:
    """Who a reply goes to: the customer's identities by kind, and what the customer's last
    inbound message on the channel said about the route back (e.g. the WeCom app id)."""

    customer_id: int
    identities: dict[str, list[str]]
    reply_context: dict[str, Any] = field(default_factory=dict)

    def first(self, kind: str) -> str | None:
        values = self.identities.get(kind)
        return values[0] if values else None


def receive_inbound(
    session: Session,
    *,
    channel: str,
    identities: list[IdentityRef],
    text: str,
    external_id: str | None,
    sent_at: dt.datetime | None = None,
    payload: dict[str, Any] | None = None,
) -> Any:
    """Store an inbound customer message (see ``siyu.service.service.receive_inbound``).

    Returns the service's ``InboundResult`` (``conversation_id``, ``message_id``,
    ``customer_id``, ``duplicate``).
    """
    from siyu.service import service as desk

    return desk.receive_inbound(session, channel=channel, identities=identities, text=text,
                                external_id=external_id, sent_at=sent_at, payload=payload)


def _models() -> tuple[Any, Any]:
    from siyu.service.models import Conversation, Message

    return Conversation, Message


def load_outbound(session: Session, message_id: int, *, lock: bool = False
                  ) -> OutboundMessage | None:
    """The outbound message ``message_id`` with its conversation's customer, or ``None`` if
    there is no such outbound message. ``lock`` takes a row lock (PostgreSQL) so two workers
    holding the same job after a lease expiry serialise on it."""
    Conversation, Message = _models()
    stmt = (select(Message, Conversation.customer_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id == message_id))
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Message)
    row = session.execute(stmt).first()
    if row is None:
        return None
    message, customer_id = row
    if message.direction != "out":
        return None
    return OutboundMessage(
        id=message.id, conversation_id=message.conversation_id, customer_id=customer_id,
        channel=message.channel, sender=message.sender, text=message.text or "",
        status=message.status, payload=dict(message.payload or {}),
    )


def set_message_status(session: Session, message_id: int, status: str,
                       reason: str | None = None) -> None:
    """Record a delivery outcome on the message (``sent``, ``delivered`` or ``failed``);
    a failure's ``reason`` is kept on the message (``payload["delivery_error"]``) so the
    conversation shows why."""
    _, Message = _models()
    message = session.get(Message, message_id)
    if message is not None:
        message.status = status
        if reason:
            message.payload = {**(message.payload or {}), "delivery_error": reason[:500]}


def recipient(session: Session, message: OutboundMessage) -> Recipient:
    """The customer's identities and the reply context of their latest inbound message on
    the message's channel in that conversation."""
    _, Message = _models()
    identities: dict[str, list[str]] = {}
    rows = session.execute(
        select(Identity.kind, Identity.value)
        .where(Identity.customer_id == message.customer_id)
        .order_by(Identity.id)
    )
    for kind, value in rows:
        identities.setdefault(kind, []).append(value)
    last_in = session.scalars(
        select(Message.payload)
        .where(Message.conversation_id == message.conversation_id, Message.direction == "in",
               Message.channel == message.channel)
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    context = dict(last_in or {})
    return Recipient(message.customer_id, identities, context)


def customer_messages(session: Session, customer_id: int, *, channel: str, after_id: int = 0,
                      limit: int = 100, direction: str | None = None) -> list[dict[str, Any]]:
    """The customer's messages on ``channel`` with id above ``after_id``, oldest first, as
    plain dicts (``id``, ``conversation_id``, ``direction``, ``sender``, ``text``,
    ``payload``, ``status``, ``at``); only one ``direction`` (``in``/``out``) if given."""
    Conversation, Message = _models()
    stmt = (
        select(Message.id, Message.conversation_id, Message.direction, Message.sender,
               Message.text, Message.payload, Message.created_at, Message.status)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.customer_id == customer_id, Message.channel == channel,
               Message.id > after_id)
        .order_by(Message.id)
        .limit(limit)
    )
    if direction is not None:
        stmt = stmt.where(Message.direction == direction)
    return [
        {"id": r.id, "conversation_id": r.conversation_id, "direction": r.direction,
         "sender": r.sender, "text": r.text or "", "payload": dict(r.payload or {}),
         "status": r.status, "at": r.created_at.isoformat() if r.created_at else None}
        for r in session.execute(stmt)
    ]


def conversation_route(session: Session, conversation_id: int) -> tuple[str, int] | None:
    """``(channel, customer_id)`` of a conversation, or ``None`` if there is none."""
    Conversation, _ = _models()
    row = session.execute(select(Conversation.channel, Conversation.customer_id)
                          .where(Conversation.id == conversation_id)).first()
    return (str(row[0]), int(row[1])) if row is not None else None


def last_inbound_at(session: Session, customer_id: int, *, channel: str) -> dt.datetime | None:
    """When the customer last wrote on ``channel`` (any of their conversations)."""
    Conversation, Message = _models()
    return session.scalar(
        select(Message.created_at)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.customer_id == customer_id, Message.channel == channel,
               Message.direction == "in")
        .order_by(Message.created_at.desc()).limit(1))


def outbound_count_since(session: Session, customer_id: int, *, channel: str,
                         since: dt.datetime, statuses: tuple[str, ...],
                         exclude_id: int | None = None) -> int:
    """How many replies to the customer on ``channel`` were created at or after ``since``
    with one of ``statuses``."""
    from sqlalchemy import func

    Conversation, Message = _models()
    stmt = (select(func.count()).select_from(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.customer_id == customer_id, Message.channel == channel,
                   Message.direction == "out", Message.created_at >= since,
                   Message.status.in_(statuses)))
    if exclude_id is not None:
        stmt = stmt.where(Message.id != exclude_id)
    return int(session.scalar(stmt) or 0)


def inbound_exists(session: Session, *, channel: str, external_id: str) -> bool:
    """Whether a customer message with this (channel, external id) is already stored."""
    _, Message = _models()
    return session.scalar(select(Message.id).where(
        Message.channel == channel, Message.external_id == external_id).limit(1)) is not None


def inbound_window(session: Session, customer_id: int, *, channel: str, since: dt.datetime
                   ) -> tuple[int, dt.datetime | None]:
    """How many messages the customer wrote on ``channel`` at or after ``since``, and when
    the first of them came (counted in the database, so every server process agrees)."""
    from sqlalchemy import func

    Conversation, Message = _models()
    row = session.execute(
        select(func.count(), func.min(Message.created_at)).select_from(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.customer_id == customer_id, Message.channel == channel,
               Message.direction == "in", Message.created_at >= since)).one()
    return int(row[0] or 0), row[1]


def identity_kinds(session: Session, customer_id: int) -> set[str]:
    """The kinds of identity the customer has (``phone``, ``wechat_openid`` ...)."""
    return set(session.scalars(select(Identity.kind).where(Identity.customer_id == customer_id)))


def answer_now(session: Session, message_id: int, *, opened_with: str | None = None
               ) -> tuple[list[str], dict[str, Any]]:
    """Run the bot on inbound message ``message_id`` now (a channel that waits for the
    answer, like a phone call) and mark its replies delivered by the channel itself.

    ``opened_with``: the incident type the channel already told the customer about before
    this conversation had a message (a call's greeting names the failed payment). Until
    the conversation has a topic of its own, that incident's is its topic, so a bare
    「转人工」 goes to that topic's skill group, as it would after the same words in chat.

    Returns the replies' texts and the conversation's state after the bot
    (``status``, ``skill_group``, ``assigned_user_id``).
    """
    from siyu.service import bot

    Conversation, Message = _models()
    if opened_with is not None:
        inbound = session.get(Message, message_id)
        conv = session.get(Conversation, inbound.conversation_id) if inbound else None
        if conv is not None and conv.last_intent is None:
            conv.last_intent = _incident_topic(session, opened_with)
    bot.handle_inbound(session, message_id)
    inbound = session.get(Message, message_id)
    assert inbound is not None
    replies = list(session.scalars(
        select(Message).where(Message.conversation_id == inbound.conversation_id,
                              Message.direction == "out", Message.id > message_id,
                              Message.status == "queued")
        .order_by(Message.id)))
    for reply in replies:
        reply.status = "delivered"
    conv = session.get(Conversation, inbound.conversation_id)
    assert conv is not None
    return ([r.text or "" for r in replies],
            {"status": conv.status, "skill_group": conv.skill_group,
             "assigned_user_id": conv.assigned_user_id, "intent": conv.last_intent})


def _incident_topic(session: Session, incident_type: str) -> str | None:
    """The knowledge base's intent an incident bears on (with a skill group), if any."""
    from siyu.kb import service as kb
    from siyu.service import bot

    runtime = kb.load_runtime(session)
    for name in sorted(bot.BEARS_ON.get(incident_type, ())):
        info = runtime.intent(name)
        if info is not None and info.skill_group:
            return name
    return None


def record_satisfaction(session: Session, conversation_id: int, score: int) -> bool:
    """Store a satisfaction score (1-5) for the conversation, against its agent or the bot
    and its intent; ``False`` when it already has one (a later call on the same
    conversation keeps its score on the call only)."""
    from siyu.service import service
    from siyu.service.models import CsatAnswer

    Conversation, _ = _models()
    conv = session.get(Conversation, conversation_id)
    if conv is None or session.scalar(select(CsatAnswer.id).where(
            CsatAnswer.conversation_id == conversation_id)) is not None:
        return False
    service.record_csat(session, conv, score)
    return True
