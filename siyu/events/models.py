"""Orders and behavioural events. Their ids are the client's, so retried ingests are idempotent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, TimestampMixin, UTCDateTime


class Order(TimestampMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer_ts", "customer_id", "ts"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    amount: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="CNY", server_default="CNY")
    status: Mapped[str] = mapped_column(String(20), default="paid", server_default="paid")
    channel: Mapped[str | None] = mapped_column(String(30))
    items: Mapped[list[Any]] = mapped_column(default=list)
    # The version of the record as the brand's system sent it (its ``updated_at``, else its
    # ``ts``): a repeated order id with a later version updates the row, an older one is
    # ignored (see siyu.events.service).
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Who receives the parcel, when the brand sends it: another recipient than the customer
    # is a signal of buying for family and friends (journeys).
    recipient_name: Mapped[str | None] = mapped_column(String(100))
    recipient_phone: Mapped[str | None] = mapped_column(String(40))
    recipient_address: Mapped[str | None] = mapped_column(String(300))


class Event(TimestampMixin, Base):
    __tablename__ = "events"
    # (type, ts) lookups use ix_events_type_ts_customer, declared with the segments that
    # need its customer_id column (siyu/segments/models.py).
    __table_args__ = (Index("ix_events_customer_ts", "customer_id", "ts"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    type: Mapped[str] = mapped_column(String(60))
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str | None] = mapped_column(String(30))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
