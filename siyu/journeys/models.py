"""Stage rules, scenarios, and each customer's current stage, repurchase timing and
scenario memberships."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime, utcnow


class StageRule(TimestampMixin, Base):
    """The rule that puts a customer at ``stage`` (stages are tried from the last of the
    journey to the first; the first whose rule holds wins). No rows: the defaults."""

    __tablename__ = "journey_stage_rules"

    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    rule: Mapped[dict[str, Any]] = mapped_column()
    rule_text: Mapped[str] = mapped_column(Text)


class Scenario(TimestampMixin, Base):
    """A scenario of the journey: a named rule in the segment language, within a stage.
    ``tag``: carried by the customers while they are in it (e.g. 投诉中, which marketing
    honours)."""

    __tablename__ = "scenarios"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    stage: Mapped[str] = mapped_column(String(20))
    rule: Mapped[dict[str, Any]] = mapped_column()
    rule_text: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    tag: Mapped[str | None] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(10), default="active")
    position: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)


class CustomerJourney(Base):
    """A customer's current journey stage (since when)."""

    __tablename__ = "customer_journeys"
    # Derived: a merged-away customer's rows stay with its tombstone; the survivor is
    # recomputed (moving them could collide with the survivor's own rows).
    __table_args__ = (Index("ix_customer_journeys_stage", "stage"), {"info": {"merge": "skip"}})

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             primary_key=True)
    stage: Mapped[str] = mapped_column(String(20))
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RepurchaseDue(Base):
    """When the customer's latest purchase runs out: the item of that order that lasts the
    shortest (catalogue cycle × quantity). Rebuilt by each recomputation."""

    __tablename__ = "repurchase_due"
    __table_args__ = (Index("ix_repurchase_due_due_at", "due_at"), {"info": {"merge": "skip"}})

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             primary_key=True)
    order_id: Mapped[str] = mapped_column(String(100))
    sku: Mapped[str] = mapped_column(String(60))
    quantity: Mapped[float] = mapped_column(Float)
    ordered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CustomerScenario(Base):
    """A customer in a scenario now, since ``entered_at``, with the one-line why."""

    __tablename__ = "customer_scenarios"
    __table_args__ = (Index("ix_customer_scenarios_customer", "customer_id"),
                      {"info": {"merge": "skip"}})

    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"),
                                             primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             primary_key=True)
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    why: Mapped[str] = mapped_column(Text)
