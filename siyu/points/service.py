"""Award, spend and read points. Functions take the caller's session and never commit.

The ledger is append-only: a correction is a new entry with the opposite amount. Every
entry names its ``source`` (``playbook``, ``order``, ``opening``, ...) and a ``key`` unique
within it, so :func:`add_entry` is idempotent: calling it again with the same source and key
returns the first entry and changes nothing. The balance is the sum of the entries.
Before the ledger, brands imported a running figure as ``attributes["points"]``; migration
0010 opened the ledger with one ``opening`` entry per such customer (key: the customer id);
a customer imported with such a figure since is opened the same way by their first entry
(:func:`add_entry`), so the imported points are never lost when the ledger takes over.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

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
    if source != OPENING_SOURCE:
        _open_from_attributes(session, customer_id)
    if amount < 0 and not allow_negative_balance:
        have = balance(session, customer_id)
        if have + amount < 0:
            raise InsufficientPoints(short_message(have, -amount),
                                     details=[{"field": "amount", "reason": "insufficient points",
                                               "balance": have, "needed": -amount}])
    values = {"customer_id": customer_id, "amount": amount, "source": source, "key": key,
              "reason": (reason or None) and reason[:200], "at": at or utcnow(),
              "created_at": utcnow()}
    inserted = _insert_ignoring_duplicate(session, values)
    row = session.scalars(select(PointsEntry).where(
        PointsEntry.source == source, PointsEntry.key == key)).one()
    return _entry(row, created=bool(inserted))


def _insert_ignoring_duplicate(session: Session, values: dict[str, Any]) -> int:
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert(PointsEntry) if dialect == "postgresql" else sqlite_insert(PointsEntry)
            ).values(values).on_conflict_do_nothing(index_elements=["source", "key"])
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def _imported_figure(attributes: Any) -> int | None:
    """The whole, non-zero ``attributes["points"]`` a brand imported, else ``None``."""
    value = attributes.get("points") if isinstance(attributes, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) == 0 \
            or abs(int(value)) > MAX_AMOUNT:
        return None
    return int(value)


def _open_from_attributes(session: Session, customer_id: int) -> None:
    """Before a customer's first entry: their imported figure as the ``opening`` entry (what
    migration 0010 and :func:`open_balances` do), so the balance goes on from it. Dated now,
    when the ledger opens for them: how old the imported points are is not known, and a
    backdated first entry must not make them older (and expire sooner)."""
    from siyu.customers.models import Customer

    if has_entries(session, customer_id):
        return
    figure = _imported_figure(session.scalar(select(Customer.attributes).where(
        Customer.id == customer_id)))
    if figure is None:
        return
    _insert_ignoring_duplicate(session, {
        "customer_id": customer_id, "amount": figure, "source": OPENING_SOURCE,
        "key": str(customer_id), "reason": OPENING_REASON, "at": utcnow(), "created_at": utcnow()})


def short_message(have: int, need: int) -> str:
    """Why a spend is refused, in words a customer or an operator can read."""
    if have < 0:
        return (f"积分不足：当前积分为 {have}（退款收回了已使用的积分），"
                f"需要 {need} 积分；积分补足前暂不能兑换")
    return f"积分不足：需要 {need} 积分，当前只有 {have} 积分"


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
        raise InvalidEntry("奖品名称（name）：1 到 100 个字",
                           details=[{"field": "name", "reason": "length"}])
    _check_cost_stock(cost, stock)
    row = session.scalars(select(Reward).where(Reward.name == name)).first()
    if row is None:
        row = Reward(name=name, cost=cost, stock=stock, active=True)
        session.add(row)
    else:
        row.cost, row.stock, row.active = cost, stock, True
    session.flush()
    return row.id


def _check_cost_stock(cost: int, stock: int | None) -> None:
    if not isinstance(cost, int) or isinstance(cost, bool) or not 1 <= cost <= MAX_AMOUNT:
        raise InvalidEntry(f"所需积分（cost）：必须是 1 到 {MAX_AMOUNT} 的整数",
                           details=[{"field": "cost", "reason": "range"}])
    if stock is not None and (not isinstance(stock, int) or isinstance(stock, bool)
                              or not 0 <= stock <= MAX_AMOUNT):
        raise InvalidEntry("库存（stock）：必须是不小于 0 的整数，不填表示不限",
                           details=[{"field": "stock", "reason": "range"}])


_UNCHANGED: object = object()


def update_reward(session: Session, reward_id: int, *, cost: int | None = None,
                  stock: int | object | None = _UNCHANGED, active: bool | None = None
                  ) -> dict[str, object]:
    """Change a reward's price, stock (None: unlimited) or whether it can be redeemed."""
    from siyu.points.errors import RewardNotFound
    from siyu.points.models import Reward

    row = session.get(Reward, reward_id)
    if row is None:
        raise RewardNotFound(f"没有编号为 {reward_id} 的奖品",
                             details=[{"field": "reward_id", "reason": "not in the catalogue"}])
    new_stock = row.stock if stock is _UNCHANGED else stock
    _check_cost_stock(row.cost if cost is None else cost, new_stock)  # type: ignore[arg-type]
    if cost is not None:
        row.cost = cost
    row.stock = new_stock  # type: ignore[assignment]
    if active is not None:
        row.active = active
    session.flush()
    return reward_dict(row)


