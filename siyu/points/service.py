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
