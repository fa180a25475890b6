"""Award, spend and read points. Functions take the caller's session and never commit.

The ledger is append-only: a correction is a new entry with the opposite amount. Every
entry names its ``source`` (``playbook``, ``order``, ``opening``, ...) and a ``key`` unique
within it, so :func:`add_entry` is idempotent: calling it again with the same source and key
returns the first entry and changes nothing. The balance is the sum of the entries.
Before the ledger, brands imported a running figure as ``attributes["points"]``; migration
0010 opened the ledger with one ``opening`` entry per such customer (key: the customer id).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.points.errors import InsufficientPoints, InvalidEntry
from siyu.points.models import PointsEntry

MAX_AMOUNT = 10_000_000


@dataclass(frozen=True)
class Entry:
    id: int
    customer_id: int
    amount: int
    source: str
    key: str
    reason: str | None
    at: dt.datetime
    created: bool


def _validate(amount: int, source: str, key: str) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise InvalidEntry("amount must be a non-zero whole number",
                           details=[{"field": "amount", "reason": "non-zero integer"}])
    if abs(amount) > MAX_AMOUNT:
        raise InvalidEntry(f"amount must be within ±{MAX_AMOUNT}",
                           details=[{"field": "amount", "reason": "too large"}])
    for field, value, size in (("source", source, 40), ("key", key, 200)):
        if not value or len(value) > size:
            raise InvalidEntry(f"{field} must be 1 to {size} characters",
                               details=[{"field": field, "reason": "length"}])


def add_entry(session: Session, customer_id: int, amount: int, *, source: str, key: str,
              reason: str | None = None, at: dt.datetime | None = None,
              allow_negative_balance: bool = False) -> Entry:
    """Append ``amount`` points for the customer once per (``source``, ``key``).

    A spend (negative amount) that would take the balance below zero raises
    :class:`InsufficientPoints` unless ``allow_negative_balance``. Returns the entry, with
    ``created`` false when the key was already there.
    """
    _validate(amount, source, key)
    existing = session.scalars(select(PointsEntry).where(
        PointsEntry.source == source, PointsEntry.key == key)).first()
    if existing is not None:
        return _entry(existing, created=False)
    if amount < 0 and not allow_negative_balance and balance(session, customer_id) + amount < 0:
        raise InsufficientPoints(f"customer {customer_id} has fewer than {-amount} points")
    values = {"customer_id": customer_id, "amount": amount, "source": source, "key": key,
              "reason": (reason or None) and reason[:200], "at": at or utcnow(),
              "created_at": utcnow()}
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert(PointsEntry) if dialect == "postgresql" else sqlite_insert(PointsEntry)
            ).values(values).on_conflict_do_nothing(index_elements=["source", "key"])
    inserted = session.execute(stmt).rowcount  # type: ignore[attr-defined]
    row = session.scalars(select(PointsEntry).where(
        PointsEntry.source == source, PointsEntry.key == key)).one()
    return _entry(row, created=bool(inserted))


def _entry(row: PointsEntry, *, created: bool) -> Entry:
    return Entry(row.id, row.customer_id, row.amount, row.source, row.key, row.reason, row.at,
                 created)


def balance(session: Session, customer_id: int) -> int:
    """The customer's points: the sum of their entries (0 without any)."""
    return int(session.scalar(select(func.coalesce(func.sum(PointsEntry.amount), 0))
                              .where(PointsEntry.customer_id == customer_id)) or 0)


def balances(session: Session, customer_ids: list[int]) -> dict[int, int]:
    """:func:`balance` for many customers in one query per 500 ids."""
    out: dict[int, int] = {}
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start:start + 500]
        rows = session.execute(select(PointsEntry.customer_id, func.sum(PointsEntry.amount))
                               .where(PointsEntry.customer_id.in_(chunk))
                               .group_by(PointsEntry.customer_id))
        out.update({int(c): int(s) for c, s in rows})
    return out


def has_entries(session: Session, customer_id: int) -> bool:
    return session.scalar(select(PointsEntry.id).where(
        PointsEntry.customer_id == customer_id).limit(1)) is not None


def entries(session: Session, customer_id: int, *, limit: int = 50) -> list[Entry]:
    """The customer's latest entries, newest first."""
    rows = session.scalars(select(PointsEntry).where(PointsEntry.customer_id == customer_id)
                           .order_by(PointsEntry.at.desc(), PointsEntry.id.desc())
                           .limit(limit))
    return [_entry(r, created=False) for r in rows]


# -- rewards and redemption ---------------------------------------------------------------


