"""Knowledge-base tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime, utcnow

KEYWORD_MATCHES = ("contains", "exact", "regex")


class Intent(TimestampMixin, Base):
    """What a customer may want. ``answer`` is a reply template with ``{placeholders}``
    filled from the customer's context; ``action`` names a lookup the bot runs instead
    (e.g. ``order_status``); ``handoff`` sends the conversation to a person."""

    __tablename__ = "kb_intents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[str | None] = mapped_column(String(100))
    answer: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str | None] = mapped_column(String(40))
    handoff: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which people take the conversation when it goes to a person (``siyu.service.SKILL_GROUPS``).
    skill_group: Mapped[str | None] = mapped_column(String(40))


class IntentExample(TimestampMixin, Base):
    __tablename__ = "kb_intent_examples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    intent_id: Mapped[int] = mapped_column(ForeignKey("kb_intents.id", ondelete="CASCADE"),
                                           index=True)
    text: Mapped[str] = mapped_column(String(500))


class FaqEntry(TimestampMixin, Base):
    __tablename__ = "kb_faq"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    question: Mapped[str] = mapped_column(String(500))
    variants: Mapped[list[Any]] = mapped_column(default=list)
    answer: Mapped[str] = mapped_column(Text)


class KeywordRule(TimestampMixin, Base):
    """An auto-reply checked before intent recognition; the highest ``priority`` wins."""

    __tablename__ = "kb_keyword_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pattern: Mapped[str] = mapped_column(String(200))
    match: Mapped[str] = mapped_column(String(10), default="contains")
    reply: Mapped[str | None] = mapped_column(Text)
    handoff: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class NluModel(Base):
    """A trained intent model (``siyu.nlu.IntentClassifier`` in its own serialised form) with
    its evaluation; the newest active one serves the bot."""

    __tablename__ = "kb_nlu_models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    examples: Mapped[int] = mapped_column(Integer)
    intents: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    trained_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
