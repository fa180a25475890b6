"""Wire shapes of ingested orders and events."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from siyu.customers.schemas import IdentifiedRecord, RecordId
from siyu.kit.timeutil import as_aware

ORDER_STATUSES = (
    "created", "paid", "shipped", "delivered", "completed", "cancelled", "refunded",
    "payment_failed",
)
_EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
_TZ = "Asia/Shanghai"


def _check_ts(value: dt.datetime, info: ValidationInfo) -> dt.datetime:
    # The batch's context carries the zone object and the latest allowed time, computed once
    # per batch rather than per record.
    ctx = info.context or {}
    zone = ctx.get("zone")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone) if zone else as_aware(value, ctx.get("tz", _TZ))
    if value < _EARLIEST:
        raise ValueError("timestamp is before 1990-01-01")
    latest = ctx.get("latest") or dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    if value > latest:
        raise ValueError("timestamp is in the future")
    return value


def _check_optional_ts(value: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
    return None if value is None else _check_ts(value, info)


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    sku: str | None = Field(default=None, max_length=60)
    name: str | None = Field(default=None, max_length=200)
    quantity: int = Field(default=1, ge=0, le=100_000)
    price: float | None = Field(default=None, ge=0)


class OrderIn(IdentifiedRecord):
    """One order. ``id`` is the brand's order id. A repeated id whose version (``updated_at``,
    else ``ts``) is later than the stored one updates the order (status, amount, items,
    recipient); the same or an older version changes nothing."""

    model_config = ConfigDict(extra="forbid")

    id: str = RecordId
    ts: dt.datetime
    amount: float = Field(ge=0, le=100_000_000)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    status: str = "paid"
    channel: str | None = Field(default=None, max_length=30)
    items: list[OrderItem] = Field(default_factory=list, max_length=500)
    updated_at: dt.datetime | None = None
    recipient_name: str | None = Field(default=None, max_length=100)
    recipient_phone: str | None = Field(default=None, max_length=40)
    recipient_address: str | None = Field(default=None, max_length=300)

    _ts = field_validator("ts")(_check_ts)
    _updated = field_validator("updated_at")(_check_optional_ts)

    @property
    def version(self) -> dt.datetime:
        """When this state of the order was true: ``updated_at``, else ``ts``."""
        return self.updated_at or self.ts

    @field_validator("amount")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("amount must be a finite number")
        return round(v, 2)

    @field_validator("status")
    @classmethod
    def _status(cls, v: str) -> str:
        if v not in ORDER_STATUSES:
            raise ValueError(f"status must be one of {', '.join(ORDER_STATUSES)}")
        return v


class EventIn(IdentifiedRecord):
    """One behavioural event (``add_wecom_contact``, ``view_product``, ``coupon_used`` ...)."""

    model_config = ConfigDict(extra="forbid")

    id: str = RecordId
    type: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$")
    ts: dt.datetime
    channel: str | None = Field(default=None, max_length=30)
    properties: dict[str, Any] = Field(default_factory=dict)

    _ts = field_validator("ts")(_check_ts)