def reward_dict(r: Any) -> dict[str, object]:
    return {"id": r.id, "name": r.name, "cost": r.cost, "stock": r.stock, "active": r.active}


def rewards(session: Session) -> list[dict[str, object]]:
    from siyu.points.models import Reward

    return [reward_dict(r) for r in session.scalars(select(Reward).order_by(Reward.cost,
                                                                           Reward.id))]


def redeem(session: Session, customer_id: int, reward_name: str | None, *, key: str,
           at: dt.datetime | None = None, reward_id: int | None = None) -> RedeemResult:
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
    which = (Reward.id == reward_id) if reward_id is not None else (
        Reward.name == (reward_name or "").strip())
    reward = session.scalars(select(Reward).where(which, Reward.active.is_(True))).first()
    if reward is None:
        named = f"编号为 {reward_id} 的" if reward_id is not None else f"名为「{reward_name}」的"
        raise RewardNotFound(f"没有{named}可兑换奖品",
                             details=[{"field": "reward_id" if reward_id is not None
                                       else "reward", "reason": "not in the catalogue"}])
    with session.begin_nested():
        if reward.stock is not None:
            taken = session.execute(update(Reward).where(Reward.id == reward.id,
                                                         Reward.stock > 0)
                                    .values(stock=Reward.stock - 1))
            if not taken.rowcount:  # type: ignore[attr-defined]
                raise OutOfStock(f"「{reward.name}」已兑完，库存不足",
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


def recent_redemptions(session: Session, *, limit: int = 20,
                       customer_id: int | None = None) -> list[dict[str, Any]]:
    """The latest redemptions, newest first, with the reward and the customer's name."""
    from siyu.customers.models import Customer
    from siyu.points.models import Redemption, Reward

    query = (select(Redemption.id, Redemption.at, Redemption.customer_id, Customer.name,
                    Reward.name, Reward.cost)
             .join(Reward, Reward.id == Redemption.reward_id)
             .join(Customer, Customer.id == Redemption.customer_id)
             .order_by(Redemption.at.desc(), Redemption.id.desc()).limit(limit))
    if customer_id is not None:
        query = query.where(Redemption.customer_id == customer_id)
    return [{"id": rid, "at": at, "customer_id": cid, "customer": name, "reward": reward,
             "cost": cost} for rid, at, cid, name, reward, cost in session.execute(query)]


def summary(session: Session, customer_id: int, *, now: dt.datetime | None = None,
            limit: int = 10, timezone: str | None = None) -> dict[str, Any]:
    """A customer's points as the 360, the API and the bot show them: the balance, what
    expires at the next cutoff and when, and the latest entries with Chinese labels."""
    from siyu.kit.labels import label
    from siyu.points import expiry

    soon = expiry.expiring(session, customer_id, now, timezone=timezone)
    have = balance(session, customer_id)
    return {
        "customer_id": customer_id, "balance": have, "expiring": soon.to_dict(),
        "blocked": have < 0,
        "history": [{"id": e.id, "at": e.at, "amount": e.amount, "source": e.source,
                     "source_label": label(e.source, "points_source"), "reason": e.reason}
                    for e in entries(session, customer_id, limit=limit)],
    }


OPENING_SOURCE = "opening"
OPENING_REASON = "积分账户开立（导入的积分余额）"


def open_balances(session: Session, *, at: dt.datetime | None = None) -> int:
    """Open the ledger of every customer whose attributes carry a whole, non-zero
    ``points`` figure (the running total a brand imported before the ledger) with one
    ``opening`` entry of that figure at ``at`` — what migration 0010 did for the customers
    stored then (same source and key, the customer id), for customers imported since.
    Customers already opened are skipped; returns how many were opened. Set-based: one
    read of the attributes and one bulk insert, so a demo of 20,000 members opens in
    well under a second."""
    from siyu.customers.models import Customer
    from siyu.db import Base
    from siyu.kit.bulk import bulk_insert

    opened = set(session.scalars(select(PointsEntry.key).where(PointsEntry.source == "opening")))
    moment, created = at or utcnow(), utcnow()
    rows: list[dict[str, Any]] = []
    for customer_id, attributes in session.execute(
            select(Customer.id, Customer.attributes).where(Customer.status == "active")
            .order_by(Customer.id)):
        value = _imported_figure(attributes)
        if value is None or str(customer_id) in opened:
            continue
        rows.append({"customer_id": customer_id, "amount": value, "source": OPENING_SOURCE,
                     "key": str(customer_id), "reason": OPENING_REASON, "at": moment,
                     "created_at": created})
    table = Base.metadata.tables[PointsEntry.__tablename__]
    for start in range(0, len(rows), 5_000):
        bulk_insert(session, table, rows[start:start + 5_000])
    return len(rows)