@dataclass(frozen=True)
class RedeemResult:
    redemption_id: int
    reward: str
    cost: int
    balance: int
    created: bool


def add_reward(session: Session, name: str, cost: int, *, stock: int | None = None) -> int:
    """Put a reward in the catalogue (or update its price and stock by name)."""
    from siyu.points.models import Reward

    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise InvalidEntry("a reward's name is 1 to 100 characters",
                           details=[{"field": "name", "reason": "length"}])
    if not isinstance(cost, int) or isinstance(cost, bool) or not 1 <= cost <= MAX_AMOUNT:
        raise InvalidEntry(f"a reward costs 1 to {MAX_AMOUNT} points",
                           details=[{"field": "cost", "reason": "range"}])
    if stock is not None and (not isinstance(stock, int) or stock < 0):
        raise InvalidEntry("stock is a whole number ≥ 0, or empty for unlimited",
                           details=[{"field": "stock", "reason": "range"}])
    row = session.scalars(select(Reward).where(Reward.name == name)).first()
    if row is None:
        row = Reward(name=name, cost=cost, stock=stock, active=True)
        session.add(row)
    else:
        row.cost, row.stock, row.active = cost, stock, True
    session.flush()
    return row.id


def rewards(session: Session) -> list[dict[str, object]]:
    from siyu.points.models import Reward

    return [{"id": r.id, "name": r.name, "cost": r.cost, "stock": r.stock, "active": r.active}
            for r in session.scalars(select(Reward).order_by(Reward.cost, Reward.id))]


def redeem(session: Session, customer_id: int, reward_name: str, *, key: str,
           at: dt.datetime | None = None) -> RedeemResult:
    """Spend the reward's price and take one from its stock, once per ``key``: all of it
    or, when the balance is short (:class:`InsufficientPoints`), the reward is unknown or
    out of stock (:class:`OutOfStock`), nothing at all. The stock is taken by a conditional
    update, so two redemptions of the last one never both succeed."""
    from sqlalchemy import update

    from siyu.points.errors import OutOfStock, RewardNotFound
    from siyu.points.models import Redemption, Reward

    _validate(1, "redeem", key)
    done = session.scalars(select(Redemption).where(Redemption.key == key)).first()
    if done is not None:
        reward = session.get(Reward, done.reward_id)
        return RedeemResult(done.id, reward.name if reward else "", reward.cost if reward
                            else 0, balance(session, customer_id), False)
    reward = session.scalars(select(Reward).where(Reward.name == (reward_name or "").strip(),
                                                  Reward.active.is_(True))).first()
    if reward is None:
        raise RewardNotFound(f"no reward named {reward_name!r}",
                             details=[{"field": "reward", "reason": "not in the catalogue"}])
    with session.begin_nested():
        if reward.stock is not None:
            taken = session.execute(update(Reward).where(Reward.id == reward.id,
                                                         Reward.stock > 0)
                                    .values(stock=Reward.stock - 1))
            if not taken.rowcount:  # type: ignore[attr-defined]
                raise OutOfStock(f"{reward.name} is out of stock",
                                 details=[{"field": "reward", "reason": "out of stock"}])
        entry = add_entry(session, customer_id, -reward.cost, source="redeem", key=key,
                          reason=f"兑换 {reward.name}", at=at)
        row = Redemption(reward_id=reward.id, customer_id=customer_id, entry_id=entry.id,
                         key=key, at=at or utcnow())
        session.add(row)
        session.flush()
    session.refresh(reward)
    return RedeemResult(row.id, reward.name, reward.cost, balance(session, customer_id), True)


def reverse_order_points(session: Session, customer_id: int, order_id: str, *,
                         at: dt.datetime | None = None) -> Entry | None:
    """An order refunded: take back what it earned (source ``order``, key the order id),
    once. Points already spent may take the balance below zero; redemptions are then
    refused until it recovers."""
    earned = session.scalars(select(PointsEntry).where(
        PointsEntry.source == "order", PointsEntry.key == order_id)).first()
    if earned is None or earned.amount <= 0:
        return None
    return add_entry(session, customer_id, -earned.amount, source="order_refund",
                     key=order_id, reason="订单退款，收回积分", allow_negative_balance=True,
                     at=at)


def earn_for_order(session: Session, customer_id: int, order_id: str, amount: float,
                   *, per_yuan: float, at: dt.datetime | None = None) -> Entry | None:
    """A paid order earns ``per_yuan`` points per yuan (rounded down), once per order."""
    points = int(amount * per_yuan)
    if points <= 0:
        return None
    return add_entry(session, customer_id, points, source="order", key=order_id,
                     reason="购物积分", at=at)
