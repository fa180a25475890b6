"""Points expiry and the liability report.

With ``SIYU_POINTS_EXPIRE_AFTER_YEARS`` = N > 0, points earned in year Y (the brand's time
zone) expire at the cutoff: the start of year Y+N+1, i.e. the end of year Y+N (N = 1: "the
end of the following year"). Spending and reversals take the oldest points first (FIFO), so
what expires at a cutoff is what is left of everything earned up to year Y after every
debit made before the cutoff — earlier expiries included:

    expired(Y) = min(max(0, earned(≤ Y) − debits(< cutoff)), balance)

No lot table is needed: with FIFO, the debits consume the oldest lots first whatever their
order, and a debt (a refund after spending) is filled by the next points earned, which is
the same as those points consumed first. The cap by the current balance means an expiry
never takes a balance below zero (also when the job runs late, after a redemption made past
the cutoff); a negative balance is left as it is.

An expiry is one ledger entry per customer and year (source ``expiry``, key
``<customer id>:<year>``, at the cutoff), so a re-run writes nothing. :func:`expire` works
year by year with one ``INSERT ... SELECT ... GROUP BY`` statement each (set-based).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.db import UTCDateTime, utcnow
from siyu.points.models import PointsEntry

EXPIRY_SOURCE = "expiry"


def _defaults(years: int | None, timezone: str | None) -> tuple[int, str]:
    if years is None:
        from siyu.points.config import get_points_settings

        years = get_points_settings().points_expire_after_years
    if timezone is None:
        from siyu.config import get_settings

        timezone = get_settings().timezone
    return years, timezone


def year_start(year: int, timezone: str) -> dt.datetime:
    """The first moment of ``year`` in the brand's time zone, in UTC."""
    return dt.datetime(year, 1, 1, tzinfo=ZoneInfo(timezone)).astimezone(dt.UTC)


def cutoff(year: int, years: int, timezone: str) -> dt.datetime:
    """When points earned in ``year`` expire: the start of year ``year + years + 1``."""
    return year_start(year + years + 1, timezone)


def _remaining(earned_before: dt.datetime, debits_until: dt.datetime) -> tuple[Any, ...]:
    """Per customer: points earned before ``earned_before``, debits before ``debits_until``
    (expiries at it included: they are its own), and the balance."""
    earned = func.coalesce(func.sum(case(
        (and_(PointsEntry.amount > 0, PointsEntry.at < earned_before), PointsEntry.amount),
        else_=0)), 0)
    debited = func.coalesce(func.sum(case(
        (and_(PointsEntry.amount < 0, or_(
            PointsEntry.at < debits_until,
            and_(PointsEntry.source == EXPIRY_SOURCE, PointsEntry.at <= debits_until))),
         -PointsEntry.amount), else_=0)), 0)
    total = func.coalesce(func.sum(PointsEntry.amount), 0)
    return earned, debited, total


def _left(earned: int, debited: int, total: int) -> int:
    return max(0, min(int(earned) - int(debited), int(total)))


@dataclass
class ExpiryResult:
    years: list[int] = field(default_factory=list)
    entries: int = 0
    points: int = 0
    by_year: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"years": self.years, "entries": self.entries, "points": self.points,
                "by_year": {str(k): v for k, v in self.by_year.items()}}


def expire(session: Session, *, now: dt.datetime | None = None, years: int | None = None,
           timezone: str | None = None) -> ExpiryResult:
    """Write the expiry entries of every cutoff up to ``now`` not yet written (oldest year
    first, as each year's expiry counts as a debit for the next). Idempotent."""
    years, timezone = _defaults(years, timezone)
    moment = now or utcnow()
    result = ExpiryResult()
    if years <= 0:
        return result
    last_year = moment.astimezone(ZoneInfo(timezone)).year - years - 1
    first_at = session.scalar(select(func.min(PointsEntry.at)).where(PointsEntry.amount > 0))
    if first_at is None:
        return result
    first_year = first_at.astimezone(ZoneInfo(timezone)).year
    dialect = session.get_bind().dialect.name
    for year in range(first_year, last_year + 1):
        cut = cutoff(year, years, timezone)
        earned, debited, total = _remaining(year_start(year + 1, timezone), cut)
        left = case((earned - debited < total, earned - debited), else_=total)
        owner = PointsEntry.customer_id
        due = (select(owner, literal(0) - left, literal(EXPIRY_SOURCE),
                      cast(owner, String) + literal(f":{year}"),
                      literal(f"{year} 年获得的积分到期"),
                      literal(cut, UTCDateTime()), literal(utcnow(), UTCDateTime()))
               .group_by(owner).having(and_(earned > debited, total > 0)))
        result.years.append(year)
        stmt = (pg_insert(PointsEntry) if dialect == "postgresql"
                else sqlite_insert(PointsEntry)).from_select(
            ["customer_id", "amount", "source", "key", "reason", "at", "created_at"], due
        ).on_conflict_do_nothing(index_elements=["source", "key"]).returning(
            PointsEntry.amount)
        written = [int(a) for a in session.scalars(stmt)]
        result.entries += len(written)
        result.points -= sum(written)
        if written:
            result.by_year[year] = -sum(written)
    return result


