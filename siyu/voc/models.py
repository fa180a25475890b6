"""VOC tables: the factor tree, trained text models, surveys with their questions,
responses and answers, and classified feedback with its per-factor mentions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime, utcnow

#: Question kinds and their scales (None: not numeric).
QUESTION_KINDS: dict[str, tuple[int, int] | None] = {
    "csat": (1, 5),      # 1 very dissatisfied .. 5 very satisfied
    "nps": (0, 10),      # likelihood to recommend
    "ces": (1, 7),       # customer effort: 7 = easiest
    "rating": (1, 5),    # a rating of one factor (maps to a factor-tree leaf by name)
    "single": None,      # single choice
    "multi": None,       # multiple choice
    "text": None,        # free text, classified into factors with sentiment
}


class VocFactor(TimestampMixin, Base):
    """A node of the factor tree: a category (``parent`` empty) or one of its subcategories.
    ``keywords`` find the factor in text before any labelled factor examples exist."""

    __tablename__ = "voc_factors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    parent: Mapped[str | None] = mapped_column(String(60), index=True)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)


class VocModel(Base):
    """A trained text model (``kind`` sentiment or factor) in siyu.nlu's serialised form."""

    __tablename__ = "voc_models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    examples: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    trained_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Survey(TimestampMixin, Base):
    """A questionnaire tied to a journey step or a touchpoint (after a service conversation,
    after delivery, after a return)."""

    __tablename__ = "voc_surveys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    touchpoint: Mapped[str | None] = mapped_column(String(60))
    journey_step: Mapped[str | None] = mapped_column(String(60))
    intro: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SurveyQuestion(TimestampMixin, Base):
    __tablename__ = "voc_questions"
    __table_args__ = (UniqueConstraint("survey_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("voc_surveys.id", ondelete="CASCADE"),
                                           index=True)
    key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(300))
    factor: Mapped[str | None] = mapped_column(String(60))
    options: Mapped[list[Any]] = mapped_column(default=list)
    scale_min: Mapped[int | None] = mapped_column(Integer)
    scale_max: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    required: Mapped[bool] = mapped_column(Boolean, default=False)


class SurveyResponse(TimestampMixin, Base):
    """One respondent's answers. ``external_id`` (an import's ``response_id``) and
    ``link_nonce`` (a signed link's recipient) each allow one response per survey."""

    __tablename__ = "voc_responses"
    __table_args__ = (
        UniqueConstraint("survey_id", "external_id"),
        UniqueConstraint("survey_id", "link_nonce"),
        Index("ix_voc_responses_survey_submitted", "survey_id", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("voc_surveys.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(80))
    link_nonce: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(20), default="import")
    touchpoint: Mapped[str | None] = mapped_column(String(60))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    completed: Mapped[bool] = mapped_column(Boolean, default=False)


class SurveyAnswer(Base):
    __tablename__ = "voc_answers"
    __table_args__ = (UniqueConstraint("response_id", "question_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("voc_responses.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("voc_questions.id", ondelete="CASCADE"),
                                             index=True)
    value_num: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(Text)


class Feedback(Base):
    """A piece of customer text (survey free text, a review, a conversation message) with its
    overall sentiment; :class:`FeedbackMention` holds its factors."""

    __tablename__ = "voc_feedback"
    __table_args__ = (UniqueConstraint("source", "source_ref"),
                      Index("ix_voc_feedback_ts", "ts"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(20))
    source_ref: Mapped[str] = mapped_column(String(80))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    response_id: Mapped[int | None] = mapped_column(
        ForeignKey("voc_responses.id", ondelete="CASCADE"), index=True)
    product: Mapped[str | None] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)
    sentiment: Mapped[int] = mapped_column(Integer)  # 1 positive, -1 negative
    score: Mapped[float] = mapped_column(Float)      # probability of positive
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FeedbackMention(Base):
    """One factor named in a feedback text, with the sentiment of the clause naming it."""

    __tablename__ = "voc_mentions"
    __table_args__ = (Index("ix_voc_mentions_factor_ts", "factor", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    feedback_id: Mapped[int] = mapped_column(ForeignKey("voc_feedback.id", ondelete="CASCADE"),
                                             index=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    factor: Mapped[str] = mapped_column(String(60))
    sentiment: Mapped[int] = mapped_column(Integer)
    clause: Mapped[str] = mapped_column(Text)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExperienceChange(TimestampMixin, Base):
    """A marked change to a journey step ("装机服务改进" on 2026-09-01): the journey map
    compares satisfaction before and after it."""

    __tablename__ = "voc_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    step: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(200))
    date: Mapped[dt.date] = mapped_column(Date)
