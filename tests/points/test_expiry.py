"""Points expiry (FIFO, by year in the brand's time zone), what expires next, the liability
report, the daily job and the CLI."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.points import expiry
from siyu.points import service as points
from siyu.points.models import PointsEntry
from tests.points.test_ledger import customer

CST = dt.timezone(dt.timedelta(hours=8))
TZ = "Asia/Shanghai"


def at(y: int, m: int, d: int, h: int = 12) -> dt.datetime:
    return dt.datetime(y, m, d, h, tzinfo=CST)


def expiries(db: Session, cid: int) -> list[tuple[str, int, dt.datetime]]:
    return [(e.key, e.amount, e.at) for e in db.scalars(
        select(PointsEntry).where(PointsEntry.customer_id == cid,
                                  PointsEntry.source == "expiry").order_by(PointsEntry.key))]


def test_points_expire_at_the_end_of_the_following_year_oldest_spent_first(db: Session
                                                                           ) -> None:
    cid = customer(db)
    points.add_entry(db, cid, 100, source="order", key="o1", at=at(2024, 3, 1))
    points.add_reward(db, "试用装", 30)
    points.redeem(db, cid, "试用装", key="r1", at=at(2025, 2, 1))  # takes 2024's points
    points.add_entry(db, cid, 50, source="order", key="o2", at=at(2025, 6, 1))
    # 2025-12-31 23:59 in Shanghai: nothing is due yet
    assert expiry.expire(db, now=dt.datetime(2025, 12, 31, 23, 59, tzinfo=CST), years=1,
                         timezone=TZ).entries == 0
    soon = expiry.expiring(db, cid, at(2025, 7, 1), years=1, timezone=TZ)
    assert (soon.points, soon.last_day, soon.year) == (70, dt.date(2025, 12, 31), 2024)
    assert soon.at == dt.datetime(2025, 12, 31, 16, tzinfo=dt.UTC)

    done = expiry.expire(db, now=at(2026, 1, 1, 0), years=1, timezone=TZ)
    assert (done.entries, done.points, done.by_year) == (1, 70, {2024: 70})
    assert expiries(db, cid) == [(f"{cid}:2024", -70, dt.datetime(2025, 12, 31, 16,
                                                                  tzinfo=dt.UTC))]
    assert points.balance(db, cid) == 50
    again = expiry.expire(db, now=at(2026, 6, 1), years=1, timezone=TZ)  # a re-run
    assert again.entries == 0 and points.balance(db, cid) == 50
    assert expiry.expiring(db, cid, at(2026, 6, 1), years=1, timezone=TZ).points == 50
    later = expiry.expire(db, now=at(2027, 1, 2), years=1, timezone=TZ)
    assert later.by_year == {2025: 50} and points.balance(db, cid) == 0


def test_a_run_that_catches_up_several_years_counts_each_expiry_for_the_next(db: Session
                                                                            ) -> None:
    cid = customer(db)
    points.add_entry(db, cid, 100, source="order", key="o1", at=at(2022, 5, 1))
    points.add_entry(db, cid, 40, source="order", key="o2", at=at(2023, 5, 1))
    points.add_entry(db, cid, 60, source="manual", key="m1", at=at(2024, 5, 1))
    points.add_entry(db, cid, -120, source="manual", key="m2", at=at(2024, 6, 1))
    # nothing ran before: 2022's 100 were whole at their cutoff (2024-01-01; the spending
    # came later) but the balance is 80 now, and an expiry never takes it below zero → 80.
    # 2023 at 2025-01-01: 140 earned up to 2023 - 120 spent - 80 expired < 0 → nothing;
    # 2024 at 2026: 200 earned - 200 debited → nothing.
    done = expiry.expire(db, now=at(2026, 3, 1), years=1, timezone=TZ)
    assert done.by_year == {2022: 80} and done.years == [2022, 2023, 2024]
    assert points.balance(db, cid) == 0
    assert expiry.expire(db, now=at(2026, 3, 2), years=1, timezone=TZ).entries == 0


def test_the_brand_time_zone_decides_the_year(db: Session) -> None:
    cid = customer(db)
    # 2024-12-31 17:00 UTC is already 2025-01-01 01:00 in Shanghai: a 2025 point
    points.add_entry(db, cid, 10, source="order", key="o1",
                     at=dt.datetime(2024, 12, 31, 17, tzinfo=dt.UTC))
    assert expiry.expire(db, now=at(2026, 1, 5), years=1, timezone=TZ).entries == 0
    # in UTC it was a 2024 point
    assert expiry.expire(db, now=dt.datetime(2026, 1, 5, tzinfo=dt.UTC), years=1,
                         timezone="UTC").by_year == {2024: 10}


def test_a_negative_balance_is_unchanged_and_never_expired_below_zero(db: Session) -> None:
    cid = customer(db)
    points.add_entry(db, cid, 100, source="order", key="o1", at=at(2024, 3, 1))
    points.add_reward(db, "保温杯", 100)
    points.redeem(db, cid, "保温杯", key="r1", at=at(2024, 4, 1))
    points.reverse_order_points(db, cid, "o1", at=at(2024, 5, 1))
    assert points.balance(db, cid) == -100
    assert expiry.expire(db, now=at(2026, 1, 2), years=1, timezone=TZ).entries == 0
    assert points.balance(db, cid) == -100
    points.add_entry(db, cid, 150, source="order", key="o2", at=at(2025, 2, 1))
    # 250 earned up to 2025, 200 debited before 2027: 50 left, the balance is 50
    assert expiry.expire(db, now=at(2027, 1, 2), years=1, timezone=TZ).by_year == {2025: 50}
    assert points.balance(db, cid) == 0


def test_a_late_run_does_not_take_what_was_spent_after_the_cutoff(db: Session) -> None:
    cid = customer(db)
    points.add_entry(db, cid, 100, source="order", key="o1", at=at(2024, 3, 1))
    points.add_entry(db, cid, 20, source="order", key="o2", at=at(2025, 3, 1))
    points.add_entry(db, cid, -110, source="manual", key="m1", at=at(2026, 1, 2))
    assert expiry.expire(db, now=at(2026, 1, 3), years=1, timezone=TZ).by_year == {2024: 10}
    assert points.balance(db, cid) == 0


def test_never_expiring_writes_nothing(db: Session) -> None:
    cid = customer(db)
    points.add_entry(db, cid, 100, source="order", key="o1", at=at(2020, 3, 1))
    assert expiry.expire(db, now=at(2026, 1, 3), years=0, timezone=TZ).entries == 0
    soon = expiry.expiring(db, cid, at(2026, 1, 3), years=0, timezone=TZ)
    assert (soon.points, soon.at) == (0, None)


def test_the_liability_counts_positive_balances_only(db: Session) -> None:
    now = at(2026, 12, 3)
    rich, poor, nil, old = customer(db), customer(db), customer(db), customer(db)
    points.add_entry(db, rich, 300, source="order", key="a", at=now - dt.timedelta(days=2))
    points.add_reward(db, "券", 100)
    points.redeem(db, rich, "券", key="r", at=now - dt.timedelta(days=1))
    points.add_entry(db, poor, 50, source="order", key="b", at=now - dt.timedelta(days=40))
    points.add_entry(db, poor, -120, source="order_refund", key="b", at=now - dt.timedelta(
        days=3), allow_negative_balance=True)
    points.add_entry(db, nil, 10, source="manual", key="c", at=now - dt.timedelta(days=100))
    points.add_entry(db, nil, -10, source="manual", key="d", at=now - dt.timedelta(days=99))
    points.add_entry(db, old, 500, source="opening", key="e", at=at(2025, 1, 1))
    report = expiry.liability(db, now=now, years=1, timezone=TZ, yuan_per_point=0.01)
    assert report["outstanding"] == 200 + 500  # poor's -70 does not reduce it
    assert report["value_yuan"] == 7.0
    assert (report["holders"], report["in_debt"], report["owed"]) == (2, 1, 70)
    # 2025's 500 expire at the end of 2026; rich's 2026 points do not
    assert report["expiring"] == {"points": 500, "value_yuan": 5.0,
                                  "at": "2026-12-31T16:00:00+00:00", "last_day": "2026-12-31"}
    assert (report["earned"], report["redeemed"], report["expired"], report["reversed"]) == (
        300, 100, 0, 120)



def test_the_daily_job_expires_and_queues_the_next_day(db: Session,
                                                       one_year: None) -> None:
    from siyu.jobs.models import Job
    from siyu.jobs.service import handlers
    from siyu.points import tasks

    cid = customer(db)
    this_year = dt.datetime.now(CST).year
    points.add_entry(db, cid, 80, source="order", key="o1", at=at(this_year - 2, 6, 1))
    points.add_entry(db, cid, 30, source="order", key="o2", at=at(this_year - 1, 6, 1))
    handlers()[tasks.EXPIRE_JOB](db, {})
    assert points.balance(db, cid) == 30
    assert expiries(db, cid)[0][:2] == (f"{cid}:{this_year - 2}", -80)
    queued = db.scalars(select(Job).where(Job.name == tasks.EXPIRE_JOB)).all()
    assert len(queued) == 1 and queued[0].run_at > dt.datetime.now(dt.UTC)
    local = queued[0].run_at.astimezone(CST)
    assert (local.hour, local.minute) == (0, 10)


def test_the_cli_expires_once_and_reports_the_liability(
        monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: Any,
        one_year: None) -> None:
    from tests.cli_helpers import run_cli

    with sessions() as s:
        cid = customer(s)
        points.add_entry(s, cid, 300, source="order", key="cli-o1", at=at(2024, 6, 1))
        points.add_entry(s, cid, 40, source="order", key="cli-o2", at=at(2025, 6, 1))
        s.commit()
    first = run_cli(monkeypatch, database_url, "points", "expire", "--now",
                    "2026-01-01T00:10:00+08:00", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["by_year"] == {"2024": 300}
    again = run_cli(monkeypatch, database_url, "points", "expire", "--now",
                    "2026-01-01T00:10:00+08:00", "--json")
    assert json.loads(again.stdout)["entries"] == 0
    report = run_cli(monkeypatch, database_url, "points", "liability", "--now",
                     "2026-01-02T00:00:00+08:00", "--json")
    assert report.exit_code == 0, report.output
    out = json.loads(report.stdout)
    assert (out["outstanding"], out["value_yuan"], out["expired"]) == (40, 0.4, 300)
    assert out["expiring"]["points"] == 40 and out["expiring"]["last_day"] == "2026-12-31"
    text = run_cli(monkeypatch, database_url, "points", "liability")
    assert "未使用积分" in text.stdout and "折合金额" in text.stdout
    bal = run_cli(monkeypatch, database_url, "points", "balance", str(cid), "--json")
    assert json.loads(bal.stdout)["balance"] == 40
    bad = run_cli(monkeypatch, database_url, "points", "expire", "--now", "yesterday")
    assert bad.exit_code != 0
