"""Wire shape of a catalogue product."""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_COMPONENT = re.compile(r"^\s*([^\s*:]+)\s*(?:[*x×:]\s*(\d+))?\s*$")


class BundleItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=60)
    quantity: int = Field(default=1, ge=1, le=1000)


class ProductIn(BaseModel):
    """One product. ``cycle_days`` is how many days one unit lasts; ``bundle_of`` lists the
    SKUs (and quantities) a bundle is made of, as a list or as text ``"SKU*3|SKU2"``."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=60, pattern=r"^[^\s]+$")
    name: str = Field(min_length=1, max_length=200)
    category: str | None = Field(default=None, max_length=60)
    price: float | None = Field(default=None, ge=0, le=100_000_000)
    cycle_days: float | None = Field(default=None, gt=0, le=3650)
    bundle_of: list[BundleItem] = Field(default_factory=list, max_length=50)

    @field_validator("price", "cycle_days")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("bundle_of", mode="before")
    @classmethod
    def _bundle_text(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        items = []
        for part in re.split(r"[|,;]", v):
            if not part.strip():
                continue
            match = _COMPONENT.match(part)
            if match is None:
                raise ValueError(f"bundle component {part.strip()!r} is not SKU or SKU*N")
            items.append({"sku": match.group(1), "quantity": int(match.group(2) or 1)})
        return items
