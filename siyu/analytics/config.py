"""Scoring configuration: every threshold the scores use, with defaults that suit a
consumer brand, loadable from a JSON file named by ``SIYU_SCORING_CONFIG``.

Each field documents the rule it drives; ``siyu/analytics/scoring.py`` applies them.
A file only needs the fields it changes, e.g.::

    {"rfm": {"tiers": [{"name": "VIP", "min_score": 13}, {"name": "会员", "min_score": 8},
                       {"name": "粉丝", "min_score": 0}]},
     "acquisition_cost": {"直播": 80, "门店": 25}}
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from siyu.errors import InvalidInput
from siyu.kit.validation import field_errors

CONFIG_ENV = "SIYU_SCORING_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    """A named RFM tier: customers whose R+F+M score (3-15) is at least ``min_score``."""

    name: str = Field(min_length=1, max_length=20)
    min_score: int = Field(ge=0, le=15)


class RfmConfig(_Strict):
    """RFM scores 1-5 (5 best) for R (days since the last purchase, fewer is better),
    F (purchase orders) and M (spend).

    ``method="quantile"``: a customer's score is ``1 + floor(5 * below / n)`` where ``below``
    counts the buyers with a strictly worse value, so equal values always share a score and
    the best fifth of distinct positions gets 5. ``method="fixed"``: the score is 1 plus the
    number of edges the value reaches (``value >= edge``; for recency ``days <= edge``),
    each list holding four ascending (recency: descending) edges.
    """

    method: Literal["quantile", "fixed"] = "quantile"
    recency_edges_days: list[float] = [180, 90, 30, 7]
    frequency_edges: list[float] = [2, 3, 5, 8]
    monetary_edges: list[float] = [200, 500, 1000, 3000]
    tiers: list[Tier] = [
        Tier(name="VIP", min_score=12),
        Tier(name="会员", min_score=7),
        Tier(name="粉丝", min_score=0),
    ]
    #: Tier of a customer without purchases (in the private pool, not yet buying).
    non_buyer_tier: str | None = "粉丝"

    @model_validator(mode="after")
    def _edges(self) -> RfmConfig:
        for name in ("recency_edges_days", "frequency_edges", "monetary_edges"):
            edges = getattr(self, name)
            if len(edges) != 4:
                raise ValueError(f"{name} needs exactly 4 edges")
            ordered = sorted(edges, reverse=name == "recency_edges_days")
            if list(edges) != ordered:
                order = "descending" if name == "recency_edges_days" else "ascending"
                raise ValueError(f"{name} must be {order}")
        if not self.tiers:
            raise ValueError("tiers must name at least one tier")
        return self


class LifecycleConfig(_Strict):
    """Lifecycle stage from purchase days counted in the brand's time zone (same-day
    purchases are one), checked in this order:

    1. ``acquisition``: no purchase yet, or a first purchase at most ``new_days`` ago.
    2. ``churned``: days since the last purchase > ``churned_ratio`` x the customer's cycle
       and >= ``churned_min_days``.
    3. ``decline``: the same with ``decline_ratio`` and ``decline_min_days``.
    4. ``reactivated``: the gap before the last purchase met the churned rule against the
       cycle before it (the customer had churned and came back).
    5. ``maturity``: at least ``maturity_min_purchases`` purchase days over at least
       ``maturity_min_tenure_days`` since the first purchase.
    6. ``growth``: everyone else (buying, in rhythm, not yet mature).

    The cycle is the customer's own mean inter-purchase time (days between the first and
    last purchase day / (purchase days - 1)); with one purchase day it is
    ``default_cycle_days``, or the median cycle of the repeat buyers when that is unset.
    """

    new_days: int = Field(default=30, ge=0)
    decline_ratio: float = Field(default=1.5, gt=0)
    decline_min_days: int = Field(default=30, ge=0)
    churned_ratio: float = Field(default=3.0, gt=0)
    churned_min_days: int = Field(default=90, ge=0)
    maturity_min_purchases: int = Field(default=3, ge=2)
    maturity_min_tenure_days: int = Field(default=180, ge=0)
    default_cycle_days: float | None = Field(default=None, gt=0)
    #: Used when ``default_cycle_days`` is unset and nobody has bought twice.
    fallback_cycle_days: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _order(self) -> LifecycleConfig:
        if self.churned_ratio < self.decline_ratio:
            raise ValueError("churned_ratio must be at least decline_ratio")
        return self


class EventMatch(_Strict):
    """Events of ``type``; with ``property``/``equals``, only those whose JSON property has
    that string value (e.g. after_sales_request with kind = complaint)."""

    type: str = Field(min_length=1, max_length=60)
    property: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")
    equals: str | None = None


class RatingSource(_Strict):
    """Events carrying a satisfaction rating in ``property``, on a 0..``scale_max`` scale."""

    type: str = Field(min_length=1, max_length=60)
    property: str = Field(default="score", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")
    scale_max: float = Field(gt=0)


class FanConfig(_Strict):
    """True-fan (铁粉) score 0-100 from seed 004's three criteria, each scored 0-100:

    * ``repeat``: (purchase days - 1) / (``repeat_target`` - 1), capped at 100;
    * ``recommend``: ``referral_points`` per customer referred + ``share_points`` per share
      or invite event, capped at 100;
    * ``tolerance``: ``feedback_points`` per feedback or survey answer +
      ``stayed_points`` when the customer bought again after a complaint, capped at 100.

    The score is their weighted mean. A true fan meets all three (repeat purchase days >= 2,
    recommend > 0, tolerance > 0) and scores at least ``true_fan_min_score``.
    """

    repeat_target: int = Field(default=4, ge=2)
    referral_points: float = Field(default=50, ge=0)
    share_points: float = Field(default=10, ge=0)
    feedback_points: float = Field(default=25, ge=0)
    stayed_points: float = Field(default=50, ge=0)
    weight_repeat: float = Field(default=0.4, ge=0)
    weight_recommend: float = Field(default=0.3, ge=0)
    weight_tolerance: float = Field(default=0.3, ge=0)
    true_fan_min_score: float = Field(default=60, ge=0, le=100)
    goal: int = Field(default=1000, ge=1)
    share_events: list[EventMatch] = [EventMatch(type="share_product"),
                                      EventMatch(type="invite_friend"),
                                      EventMatch(type="share")]
    feedback_events: list[EventMatch] = [EventMatch(type="feedback"),
                                         EventMatch(type="survey_response"),
                                         EventMatch(type="review")]
    complaint_events: list[EventMatch] = [
        EventMatch(type="after_sales_request", property="kind", equals="complaint"),
        EventMatch(type="complaint"),
    ]

    @model_validator(mode="after")
    def _weights(self) -> FanConfig:
        if self.weight_repeat + self.weight_recommend + self.weight_tolerance <= 0:
            raise ValueError("the fan weights must not all be zero")
        return self


class AudienceConfig(_Strict):
    """Seed 003's seven audience types; the first rule that holds wins:

    1. ``ideal`` (理想人群): a true fan with an RFM score >= ``ideal_min_rfm``.
    2. ``influencer`` (影响人群, KOL): referred >= ``influencer_min_referrals`` customers, or
       referrals + share events >= ``influencer_min_shares``.
    3. ``seed`` (种子人群): first purchase within ``early_days`` of the brand's launch, bought
       on >= 2 days and gave feedback.
    4. ``pioneer`` (先锋人群): first purchase within ``early_days`` of the launch.
    5. ``follower`` (追随人群): came through a recommendation (someone referred them, or the
       acquisition channel is one of ``referral_channels``) and bought on <= 2 days.
    6. ``potential`` (潜在人群): no purchase yet.
    7. ``mainstream`` (主流人群): every other buyer.

    The launch is ``launch_date``, or the day of the earliest purchase when unset.
    """

    ideal_min_rfm: int = Field(default=12, ge=3, le=15)
    influencer_min_referrals: int = Field(default=3, ge=1)
    influencer_min_shares: int = Field(default=10, ge=1)
    early_days: int = Field(default=90, ge=0)
    launch_date: dt.date | None = None
    referral_channels: list[str] = ["朋友推荐", "referral", "invite_friend"]


class AssetConfig(_Strict):
    """Customer asset (seed 001), each on 0-100:

    * ``value_asset`` (交易贡献): the percentage of buyers whose spend is at most the
      customer's (the top spender has 100; no purchase is 0).
    * ``brand_asset`` (满意度与忠诚度): the mean of satisfaction (mean rating as a percentage
      of its scale; ``neutral_satisfaction`` without ratings) and loyalty (the fan score).
    * ``retention_asset`` (复购和长久关系): the mean of the repeat criterion and tenure
      (days since the first purchase / ``full_tenure_days``, capped), times the probability
      alive when a CLV model is active.
    """

    neutral_satisfaction: float = Field(default=50, ge=0, le=100)
    full_tenure_days: int = Field(default=730, ge=1)
    rating_sources: list[RatingSource] = [
        RatingSource(type="feedback", scale_max=5),
        RatingSource(type="survey_response", scale_max=10),
    ]


class ClvConfig(_Strict):
    """CLV of each customer from the active fitted model: discounted expected value over
    ``horizon_months`` at ``annual_discount_rate``, times ``margin``."""

    horizon_months: int = Field(default=12, ge=1, le=120)
    annual_discount_rate: float = Field(default=0.10, ge=0, lt=10)
    margin: float = Field(default=1.0, gt=0, le=1)


class ScoringConfig(_Strict):
    """All scoring rules; see each section. ``acquisition_cost`` is the cost of acquiring
    one customer per acquisition channel (currency units), used for LTV/CAC."""

    rfm: RfmConfig = RfmConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    fan: FanConfig = FanConfig()
    audience: AudienceConfig = AudienceConfig()
    asset: AssetConfig = AssetConfig()
    clv: ClvConfig = ClvConfig()
    acquisition_cost: dict[str, float] = {}
    clv_buckets: list[float] = [0, 100, 200, 500, 1000, 2000, 5000]

    @model_validator(mode="after")
    def _check(self) -> ScoringConfig:
        for channel, cost in self.acquisition_cost.items():
            if cost < 0:
                raise ValueError(f"acquisition_cost[{channel!r}] must not be negative")
        if sorted(set(self.clv_buckets)) != list(self.clv_buckets) or not self.clv_buckets:
            raise ValueError("clv_buckets must be strictly ascending")
        return self


class InvalidScoringConfig(InvalidInput):
    code = "invalid_scoring_config"


def parse_config(text: str, *, source: str = "scoring config") -> ScoringConfig:
    """Parse a JSON scoring configuration; errors name the field and the reason."""
    try:
        return ScoringConfig.model_validate_json(text)
    except ValidationError as exc:
        errors = field_errors(exc)
        summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        raise InvalidScoringConfig(f"{source} is invalid: {summary}",
                                   details=errors) from None


def load_config(path: str | os.PathLike[str] | None = None) -> ScoringConfig:
    """The scoring configuration from ``path``, else from the file named by
    ``SIYU_SCORING_CONFIG``, else the defaults."""
    name = path if path is not None else os.environ.get(CONFIG_ENV)
    if not name:
        return ScoringConfig()
    file = Path(name)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidScoringConfig(f"cannot read the scoring config {file}: {exc.strerror}",
                                   details=[{"field": CONFIG_ENV, "reason": "unreadable"}]
                                   ) from None
    return parse_config(text, source=str(file))
