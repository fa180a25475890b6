"""Scores recomputed from the database: facts from SQL, stage history, CLV from the active
model, LTV/CAC, the summary and the recomputation job."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics import service
from siyu.analytics.config import AudienceConfig, ScoringConfig
from siyu.analytics.models import ClvModel, CustomerScore, StageTransition
from siyu.config import Settings
from siyu.jobs import service as jobs
from siyu.jobs.models import Job
from siyu.jobs.worker import load_tasks
from tests.analytics.builders import (
    add_customers,
    add_events,
    add_orders,
    at,
    end_of_today,
    today,
)

CDNOW_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4}
CDNOW_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
# The brand launched a year ago, so this month's customers are not its early adopters.
CONFIG = ScoringConfig(audience=AudienceConfig(launch_date=today() - dt.timedelta(days=365)))


@pytest.fixture
def shop(sessions: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    """A (three purchase days, one cancelled order, a midnight order), B (referred by A,
    one order, feedback), C (no orders, an event)."""
    with sessions() as s:
        ids = add_customers(s, settings,
                            {"id": "A", "name": "甲", "acquisition_channel": "直播"},
                            {"id": "C", "name": "丙", "acquisition_channel": "门店"})
        ids += add_customers(s, settings, {"id": "B", "name": "乙", "referred_by": "A",
                                           "acquisition_channel": "直播"})
        add_orders(s, settings, "A", (40, 100.0), (20, 50.0), (5, 999.0, "cancelled"),
                   {"id": "A-late", "ts": at(40, 23, 30), "amount": 30.0},
                   # 00:30 in Shanghai is 16:30 UTC the day before: still local day -10.
                   {"id": "A-midnight", "ts": at(10, 0, 30), "amount": 20.0})
        add_orders(s, settings, "B", (3, 80.0))
        add_events(s, settings, "B", (2, "feedback", {"score": 4}))
        add_events(s, settings, "C", (1, "view_product"))
        s.commit()
    return {"A": ids[0], "C": ids[1], "B": ids[2]}


def _scores(sessions: sessionmaker[Session]) -> dict[int, CustomerScore]:
    with sessions() as s:
        return {row.customer_id: row for row in s.scalars(select(CustomerScore))}


def test_recompute_reads_purchases_in_the_brands_days(
        sessions: sessionmaker[Session], shop: dict[str, int]) -> None:
    now = end_of_today()
    result = service.recompute_scores(sessions, now=now, config=CONFIG,
                                      timezone="Asia/Shanghai")
    assert (result.customers, result.buyers, result.transitions) == (3, 2, 0)
    rows = _scores(sessions)
    a, b, c = rows[shop["A"]], rows[shop["B"]], rows[shop["C"]]
    # The cancelled order does not count; the two orders of day -40 are one purchase day.
    assert (a.orders_count, a.spend, a.avg_order_value) == (4, 200.0, 50.0)
    assert a.first_order_at == dt.datetime.fromisoformat(at(40)).astimezone(dt.UTC)
    assert a.last_order_at == dt.datetime.fromisoformat(at(10, 0, 30)).astimezone(dt.UTC)
    assert a.referrals_count == 1 and b.referrals_count == 0
    assert a.explanations["rfm"].startswith("10 天前购买")
    # A: purchase days -40, -20, -10 -> cycle 15, 10 days ago: growth (3 days, tenure 40).
    assert a.lifecycle == "growth"
    assert a.explanations["lifecycle"] == "3 个购买日，距上次 10 天（周期 15 天）内 → 成长期"
    assert b.lifecycle == "acquisition" and c.lifecycle == "acquisition"
    assert c.rfm_score is None and c.rfm_tier == "粉丝" and c.orders_count == 0
    assert c.last_active_at == dt.datetime.fromisoformat(at(1)).astimezone(dt.UTC)
    assert b.audience == "follower" and c.audience == "potential"
    # B rated 4 of 5 (satisfaction 80); one feedback gives tolerance 25, so fan score
    # 0.3 x 25 = 7.5; brand asset (80 + 7.5) / 2 = 43.75.
    assert b.fan_score == 7.5 and b.brand_asset == 43.8
    assert a.p_alive is None and a.clv is None
    assert a.explanations["clv"] == "尚未拟合 CLV 模型（运行 siyu clv fit）"


def test_scores_as_of_an_earlier_moment_ignore_later_orders(
        sessions: sessionmaker[Session], shop: dict[str, int]) -> None:
    earlier = end_of_today() - dt.timedelta(days=15)
    service.recompute_scores(sessions, now=earlier, config=ScoringConfig())
    a = _scores(sessions)[shop["A"]]
    assert (a.orders_count, a.spend) == (3, 180.0)
    assert _scores(sessions)[shop["B"]].orders_count == 0


def test_stage_changes_are_recorded_once_and_since_is_kept(
        sessions: sessionmaker[Session], shop: dict[str, int]) -> None:
    first = end_of_today()
    service.recompute_scores(sessions, now=first, config=ScoringConfig())
    since = _scores(sessions)[shop["A"]].lifecycle_since
    # Same moment again: nothing changed, lifecycle_since stays.
    again = service.recompute_scores(sessions, now=first + dt.timedelta(hours=1),
                                     config=ScoringConfig())
    assert again.transitions == 0
    assert _scores(sessions)[shop["A"]].lifecycle_since == since
    # 200 days later A (cycle 15) and B (one purchase) have churned.
    later = first + dt.timedelta(days=200)
    result = service.recompute_scores(sessions, now=later, config=ScoringConfig())
    with sessions() as s:
        moves = {(t.customer_id, t.dimension): (t.from_stage, t.to_stage, t.at)
                 for t in s.scalars(select(StageTransition))}
    assert moves[(shop["A"], "lifecycle")] == ("growth", "churned", later)
    assert moves[(shop["B"], "lifecycle")] == ("acquisition", "churned", later)
    assert (shop["C"], "lifecycle") not in moves
    assert result.transitions == len(moves)
    assert _scores(sessions)[shop["A"]].lifecycle_since == later
    repeat = service.recompute_scores(sessions, now=later, config=ScoringConfig())
    assert repeat.transitions == 0


def test_clv_scores_use_the_active_model(
        sessions: sessionmaker[Session], shop: dict[str, int]) -> None:
    with sessions() as s:
        s.add(ClvModel(calibration_end=dt.date(2026, 1, 1), time_unit="week",
                       bgnbd={**CDNOW_BGNBD, "r": 9.0}, gamma_gamma=CDNOW_GG, n_customers=1,
                       is_active=False))
        s.add(ClvModel(calibration_end=dt.date(2026, 1, 1), time_unit="week",
                       bgnbd=CDNOW_BGNBD, gamma_gamma=CDNOW_GG, n_customers=2357))
        s.commit()
        active = service.active_model(s)
        assert active is not None and active.bgnbd["r"] == 0.243
    result = service.recompute_scores(sessions, now=end_of_today(), config=ScoringConfig())
    assert result.clv_model_id == active.id
    rows = _scores(sessions)
    a, c = rows[shop["A"]], rows[shop["C"]]
    assert a.p_alive is not None and 0 < a.p_alive <= 1
    assert a.expected_purchases is not None and a.expected_purchases > 0
    assert a.clv is not None and a.clv > 0
    assert c.clv is None and c.p_alive is None
    assert a.explanations["clv"].startswith(f"存活概率 {a.p_alive:.0%}")


def test_ltv_cac_by_acquisition_channel(
        sessions: sessionmaker[Session], shop: dict[str, int]) -> None:
    service.recompute_scores(sessions, now=end_of_today(), config=ScoringConfig())
    config = ScoringConfig(acquisition_cost={"直播": 70.0})
    with sessions() as s:
        report = service.ltv_cac(s, config)
    by_channel = {c["channel"]: c for c in report["channels"]}
    # 直播: A spent 200, B 80 -> LTV 140 (no CLV model), CAC 70 -> 2.0.
    assert by_channel["直播"] == {"channel": "直播", "customers": 2, "scored": 2,
                                  "ltv": 140.0, "cac": 70.0, "ltv_cac": 2.0}
    assert by_channel["门店"]["ltv"] == 0.0 and by_channel["门店"]["ltv_cac"] is None
    assert report["unconfigured"] == ["门店"]


def test_summary_counts(sessions: sessionmaker[Session], shop: dict[str, int]) -> None:
    now = end_of_today()
    service.recompute_scores(sessions, now=now, config=ScoringConfig())
    service.recompute_scores(sessions, now=now + dt.timedelta(days=200),
                             config=ScoringConfig())
    with sessions() as s:
        data = service.summary(s, ScoringConfig(), now=now + dt.timedelta(days=200))
    assert data["customers"] == 3 and data["scored"] == 3
    assert {r["stage"]: r["count"] for r in data["by_lifecycle"]} == {
        "acquisition": 1, "growth": 0, "maturity": 0, "decline": 0, "churned": 2,
        "reactivated": 0}
    assert {k: data["true_fans"][k] for k in ("count", "goal", "progress")} == {
        "count": 0, "goal": 1000, "progress": 0.0}
    assert data["clv_distribution"]["without_clv"] == 3
    assert data["transitions"]["series"]["churned"][-1] == 2
    assert sum(data["transitions"]["series"]["churned"]) == 2


def test_schedule_recompute_is_deduplicated_per_bucket(db: Session) -> None:
    base = dt.datetime(2026, 11, 22, 10, 3, tzinfo=dt.UTC)
    first = service.schedule_recompute(db, now=base)
    second = service.schedule_recompute(db, now=base + dt.timedelta(minutes=5))
    third = service.schedule_recompute(db, now=base + dt.timedelta(minutes=8))
    assert first == second != third
    rows = db.scalars(select(Job).where(Job.name == service.RECOMPUTE_JOB)
                      .order_by(Job.run_at)).all()
    assert [r.run_at for r in rows] == [dt.datetime(2026, 11, 22, 10, 10, tzinfo=dt.UTC),
                                        dt.datetime(2026, 11, 22, 10, 20, tzinfo=dt.UTC)]


def test_the_job_recomputes_and_asks_segments_to_refresh(
        sessions: sessionmaker[Session], shop: dict[str, int]) -> None:
    load_tasks()
    with sessions() as s:
        service.request_recompute(s)
        s.commit()
    summary = jobs.run_due(sessions)
    assert summary.done >= 1 and summary.failed == 0
    assert len(_scores(sessions)) == 3
    with sessions() as s:
        names = set(s.scalars(select(Job.name)))
        assert "segments.refresh_all" in names
        assert s.scalar(select(func.count()).select_from(Job).where(
            Job.name == service.RECOMPUTE_JOB, Job.status == "done")) == 1


def test_the_fans_trend_and_what_makes_them(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    """F buys on four days, then shares and gives feedback: a true fan from the second
    recomputation on, recorded as a ``fan`` transition and drawn as the month-end trend.
    N has bought and given feedback but never recommended: one criterion short."""
    with sessions() as s:
        f, n = add_customers(s, settings, {"id": "F", "name": "粉"}, {"id": "N", "name": "近"})
        for who in ("F", "N"):
            add_orders(s, settings, who, (100, 50.0), (80, 50.0), (60, 50.0), (40, 50.0))
        add_events(s, settings, "F", *[(5, "share_product")] * 5, (5, "feedback"),
                   (4, "review"))
        add_events(s, settings, "N", (50, "feedback"))
        s.commit()
    now = end_of_today()
    service.recompute_scores(sessions, now=now - dt.timedelta(days=35), config=CONFIG)
    assert not _scores(sessions)[f].is_true_fan
    service.recompute_scores(sessions, now=now, config=CONFIG)
    rows = _scores(sessions)
    assert rows[f].is_true_fan and (rows[f].fan_repeat, rows[f].fan_recommend,
                                    rows[f].fan_tolerance) == (100.0, 50.0, 50.0)
    assert not rows[n].is_true_fan and rows[n].fan_recommend == 0 and rows[n].fan_tolerance
    with sessions() as s:
        moves = [(t.customer_id, t.from_stage, t.to_stage) for t in s.scalars(
            select(StageTransition).where(StageTransition.dimension == "fan"))]
        data = service.summary(s, CONFIG, now=now)
    assert moves == [(f, "not_fan", "true_fan")]
    fans = data["true_fans"]
    assert fans["count"] == 1
    assert fans["trend"]["months"] == data["transitions"]["months"]
    assert fans["trend"]["counts"][-2:] == [0, 1]
    assert fans["all_three"] == 1
    by = {c["criterion"]: c for c in fans["criteria"]}
    assert {k: (c["met"], c["only_missing"]) for k, c in by.items()} == {
        "repeat": (2, 0), "recommend": (1, 1), "tolerance": (2, 0)}
    assert by["recommend"]["label"] == "推荐"
