"""Points settings (``SIYU_`` prefix):

* ``SIYU_POINTS_PER_YUAN`` (0: off): points a purchase earns per yuan (rounded down per
  order), awarded once per order when it is stored as, or changes to, a purchase status
  (paid, shipped, delivered, completed) — not for orders of a file import, which are
  history. A refunded or cancelled order takes back what it earned, whenever it earned it.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PointsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIYU_", env_file=None, extra="ignore")

    points_per_yuan: float = Field(default=0.0, ge=0, le=1000)


@lru_cache
def get_points_settings() -> PointsSettings:
    return PointsSettings()
