"""Rewards and redemption, points earned by purchases and taken back on refunds, and the
ledger's invariants over random sequences of earn, redeem, expire and refund (Hypothesis)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.events.service import ingest
from siyu.points import service as points
from siyu.points.config import get_points_settings
from siyu.points.errors import InsufficientPoints, InvalidEntry, OutOfStock, RewardNotFound
from siyu.points.models import PointsEntry, Redemption, Reward
from tests.points.test_ledger import customer


def counts(db: Session) -> tuple[int, int]:
    return (int(db.scalar(select(func.count()).select_from(PointsEntry)) or 0),
            int(db.scalar(select(func.count()).select_from(Redemption)) or 0))


def stock(db: Session, name: str) -> int | None:
    return db.scalar(select(Reward.stock).where(Reward.name == name))


def test_a_redemption_takes_points_and_stock_once(db: Session) -> None:
    cid = customer(db)
    points.add_reward(db, "50 元优惠券", 500, stock=2)
    points.add_reward(db, "试用装", 100)  # unlimited
    points.add_entry(db, cid, 1200, source="manual", key="m1")
    first = points.redeem(db, cid, "50 元优惠券", key="r1")
    assert (first.created, first.cost, first.balance) == (True, 500, 700)
    again = points.redeem(db, cid, "50 元优惠券", key="r1")  # a retried request
    assert not again.created and again.redemption_id == first.redemption_id
    assert again.balance == 700 and stock(db, "50 元优惠券") == 1
    assert points.redeem(db, cid, "试用装", key="r2").balance == 600
    assert stock(db, "试用装") is None
    assert [e.reason for e in points.entries(db, cid)][:2] == ["兑换 试用装", "兑换 50 元优惠券"]


def test_out_of_stock_short_balance_or_unknown_reward_writes_nothing(db: Session) -> None:
    rich, poor = customer(db), customer(db)
    points.add_reward(db, "保温杯", 300, stock=1)
    points.add_entry(db, rich, 1000, source="manual", key="m1")
    points.add_entry(db, poor, 100, source="manual", key="m2")
    before = counts(db)
    with pytest.raises(InsufficientPoints):
        points.redeem(db, poor, "保温杯", key="p1")
    assert counts(db) == before and stock(db, "保温杯") == 1  # the stock came back
    points.redeem(db, rich, "保温杯", key="k1")
    after = counts(db)
    with pytest.raises(OutOfStock) as out:
        points.redeem(db, rich, "保温杯", key="k2")
    assert out.value.details == [{"field": "reward", "reason": "out of stock"}]
    with pytest.raises(RewardNotFound):
        points.redeem(db, rich, "不存在的礼品", key="k3")
    assert counts(db) == after and points.balance(db, rich) == 700


@pytest.mark.parametrize(("name", "cost", "stock_", "field"), [
    ("", 10, None, "name"), ("券", 0, None, "cost"), ("券", 10, -1, "stock")])
def test_a_bad_reward_names_the_field(db: Session, name: str, cost: int, stock_: int | None,
                                      field: str) -> None:
    with pytest.raises(InvalidEntry) as bad:
        points.add_reward(db, name, cost, stock=stock_)
    assert bad.value.details[0]["field"] == field


@pytest.fixture
def per_yuan(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SIYU_POINTS_PER_YUAN", "1")
    get_points_settings.cache_clear()
    yield
    get_points_settings.cache_clear()


def _order(db: Session, settings: Settings, status: str, version: dt.datetime,
           *, source: str = "api") -> None:
    now = dt.datetime.now(dt.UTC)
    result = ingest(db, "orders", [{
        "id": "SO-1", "customer_id": "HY-1", "ts": (now - dt.timedelta(hours=2)).isoformat(),
        "updated_at": version.isoformat(), "amount": 199.9, "status": status}],
        settings=settings, source=source)
    assert not result.rejected, result.rejected


def test_a_purchase_earns_once_and_a_refund_takes_it_back(
        db: Session, settings: Settings, per_yuan: None) -> None:
    from siyu.customers.service import upsert_customers

    cid = upsert_customers(db, [{"id": "HY-1", "name": "李娜"}], settings=settings).customer_ids[0]
    now = dt.datetime.now(dt.UTC)
    _order(db, settings, "paid", now - dt.timedelta(hours=2))
    _order(db, settings, "paid", now - dt.timedelta(hours=2))  # the same order, retried
    assert points.balance(db, cid) == 199
    points.add_reward(db, "试用装", 150)
    points.redeem(db, cid, "试用装", key="r1")  # spent before the refund
    _order(db, settings, "refunded", now - dt.timedelta(hours=1))
    assert points.balance(db, cid) == 199 - 150 - 199  # below zero, and it says so
    with pytest.raises(InsufficientPoints):
        points.redeem(db, cid, "试用装", key="r2")
    _order(db, settings, "refunded", now - dt.timedelta(minutes=30))  # nothing twice
    assert points.balance(db, cid) == -150


def test_orders_of_a_file_import_earn_nothing(
        db: Session, settings: Settings, per_yuan: None) -> None:
    from siyu.customers.service import upsert_customers

    cid = upsert_customers(db, [{"id": "HY-1", "name": "李娜"}], settings=settings).customer_ids[0]
    _order(db, settings, "completed", dt.datetime.now(dt.UTC), source="import")
    assert points.balance(db, cid) == 0


ops = st.lists(st.tuples(st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 500)),
    st.tuples(st.just("redeem"), st.sampled_from(["小礼品", "大礼品", "限量款"])),
    st.tuples(st.just("refund"), st.integers(0, 9)),
    st.tuples(st.just("expire"), st.just(0)),
), st.integers(0, 400)), max_size=25)  # (operation, days since the previous one)

CST = dt.timezone(dt.timedelta(hours=8))


def fifo_unspent(rows: list[PointsEntry], year: int, cut: dt.datetime) -> int:
    """What is left at ``cut`` of the points earned up to ``year``, lot by lot: each debit
    takes the oldest lot first; a debit beyond every lot is a debt the next points fill.
    (An independent model of what siyu.points.expiry computes in aggregate.)"""
    lots: list[list[int]] = []  # [year earned, points left]
    debt = 0
    for e in sorted(rows, key=lambda r: (r.at, r.id)):
        if not (e.at < cut or (e.source == "expiry" and e.at <= cut)):
            continue
        if e.amount > 0:
            fill = min(debt, e.amount)
            debt -= fill
            if e.amount > fill:
                lots.append([e.at.astimezone(CST).year, e.amount - fill])
        else:
            need = -e.amount
            while need and lots:
                take = min(need, lots[0][1])
                lots[0][1] -= take
                need -= take
                if not lots[0][1]:
                    lots.pop(0)
            debt += need
    return sum(left for y, left in lots if y <= year)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
@example([(("earn", 300), 0), (("redeem", "小礼品"), 30), (("earn", 120), 400),
          (("refund", 1), 10), (("expire", 0), 400), (("earn", 80), 5),
          (("expire", 0), 400), (("redeem", "限量款"), 1), (("expire", 0), 0)])
@example([(("earn", 100), 0), (("redeem", "限量款"), 1), (("refund", 0), 1),
          (("earn", 30), 200), (("expire", 0), 900)])  # a debt: nothing expires
def test_the_ledger_balances_for_any_sequence(
        db: Session, sequence: list[tuple[tuple[str, object], int]]) -> None:
    """Whatever happens, the balance is the sum of the entries; a redemption never takes it
    below zero (only a refund of points already spent may); a refused redemption — short
    balance or out of stock — writes nothing; an expiry (points earned in year Y expire at
    the end of Y+1, oldest points spent first) takes exactly what a lot-by-lot FIFO model
    says is left of the expired years, never more, never below zero, leaves a negative
    balance as it is, and a re-run writes nothing."""
    from siyu.points import expiry

    savepoint = db.begin_nested()
    try:
        cid = customer(db)
        for name, cost, left in (("小礼品", 50, None), ("大礼品", 400, 3), ("限量款", 100, 1)):
            points.add_reward(db, name, cost, stock=left)
        earned: list[str] = []
        now = dt.datetime(2024, 1, 1, 9, tzinfo=CST)
        for i, ((op, arg), days) in enumerate(sequence):
            now += dt.timedelta(days=days)
            before_balance, before_counts = points.balance(db, cid), counts(db)
            if op == "earn":
                points.add_entry(db, cid, int(arg), source="order", key=f"o{i}", at=now)  # type: ignore[call-overload]
                earned.append(f"o{i}")
            elif op == "redeem":
                left_before = stock(db, str(arg))
                try:
                    result = points.redeem(db, cid, str(arg), key=f"r{i}", at=now)
                except (InsufficientPoints, OutOfStock):
                    assert counts(db) == before_counts
                    assert stock(db, str(arg)) == left_before
                else:
                    assert before_balance >= result.cost and result.balance >= 0
                    assert result.balance == before_balance - result.cost
            elif op == "expire":
                done = expiry.expire(db, now=now, years=1, timezone="Asia/Shanghai")
                after = points.balance(db, cid)
                assert after == before_balance - done.points
                assert after >= 0 if before_balance >= 0 else after == before_balance
                rows = list(db.scalars(select(PointsEntry).where(
                    PointsEntry.customer_id == cid)))
                event("an expiry written" if done.entries else "nothing to expire")
                running = before_balance
                for year, amount in sorted(done.by_year.items()):
                    cut = expiry.cutoff(year, 1, "Asia/Shanghai")
                    others = [r for r in rows if r.key != f"{cid}:{year}"
                              or r.source != "expiry"]
                    others = [r for r in others if not (
                        r.source == "expiry" and int(r.key.split(":")[1]) > year
                        and int(r.key.split(":")[1]) in done.by_year)]
                    unspent = fifo_unspent(others, year, cut)
                    assert 0 < amount <= unspent
                    assert amount == min(unspent, running)
                    running -= amount
                assert expiry.expire(db, now=now, years=1,
                                     timezone="Asia/Shanghai").entries == 0
                assert counts(db)[0] == before_counts[0] + done.entries
            elif earned:
                points.reverse_order_points(db, cid, earned[int(arg) % len(earned)], at=now)  # type: ignore[call-overload]
            total = int(db.scalar(select(func.coalesce(func.sum(PointsEntry.amount), 0))
                                  .where(PointsEntry.customer_id == cid)) or 0)
            assert points.balance(db, cid) == total
            for name in ("大礼品", "限量款"):
                assert (stock(db, name) or 0) >= 0
    finally:
        savepoint.rollback()


def test_the_cli_adds_rewards_and_redeems_once(
        monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: Any) -> None:
    import json

    from tests.cli_helpers import run_cli

    with sessions() as s:
        cid = customer(s)
        points.add_entry(s, cid, 800, source="manual", key="m1")
        s.commit()
    added = run_cli(monkeypatch, database_url, "points", "reward", "50 元优惠券", "500",
                    "--stock", "1")
    assert added.exit_code == 0, added.output
    listed = json.loads(run_cli(monkeypatch, database_url, "points", "rewards",
                                "--json").stdout)
    assert listed == [{"id": listed[0]["id"], "name": "50 元优惠券", "cost": 500, "stock": 1,
                       "active": True}]
    first = run_cli(monkeypatch, database_url, "points", "redeem", str(cid), "50 元优惠券",
                    "--key", "req-1", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["balance"] == 300
    again = run_cli(monkeypatch, database_url, "points", "redeem", str(cid), "50 元优惠券",
                    "--key", "req-1")
    assert again.exit_code == 0 and "已兑换过" in again.stdout
    sold_out = run_cli(monkeypatch, database_url, "points", "redeem", str(cid), "50 元优惠券",
                       "--key", "req-2")
    assert sold_out.exit_code != 0 and "已兑完" in sold_out.stderr
    bad = run_cli(monkeypatch, database_url, "points", "reward", "券", "0")
    assert bad.exit_code != 0 and "cost" in bad.stderr
