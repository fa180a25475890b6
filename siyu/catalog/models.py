"""Products of the brand's catalogue, keyed by SKU."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, TimestampMixin, UTCDateTime, utcnow


class Product(TimestampMixin, Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(60))
    price: Mapped[float | None] = mapped_column(Float)
    # Days one unit lasts a regular user, as the brand states it (None: not consumable).
    cycle_days: Mapped[float | None] = mapped_column(Float)
    # A bundle's components: [{"sku", "quantity"}]; empty for a single product.
    bundle_of: Mapped[list[Any]] = mapped_column(default=list)
    # cycle_days, or for a bundle without one the sum of its components' cycles times their
    # quantities: what repurchase timing reads (kept here so SQL needs no recursion).
    effective_cycle_days: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)