@dataclass(frozen=True)
class Expiring:
    points: int
    at: dt.datetime | None  # the cutoff (UTC)
    last_day: dt.date | None  # the last day the points can be used, brand time
    year: int | None  # points earned up to this year expire then

    def to_dict(self) -> dict[str, Any]:
        return {"points": self.points, "at": self.at.isoformat() if self.at else None,
                "last_day": self.last_day.isoformat() if self.last_day else None,
                "earned_up_to_year": self.year}


def next_cutoff(now: dt.datetime, years: int, timezone: str
                ) -> tuple[int, dt.datetime, dt.date] | None:
    """The next cutoff after ``now``: the year whose points then expire, the cutoff and the
    last day they can be used; None when points never expire."""
    if years <= 0:
        return None
    local_year = now.astimezone(ZoneInfo(timezone)).year
    at = year_start(local_year + 1, timezone)
    return local_year - years, at, dt.date(local_year, 12, 31)


def _expiring_query(now: dt.datetime, years: int, timezone: str) -> Any:
    nxt = next_cutoff(now, years, timezone)
    assert nxt is not None
    earned, debited, total = _remaining(year_start(nxt[0] + 1, timezone), nxt[1])
    return select(PointsEntry.customer_id, earned, debited, total), (earned, debited, total)


def expiring(session: Session, customer_id: int, now: dt.datetime | None = None, *,
             years: int | None = None, timezone: str | None = None) -> Expiring:
    """How many of the customer's points expire at the next cutoff, and when: what is left,
    after every debit so far, of the points earned up to the year that then expires."""
    years, timezone = _defaults(years, timezone)
    moment = now or utcnow()
    nxt = next_cutoff(moment, years, timezone)
    if nxt is None:
        return Expiring(0, None, None, None)
    query, _ = _expiring_query(moment, years, timezone)
    row = session.execute(query.where(PointsEntry.customer_id == customer_id)
                          .group_by(PointsEntry.customer_id)).first()
    points = _left(row[1], row[2], row[3]) if row is not None else 0
    return Expiring(points, nxt[1], nxt[2], nxt[0])


def liability(session: Session, *, now: dt.datetime | None = None, years: int | None = None,
              timezone: str | None = None, yuan_per_point: float | None = None,
              days: int = 30) -> dict[str, Any]:
    """Points outstanding (the sum of positive balances: a debt does not reduce what is
    owed to the others), their value in yuan, what expires at the next cutoff, how many
    customers hold points (and owe some), and the points earned, redeemed, expired and
    taken back by refunds in the last ``days`` days."""
    years, timezone = _defaults(years, timezone)
    if yuan_per_point is None:
        from siyu.points.config import get_points_settings

        yuan_per_point = get_points_settings().points_yuan_per_point
    moment = now or utcnow()
    per_customer = (select(PointsEntry.customer_id.label("cid"),
                           func.sum(PointsEntry.amount).label("balance"))
                    .group_by(PointsEntry.customer_id).subquery())
    positive = func.sum(case((per_customer.c.balance > 0, per_customer.c.balance), else_=0))
    negative = func.sum(case((per_customer.c.balance < 0, per_customer.c.balance), else_=0))
    holders = func.sum(case((per_customer.c.balance > 0, 1), else_=0))
    in_debt = func.sum(case((per_customer.c.balance < 0, 1), else_=0))
    out, owed, n_holders, n_debt = session.execute(
        select(positive, negative, holders, in_debt)).one()
    outstanding = int(out or 0)

    expiring_points, nxt = 0, next_cutoff(moment, years, timezone)
    if nxt is not None:
        query, (earned, debited, total) = _expiring_query(moment, years, timezone)
        rows = session.execute(query.group_by(PointsEntry.customer_id)
                               .having(and_(earned > debited, total > 0))).all()
        expiring_points = sum(_left(e, d, t) for _, e, d, t in rows)

    since = moment - dt.timedelta(days=days)
    window = and_(PointsEntry.at >= since, PointsEntry.at <= moment)
    earned_w, redeemed_w, expired_w, reversed_w = session.execute(select(
        func.coalesce(func.sum(case((PointsEntry.amount > 0, PointsEntry.amount), else_=0)), 0),
        func.coalesce(func.sum(case((PointsEntry.source == "redeem", -PointsEntry.amount),
                                    else_=0)), 0),
        func.coalesce(func.sum(case((PointsEntry.source == EXPIRY_SOURCE, -PointsEntry.amount),
                                    else_=0)), 0),
        func.coalesce(func.sum(case((PointsEntry.source == "order_refund", -PointsEntry.amount),
                                    else_=0)), 0),
    ).where(window)).one()
    return {
        "outstanding": outstanding,
        "value_yuan": round(outstanding * yuan_per_point, 2),
        "yuan_per_point": yuan_per_point,
        "holders": int(n_holders or 0),
        "in_debt": int(n_debt or 0),
        "owed": -int(owed or 0),
        "expiring": {"points": expiring_points,
                     "value_yuan": round(expiring_points * yuan_per_point, 2),
                     "at": nxt[1].isoformat() if nxt else None,
                     "last_day": nxt[2].isoformat() if nxt else None},
        "days": days,
        "earned": int(earned_w), "redeemed": int(redeemed_w), "expired": int(expired_w),
        "reversed": int(reversed_w),
        "expire_after_years": years,
    }
