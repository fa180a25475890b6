"""The points ledger: idempotent entries, balance, merges, the opening migration."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from siyu import migrate
from siyu.customers import identity
from siyu.customers.models import Customer
from siyu.db import make_engine
from siyu.points import service as points
from siyu.points.errors import InsufficientPoints, InvalidEntry


def customer(db: Session, **attributes: object) -> int:
    row = Customer(name="张三", attributes=dict(attributes))
    db.add(row)
    db.flush()
    return row.id


def test_same_source_and_key_counts_once(db: Session) -> None:
    cid = customer(db)
    first = points.add_entry(db, cid, 50, source="playbook", key="run-1:step-3", reason="邀请好友")
    again = points.add_entry(db, cid, 50, source="playbook", key="run-1:step-3", reason="邀请好友")
    other = points.add_entry(db, cid, 20, source="order", key="run-1:step-3")
    assert first.created and not again.created and other.created
    assert again.id == first.id
    assert points.balance(db, cid) == 70
    assert [e.amount for e in points.entries(db, cid)] == [20, 50]


def test_spending_more_than_the_balance_is_refused_and_stores_nothing(db: Session) -> None:
    cid = customer(db)
    points.add_entry(db, cid, 30, source="order", key="o1")
    with pytest.raises(InsufficientPoints):
        points.add_entry(db, cid, -40, source="redeem", key="r1")
    assert points.balance(db, cid) == 30
    points.add_entry(db, cid, -30, source="redeem", key="r2")
    assert points.balance(db, cid) == 0


@pytest.mark.parametrize("amount,source,key", [(0, "order", "k"), (1, "", "k"),
                                               (1, "order", ""), (10**9, "order", "k")])
def test_invalid_entries_are_refused(db: Session, amount: int, source: str, key: str) -> None:
    cid = customer(db)
    with pytest.raises(InvalidEntry):
        points.add_entry(db, cid, amount, source=source, key=key)
    assert points.balance(db, cid) == 0


def test_entries_move_with_a_merge_and_back_on_undo(db: Session) -> None:
    keep, drop = customer(db), customer(db)
    points.add_entry(db, keep, 100, source="order", key="a")
    points.add_entry(db, drop, 40, source="order", key="b")
    merge = identity.merge_customers(db, keep, drop, reason="test", actor="test")
    assert points.balance(db, keep) == 140 and points.balance(db, drop) == 0
    identity.undo_merge(db, merge.id, actor="test")
    assert points.balance(db, keep) == 100 and points.balance(db, drop) == 40


def test_migration_opens_the_ledger_from_imported_points(tmp_path: object) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path}/m.db"
    engine = make_engine(url)
    cfg = migrate.alembic_config(url)
    command.upgrade(cfg, "0009")
    with engine.begin() as conn:
        for cid, attrs in ((1, '{"points": 8620}'), (2, '{"city": "上海"}'),
                           (3, '{"points": "many"}')):
            conn.execute(text("INSERT INTO customers (id, attributes, status, created_at, "
                              "updated_at) VALUES (:i, :a, 'active', CURRENT_TIMESTAMP, "
                              "CURRENT_TIMESTAMP)"), {"i": cid, "a": attrs})
    command.upgrade(cfg, "0010")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT customer_id, amount, source, key FROM points_entries"
                                 )).all()
    assert [tuple(r) for r in rows] == [(1, 8620, "opening", "1")]
    engine.dispose()


def test_a_customer_imported_with_points_keeps_them_when_the_ledger_takes_over(
        db: Session) -> None:
    """Imported after migration 0010 with a running figure: the first entry opens the ledger
    from it, so an award adds to 300 (not replaces it) and a spend of 200 is allowed."""
    imported = customer(db, points=300)
    plain = customer(db)
    odd = customer(db, points="many")
    award = points.add_entry(db, imported, 50, source="playbook", key="r1:s1")
    assert points.balance(db, imported) == 350
    assert [(e.source, e.amount) for e in points.entries(db, imported)][-1] == ("opening", 300)
    points.add_entry(db, imported, -200, source="redeem", key="x1")
    assert points.balance(db, imported) == 150
    # opened once: a later entry (or the same one again) opens nothing more
    assert not points.add_entry(db, imported, 50, source="playbook", key="r1:s1").created
    points.add_entry(db, imported, 10, source="order", key="o-1")
    assert sum(e.source == "opening" for e in points.entries(db, imported)) == 1
    assert award.created and points.balance(db, imported) == 160
    for cid in (plain, odd):
        points.add_entry(db, cid, 5, source="order", key=f"o-{cid}")
        assert [e.source for e in points.entries(db, cid)] == ["order"]
    with pytest.raises(InsufficientPoints):
        points.add_entry(db, plain, -6, source="redeem", key="x2")
    assert points.open_balances(db) == 0  # every imported figure is already opened
