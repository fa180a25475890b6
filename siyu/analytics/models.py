"""Per-customer scores and their history, and fitted CLV models.

``customer_scores`` holds one row per customer, recomputed by ``siyu scores recompute``
(and on schedule); segments filter on it. Stage changes (lifecycle, audience type) are
appended to ``stage_transitions`` so transitions over time can be counted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime


class CustomerScore(Base):
    __tablename__ = "customer_scores"
    # A merged-away customer's scores stay with its tombstone; the survivor is recomputed.
    __table_args__ = (
        Index("ix_customer_scores_lifecycle", "lifecycle"),
        Index("ix_customer_scores_rfm_tier", "rfm_tier"),
        Index("ix_customer_scores_audience", "audience"),
        {"info": {"merge": "skip"}},
    )

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Order facts the scores are built from.
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    spend: Mapped[float] = mapped_column(Float, default=0.0)
    avg_order_value: Mapped[float | None] = mapped_column(Float)
    first_order_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_order_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_active_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    referrals_count: Mapped[int] = mapped_column(Integer, default=0)
    # RFM: quintile scores 1-5 (5 best) and a named tier.
    rfm_r: Mapped[int | None] = mapped_column(Integer)
    rfm_f: Mapped[int | None] = mapped_column(Integer)
    rfm_m: Mapped[int | None] = mapped_column(Integer)
    rfm_score: Mapped[int | None] = mapped_column(Integer)
    rfm_tier: Mapped[str | None] = mapped_column(String(20))
    lifecycle: Mapped[str | None] = mapped_column(String(20))
    lifecycle_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # CLV from the active BG/NBD + Gamma-Gamma model.
    p_alive: Mapped[float | None] = mapped_column(Float)
    expected_purchases: Mapped[float | None] = mapped_column(Float)
    clv: Mapped[float | None] = mapped_column(Float, index=True)
    fan_score: Mapped[float | None] = mapped_column(Float, index=True)
    # The fan score's three criteria, 0-100 each (a true fan has all three above zero).
    fan_repeat: Mapped[float | None] = mapped_column(Float)
    fan_recommend: Mapped[float | None] = mapped_column(Float)
    fan_tolerance: Mapped[float | None] = mapped_column(Float)
    is_true_fan: Mapped[bool] = mapped_column(Boolean, default=False)
    audience: Mapped[str | None] = mapped_column(String(20))
    value_asset: Mapped[float | None] = mapped_column(Float)
    brand_asset: Mapped[float | None] = mapped_column(Float)
    retention_asset: Mapped[float | None] = mapped_column(Float)
    # One-line reasons per score, shown on the customer 360 page.
    explanations: Mapped[dict[str, Any]] = mapped_column(default=dict)


class StageTransition(TimestampMixin, Base):
    """A customer moved from one stage to another in a dimension (lifecycle, audience)."""

    __tablename__ = "stage_transitions"
    __table_args__ = (
        Index("ix_stage_transitions_dim_at", "dimension", "at"),
        Index("ix_stage_transitions_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    dimension: Mapped[str] = mapped_column(String(20))
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ClvModel(TimestampMixin, Base):
    """A fitted BG/NBD + Gamma-Gamma model; the newest active one scores customers."""

    __tablename__ = "clv_models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    calibration_end: Mapped[dt.date]
    time_unit: Mapped[str] = mapped_column(String(8))
    bgnbd: Mapped[dict[str, Any]] = mapped_column(default=dict)
    gamma_gamma: Mapped[dict[str, Any]] = mapped_column(default=dict)
    holdout: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    n_customers: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
