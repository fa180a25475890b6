"""REST routes of the points ledger (``/api/v1``): a customer's balance, expiring points and
history; awards and redemptions (idempotent by ``key``); the rewards catalogue; the
liability report.

Reading a customer's points needs ``customers.read``; awarding, redeeming and changing the
catalogue need ``points.write`` (administrators and operators; full-access API keys); the
liability report needs ``analytics.read``. A short balance or an empty stock answers 409
with a Chinese message naming the reason (``insufficient_points``, ``reward_out_of_stock``)
and writes nothing; bad input answers 422 naming the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require
from siyu.errors import InvalidInput
from siyu.kit.openapi import API_ERRORS, error_responses
from siyu.kit.web import get_session
from siyu.points import service
from siyu.points.service import MAX_AMOUNT

router = APIRouter(prefix="/api/v1", tags=["points"], responses=API_ERRORS)
READ, WRITE = "customers.read", "points.write"
CustomerId = Path(ge=1, le=2**63 - 1, description="siyu customer id")
RewardId = Path(ge=1, le=2**63 - 1, description="reward id")
_CONFLICT = error_responses(409, s409="insufficient points (insufficient_points) or the "
                                      "reward is out of stock (reward_out_of_stock)")


def _tz(request: Request) -> str:
    return str(request.app.state.settings.timezone)


def _live_customer(session: Session, customer_id: int) -> int:
    from siyu.customers import service as customers

    return customers.live_customer_id(session, customer_id)


def _masker(principal: Principal) -> Any:
    from siyu.privacy import service as privacy

    return privacy.masker(principal)


class ExpiringOut(BaseModel):
    points: int
    at: str | None = Field(description="the cutoff (UTC); null when points never expire")
    last_day: str | None = Field(description="the last day the points can be used")
    earned_up_to_year: int | None


class EntryOut(BaseModel):
    id: int
    at: dt.datetime
    amount: int
    source: str
    source_label: str
    reason: str | None


class PointsOut(BaseModel):
    customer_id: int
    balance: int
    blocked: bool = Field(description="a negative balance: redemption is refused until it "
                                      "recovers")
    expiring: ExpiringOut
    history: list[EntryOut]


class AwardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="points (negative: deduct)")
    reason: str | None = Field(default=None, max_length=200)
    key: str = Field(min_length=1, max_length=200, description="idempotency key")

    @field_validator("amount")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("积分不能为 0（amount must not be 0）")
        return value


class AwardOut(BaseModel):
    customer_id: int
    entry_id: int
    amount: int
    created: bool
    balance: int


class CheckInOut(BaseModel):
    customer_id: int
    day: dt.date = Field(description="the brand-local day checked in")
    points: int = Field(description="what the day's check-in earned")
    created: bool = Field(description="false: already checked in that day, nothing written")
    balance: int


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    reward: str | None = Field(default=None, min_length=1, max_length=100,
                               description="the reward's name (or give reward_id)")
    key: str = Field(min_length=1, max_length=200, description="idempotency key")


class RedeemOut(BaseModel):
    customer_id: int
    redemption_id: int
    reward: str
    cost: int
    balance: int
    created: bool


class RewardOut(BaseModel):
    id: int
    name: str
    cost: int
    stock: int | None = Field(description="units left; null: unlimited")
    active: bool


class RewardsOut(BaseModel):
    items: list[RewardOut]


class RewardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    cost: int = Field(ge=1, le=MAX_AMOUNT)
    stock: int | None = Field(default=None, ge=0, le=MAX_AMOUNT,
                              description="units left; omit or null: unlimited")


class RewardPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cost: int | None = Field(default=None, ge=1, le=MAX_AMOUNT)
    stock: int | None = Field(default=None, ge=0, le=MAX_AMOUNT,
                              description="units left; null: unlimited; omit: unchanged")
    active: bool | None = None


class LiabilityExpiring(BaseModel):
    points: int
    value_yuan: float
    at: str | None
    last_day: str | None


class LiabilityOut(BaseModel):
    outstanding: int = Field(description="the sum of positive balances")
    value_yuan: float
    yuan_per_point: float
    holders: int
    in_debt: int
    owed: int
    expiring: LiabilityExpiring
    days: int
    earned: int
    redeemed: int
    expired: int
    reversed: int
    expire_after_years: int


class RedemptionOut(BaseModel):
    id: int
    at: dt.datetime
    customer_id: int
    customer: str | None
    reward: str
    cost: int


class RedemptionsOut(BaseModel):
    items: list[RedemptionOut]


@router.get("/customers/{customer_id}/points", response_model=PointsOut)
def customer_points(request: Request, customer_id: int = CustomerId,
                    session: Session = Depends(get_session, scope="function"),
                    principal: Principal = Depends(require(READ))) -> dict[str, Any]:
    """The balance, what expires at the next cutoff and when, and the latest entries."""
    cid = _live_customer(session, customer_id)
    out = service.summary(session, cid, limit=50, timezone=_tz(request))
    mask = _masker(principal)
    for row in out["history"]:
        row["reason"] = mask.text(row["reason"]) if row["reason"] else None
    return out


@router.post("/customers/{customer_id}/points/awards", response_model=AwardOut,
             responses=_CONFLICT)
def award(body: AwardIn, customer_id: int = CustomerId,
          session: Session = Depends(get_session, scope="function"),
          _: Principal = Depends(require(WRITE))) -> dict[str, Any]:
    """Award (or, negative, deduct) points once per ``key`` (source ``manual``); a deduction
    beyond the balance answers 409."""
    cid = _live_customer(session, customer_id)
    entry = service.add_entry(session, cid, body.amount, source="manual", key=body.key,
                              reason=body.reason)
    return {"customer_id": cid, "entry_id": entry.id, "amount": entry.amount,
            "created": entry.created, "balance": service.balance(session, cid)}


@router.post("/customers/{customer_id}/points/check-ins", response_model=CheckInOut,
             responses=error_responses(409, s409="check-ins earn nothing here "
                                                 "(checkin_off: SIYU_POINTS_CHECKIN is 0)"))
def check_in(request: Request, customer_id: int = CustomerId,
             session: Session = Depends(get_session, scope="function"),
             _: Principal = Depends(require(WRITE))) -> dict[str, Any]:
    """The customer's daily check-in (签到): ``SIYU_POINTS_CHECKIN`` points once per day in
    the brand's time zone; a second one the same day answers ``created: false`` and writes
    nothing."""
    from siyu.points import earn

    cid = _live_customer(session, customer_id)
    done = earn.check_in(session, cid, timezone=_tz(request))
    return {"customer_id": cid, "day": done.day, "points": done.points,
            "created": done.created, "balance": done.balance}


@router.post("/customers/{customer_id}/points/redemptions", response_model=RedeemOut,
             responses=_CONFLICT)
def redeem(body: RedeemIn, customer_id: int = CustomerId,
           session: Session = Depends(get_session, scope="function"),
           _: Principal = Depends(require(WRITE))) -> dict[str, Any]:
    """Redeem a reward once per ``key``: all or nothing (409 when the balance is short or
    the stock is empty)."""
    if (body.reward_id is None) == (body.reward is None):
        raise InvalidInput("奖品：请给出奖品编号（reward_id）或名称（reward）之一",
                           details=[{"field": "reward", "reason": "give exactly one of "
                                                                 "reward_id and reward"}])
    cid = _live_customer(session, customer_id)
    result = service.redeem(session, cid, body.reward, key=body.key, reward_id=body.reward_id)
    return {"customer_id": cid, "redemption_id": result.redemption_id,
            "reward": result.reward, "cost": result.cost, "balance": result.balance,
            "created": result.created}


@router.get("/points/rewards", response_model=RewardsOut)
def list_rewards(session: Session = Depends(get_session, scope="function"),
                 _: Principal = Depends(require(READ))) -> dict[str, Any]:
    """The rewards catalogue, cheapest first."""
    return {"items": service.rewards(session)}


@router.post("/points/rewards", response_model=RewardOut)
def save_reward(body: RewardIn, session: Session = Depends(get_session, scope="function"),
                _: Principal = Depends(require(WRITE))) -> dict[str, Any]:
    """Put a reward in the catalogue, or set the price and stock of the one so named."""
    from siyu.points.models import Reward

    rid = service.add_reward(session, body.name, body.cost, stock=body.stock)
    row = session.get(Reward, rid)
    return service.reward_dict(row)


@router.patch("/points/rewards/{reward_id}", response_model=RewardOut)
def update_reward(body: RewardPatch, reward_id: int = RewardId,
                  session: Session = Depends(get_session, scope="function"),
                  _: Principal = Depends(require(WRITE))) -> dict[str, Any]:
    """Change a reward's price, stock (null: unlimited) or whether it can be redeemed."""
    kwargs: dict[str, Any] = {"cost": body.cost, "active": body.active}
    if "stock" in body.model_fields_set:
        kwargs["stock"] = body.stock
    return service.update_reward(session, reward_id, **kwargs)


@router.get("/points/redemptions", response_model=RedemptionsOut)
def list_redemptions(session: Session = Depends(get_session, scope="function"),
                     _: Principal = Depends(require(READ))) -> dict[str, Any]:
    """The latest 50 redemptions, newest first."""
    return {"items": service.recent_redemptions(session, limit=50)}


@router.get("/points/liability", response_model=LiabilityOut)
def liability(request: Request, session: Session = Depends(get_session, scope="function"),
              _: Principal = Depends(require("analytics.read"))) -> dict[str, Any]:
    """Points outstanding and their value, what expires next, the last 30 days."""
    from siyu.points import expiry

    return expiry.liability(session, timezone=_tz(request))
