"""The points ledger: one row per award or spend, never updated or deleted."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime


class PointsEntry(TimestampMixin, Base):
    """``amount`` points (negative: spent) for a customer, from ``source`` with the source's
    own idempotency ``key``: the same (source, key) is stored once, so a retried award or a
    replayed import never counts twice. A customer merge moves the entries with the
    customer's other rows (by the foreign key) and its undo moves them back."""

    __tablename__ = "points_entries"
    __table_args__ = (UniqueConstraint("source", "key"),
                      Index("ix_points_entries_customer", "customer_id", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Reward(TimestampMixin, Base):
    """What points buy (a coupon, a trial size, a gift): its price in points and the stock
    left (None: unlimited). Stock only goes down by a redemption's conditional update."""

    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    cost: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Redemption(TimestampMixin, Base):
    """One reward redeemed by a customer, paid by the ledger entry ``entry_id`` (source
    ``redeem``, the redemption's own key)."""

    __tablename__ = "reward_redemptions"
    __table_args__ = (Index("ix_reward_redemptions_customer", "customer_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id", ondelete="RESTRICT"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
