"""Phone tables: calls (with their transcript) and the webhook events seen (replay guard)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime, utcnow

CALL_STATES = ("verify", "bot", "csat", "transferred", "with_agent", "ended")


class PhoneWebhookEvent(TimestampMixin, Base):
    """Each accepted webhook event id, once: a replayed event is refused."""

    __tablename__ = "phone_webhook_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    call_id: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(30))


class PhoneCall(TimestampMixin, Base):
    """One call: who called (the customer, once identified), how it went, its transcript.

    ``customer_id`` stays empty for an unknown number until the call produces something
    worth keeping (the caller says something); the transcript is also the conversation's
    messages on channel ``phone``, so it joins the customer's history on every channel.
    """

    __tablename__ = "phone_calls"
    __table_args__ = (Index("ix_phone_calls_customer", "customer_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(100), unique=True)
    from_number: Mapped[str] = mapped_column(String(40))
    to_number: Mapped[str] = mapped_column(String(40), default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    # The service desk's conversation; no foreign key so the two domains migrate apart.
    conversation_id: Mapped[int | None] = mapped_column(BigInteger)
    identified_by: Mapped[str | None] = mapped_column(String(20))
    voiceprint_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="bot")
    skill_group: Mapped[str | None] = mapped_column(String(40))
    transcript: Mapped[list[Any]] = mapped_column(default=list)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    transferred_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    recording_ref: Mapped[str | None] = mapped_column(Text)
    csat: Mapped[int | None] = mapped_column(Integer)
    # A number that names several customers (see siyu.channels.phone.identify): who it may
    # be and which verifying question was asked; the answers are never stored here.
    candidate_ids: Mapped[list[Any] | None] = mapped_column()
    verify_question: Mapped[str | None] = mapped_column(String(20))
