"""Service desk tables: conversations, messages, bot decisions, agents, satisfaction answers.

A conversation belongs to one customer on one channel and moves ``bot`` → ``waiting`` (handed
off, in the queue) → ``with_agent`` → ``closed``. Messages keep the channel's own id
(``external_id``) so a provider's retry is stored once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime, utcnow

CONVERSATION_STATES = ("bot", "waiting", "with_agent", "closed")
SENDERS = ("customer", "bot", "agent", "system")
MESSAGE_STATES = ("received", "queued", "sent", "delivered", "failed")


class Conversation(TimestampMixin, Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_customer_status", "customer_id", "status"),
        Index("ix_conversations_status_waiting", "status", "waiting_since"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(12), default="bot")
    assigned_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    skill_group: Mapped[str | None] = mapped_column(String(40))
    # The customer's own advisor (a user id) when routing should try them first; a hint, so
    # no foreign key: a departed advisor simply is not online.
    advisor_id: Mapped[int | None] = mapped_column(Integer)
    handoff_reason: Mapped[str | None] = mapped_column(Text)
    last_intent: Mapped[str | None] = mapped_column(String(60))
    waiting_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_message_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Who resolved it: "bot" (never handed off) or "agent".
    handled_by: Mapped[str] = mapped_column(String(10), default="bot")
    csat_pending: Mapped[bool] = mapped_column(Boolean, default=False)


class Message(TimestampMixin, Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_messages_channel_external_id"),
        Index("ix_messages_conversation", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(30))
    sender: Mapped[str] = mapped_column(String(10))
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    text: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(10))
    external_id: Mapped[str | None] = mapped_column(String(200))


class BotDecision(TimestampMixin, Base):
    """What the bot decided for one inbound message, why, and how sure it was."""

    __tablename__ = "bot_decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    action: Mapped[str] = mapped_column(String(20))  # answer | faq | keyword | handoff | ...
    intent: Mapped[str | None] = mapped_column(String(60))
    confidence: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    steps: Mapped[list[Any]] = mapped_column(default=list)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)


class Agent(Base):
    """A staff member's service-desk state: online status and how many chats they take."""

    __tablename__ = "agents"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="offline")
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    skills: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)


class ConversationEvent(TimestampMixin, Base):
    """The conversation's history: handed off, assigned, transferred, closed."""

    __tablename__ = "conversation_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CsatAnswer(TimestampMixin, Base):
    """The customer's satisfaction answer (1-5) after a conversation closed."""

    __tablename__ = "csat_answers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), unique=True)
    score: Mapped[int] = mapped_column(Integer)
    handled_by: Mapped[str] = mapped_column(String(10))
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                                 ondelete="SET NULL"))
    intent: Mapped[str | None] = mapped_column(String(60))
