"""Points settings (``SIYU_`` prefix):

* ``SIYU_POINTS_PER_YUAN`` (0: off): points a purchase earns per yuan (rounded down per
  order), awarded once per order when it is stored as, or changes to, a purchase status
  (paid, shipped, delivered, completed) — not for orders of a file import, which are
  history. A refunded or cancelled order takes back what it earned, whenever it earned it.
* ``SIYU_POINTS_EXPIRE_AFTER_YEARS`` (0: never, the default): with 1, points earned in year
  Y expire at the end of year Y+1 ("the end of the following year"), in the brand's time
  zone (``SIYU_TIMEZONE``); spending and reversals use the oldest points first.
* ``SIYU_POINTS_CHECKIN`` (default 10; 0: off): points a daily check-in (签到) earns, once
  per day in the brand's time zone — ``POST /api/v1/customers/{id}/points/check-ins`` or
  a customer typing 签到 in the web chat (:mod:`siyu.points.earn`).
* ``SIYU_POINTS_SURVEY_ANSWER`` (default 20; 0: off): points for a survey a known
  customer completes through its link, once per response; imported responses are history
  and earn nothing.
* ``SIYU_POINTS_REVIEW`` (default 20; 0: off): points for a review — an ingested
  ``review`` or ``feedback`` event with a text — once per event; a file import earns
  nothing.
* ``SIYU_POINTS_YUAN_PER_POINT`` (default 0.01, i.e. 100 积分抵 1 元 as the demo knowledge
  base says): what a point is worth, for the liability report.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PointsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIYU_", env_file=None, extra="ignore")

    points_per_yuan: float = Field(default=0.0, ge=0, le=1000)
    points_expire_after_years: int = Field(default=0, ge=0, le=20)
    points_checkin: int = Field(default=10, ge=0, le=100_000)
    points_survey_answer: int = Field(default=20, ge=0, le=100_000)
    points_review: int = Field(default=20, ge=0, le=100_000)
    points_yuan_per_point: float = Field(default=0.01, ge=0, le=1000)


@lru_cache
def get_points_settings() -> PointsSettings:
    return PointsSettings()
