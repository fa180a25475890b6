"""Saved segments, their current members, who entered and left when, and size snapshots.

A saved segment's membership is the result of its rule at the last refresh. Every refresh
appends one ``segment_changes`` row per customer who entered or left (ids only grow, so a
consumer such as a playbook trigger reads "entries after change id N" and remembers the
last id it saw) and one ``segment_snapshots`` row with the size at that moment.

Members and changes are not moved when customers merge: the merged-away customer stops
being active, so the next refresh records them leaving and the survivor entering if the
rule now matches them, which is exactly what a playbook trigger should see.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.customers.models import CustomerTag, Identity
from siyu.db import Base, BigId, TimestampMixin, UTCDateTime, utcnow
from siyu.events.models import Event, Order

CHANGE_KINDS = ("entered", "left")


class Segment(TimestampMixin, Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # The validated JSON form (see siyu.segments.rules); ``text`` is its canonical text.
    rule: Mapped[dict[str, Any]] = mapped_column()
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SegmentMember(Base):
    __tablename__ = "segment_members"
    __table_args__ = (
        Index("ix_segment_members_customer", "customer_id"),
        {"info": {"merge": "skip"}},
    )

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SegmentChange(Base):
    """A customer entered or left a segment at a refresh."""

    __tablename__ = "segment_changes"
    __table_args__ = (
        Index("ix_segment_changes_segment_id", "segment_id", "id"),
        Index("ix_segment_changes_customer", "customer_id"),
        {"info": {"merge": "skip"}},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SegmentSnapshot(Base):
    """The size of a segment after one refresh, for "size over time" charts."""

    __tablename__ = "segment_snapshots"
    __table_args__ = (Index("ix_segment_snapshots_segment_at", "segment_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    size: Mapped[int] = mapped_column(Integer)
    entered: Mapped[int] = mapped_column(Integer)
    left: Mapped[int] = mapped_column(Integer)


# Indexes on other domains' tables that the rule compiler's SQL relies on (declared here so
# the migration that creates them and `siyu db check` agree). Window conditions read orders
# and events by time; the covering columns let SQLite answer from the index alone.
ORDERS_TS_INDEX = Index(
    "ix_orders_ts_cover", Order.ts, Order.customer_id, Order.status, Order.amount
)
EVENTS_TYPE_TS_INDEX = Index("ix_events_type_ts_customer", Event.type, Event.ts, Event.customer_id)
IDENTITIES_KIND_INDEX = Index("ix_identities_kind_customer", Identity.kind, Identity.customer_id)
CUSTOMER_TAGS_TAG_INDEX = Index("ix_customer_tags_tag_customer", CustomerTag.tag_id,
                                CustomerTag.customer_id)
