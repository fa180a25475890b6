"""The score rules on small hand-made histories whose right answers are worked out by hand."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pytest

from siyu.analytics import clv as clv_math
from siyu.analytics import scoring
from siyu.analytics.config import (
    AudienceConfig,
    LifecycleConfig,
    RfmConfig,
    ScoringConfig,
    Tier,
    load_config,
)
from siyu.analytics.timeutil import NO_DAY, local_days
from siyu.errors import InvalidInput

TODAY = 20_000  # a day number (2024-10-04); histories are written as days before it


def facts(*customers: dict[str, Any]) -> scoring.Facts:
    """Facts for customers given as ``{"days": [-30, -10], "spend": 100, ...}``; ``days`` are
    purchase days relative to TODAY (one order per day unless ``orders`` says more)."""
    n = len(customers)

    def col(key: str, default: Any, dtype: Any) -> Any:
        return np.array([c.get(key, default) for c in customers], dtype=dtype)

    days = [sorted(c.get("days", [])) for c in customers]
    k = np.array([len(d) for d in days], dtype=np.int64)

    def pick(index: int) -> np.ndarray:
        return np.array([TODAY + d[index] if len(d) >= abs(index) else NO_DAY for d in days],
                        dtype=np.int64)

    ratings = [c.get("ratings", []) for c in customers]
    return scoring.Facts(
        customer_id=np.arange(1, n + 1, dtype=np.int64),
        created_day=np.full(n, TODAY - 400, dtype=np.int64),
        acquisition_channel=[c.get("channel") for c in customers],
        orders_count=np.array([c.get("orders", len(d)) for c, d in zip(customers, days,
                                                                        strict=True)]),
        spend=col("spend", 0.0, np.float64), purchase_days=k,
        first_day=np.array([TODAY + d[0] if d else NO_DAY for d in days], dtype=np.int64),
        prev_day=pick(-2), last_day=pick(-1),
        referrals=col("referrals", 0, np.int64), referred=col("referred", False, bool),
        shares=col("shares", 0, np.int64), feedbacks=col("feedbacks", 0, np.int64),
        complaints=col("complaints", 0, np.int64),
        stayed_after_complaint=col("stayed", False, bool),
        rating_sum=np.array([sum(r) for r in ratings], dtype=np.float64),
        rating_count=np.array([len(r) for r in ratings], dtype=np.int64),
    )


# -- RFM ---------------------------------------------------------------------------------------


def test_quantile_scores_split_five_values_into_five_scores_and_ties_share() -> None:
    assert scoring.quantile_scores(np.array([10.0, 50, 30, 20, 40])).tolist() == [1, 5, 3, 2, 4]
    # Ten values: two per score.
    assert scoring.quantile_scores(np.arange(10.0)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # Six of ten bought once: they share score 1; the next value has 6 below -> 1 + 30//10 = 4.
    freq = np.array([1.0] * 6 + [2, 2, 3, 9])
    assert scoring.quantile_scores(freq).tolist() == [1] * 6 + [4, 4, 5, 5]
    # Recency: fewer days is better.
    assert scoring.quantile_scores(np.array([5.0, 100, 30, 60, 1]),
                                   higher_is_better=False).tolist() == [4, 1, 3, 2, 5]
    assert scoring.quantile_scores(np.array([7.0, 7, 7])).tolist() == [1, 1, 1]


def test_fixed_edges_and_named_tiers() -> None:
    cfg = RfmConfig(method="fixed")
    r, f, m = scoring.rfm_scores(np.array([3.0, 45, 400]), np.array([1.0, 3, 10]),
                                 np.array([150.0, 600, 5000]), cfg)
    assert r.tolist() == [5, 3, 1]  # edges 180/90/30/7 days
    assert f.tolist() == [1, 3, 5]  # edges 2/3/5/8 orders
    assert m.tolist() == [1, 3, 5]  # edges 200/500/1000/3000
    assert scoring.tier_names(np.array([15, 12, 11, 7, 6, 3]), cfg) == [
        "VIP", "VIP", "会员", "会员", "粉丝", "粉丝"]
    custom = RfmConfig(tiers=[Tier(name="金卡", min_score=10), Tier(name="银卡", min_score=5)])
    assert scoring.tier_names(np.array([12, 5, 4]), custom) == ["金卡", "银卡", None]


def test_rfm_scores_of_customers_and_non_buyers() -> None:
    data = facts(
        {"days": [-200], "spend": 50},
        {"days": [-90, -60], "spend": 200},
        {"days": [-40, -30, -20], "spend": 400},
        {"days": [-15, -12, -9, -6], "spend": 800},
        {"days": [-10, -8, -6, -4, -2], "spend": 1600},
        {},
    )
    s = scoring.compute(data, ScoringConfig(), today=TODAY)
    assert s.rfm_r[:5].tolist() == [1, 2, 3, 4, 5]
    assert s.rfm_f[:5].tolist() == [1, 2, 3, 4, 5]
    assert s.rfm_m[:5].tolist() == [1, 2, 3, 4, 5]
    assert s.rfm_score[:5].tolist() == [3, 6, 9, 12, 15]
    assert s.rfm_tier == ["粉丝", "粉丝", "会员", "VIP", "VIP", "粉丝"]
    assert s.explanation(4)["rfm"] == ("2 天前购买（R5）、5 笔订单（F5）、消费 ¥1,600（M5），"
                                        "总分 15 → VIP")
    assert s.explanation(5)["rfm"] == "尚无购买 → 粉丝"


# -- lifecycle ---------------------------------------------------------------------------------


LC = LifecycleConfig(default_cycle_days=30)


@pytest.mark.parametrize(("history", "stage"), [
    ({}, "acquisition"),                                    # never bought
    ({"days": [-10]}, "acquisition"),                       # first purchase 10 days ago
    ({"days": [-40, -20]}, "growth"),                       # 2 days, cycle 20, 20 days ago
    ({"days": [-200, -170, -140, -110, -80]}, "decline"),   # cycle 30, 80 > 45 and <= 90
    ({"days": [-400, -370, -340, -310]}, "churned"),        # cycle 30, 310 > 90
    ({"days": [-240, -210, -180, -150, -120, -90, -60, -30, -10]}, "maturity"),
    ({"days": [-400, -390, -380, -20]}, "reactivated"),     # cycle 10, gap 360 >= 90 and > 30
])
def test_each_lifecycle_stage(history: dict[str, Any], stage: str) -> None:
    s = scoring.compute(facts(history), ScoringConfig(lifecycle=LC), today=TODAY)
    assert s.lifecycle == [stage]


def test_lifecycle_uses_the_customers_own_rhythm() -> None:
    # Both last bought 50 days ago: a monthly buyer is overdue (50 > 1.5 x 10), a buyer
    # with a 60-day rhythm is not.
    s = scoring.compute(facts({"days": [-70, -60, -50]}, {"days": [-170, -110, -50]}),
                        ScoringConfig(lifecycle=LC), today=TODAY)
    assert s.lifecycle == ["decline", "growth"]
    assert s.explanation(0)["lifecycle"] == "50 天未购买，超过自身购买周期 10 天的 1.5 倍 → 衰退"


def test_default_cycle_is_the_median_of_repeat_buyers() -> None:
    # Repeat buyers' cycles: 10, 20, 40 -> median 20. A one-time buyer 45 days ago is past
    # 1.5 x 20 = 30 days (decline) but not 3 x 20 = 60 (churned).
    data = facts({"days": [-30, -20]}, {"days": [-40, -20]}, {"days": [-60, -20]},
                 {"days": [-45]})
    s = scoring.compute(data, ScoringConfig(), today=TODAY)
    assert s.lifecycle[3] == "decline"


# -- true fans, audiences, assets ---------------------------------------------------------------


def test_fan_score_parts_ordering_and_true_fan() -> None:
    data = facts(
        {"days": [-30]},                                                   # buyer only
        {"days": [-60, -30]},                                              # repeat
        {"days": [-60, -30], "referrals": 1},                              # + recommends
        {"days": [-90, -60, -30, -5], "referrals": 1, "shares": 3,         # all three
         "feedbacks": 1, "complaints": 1, "stayed": True},
        {"days": [-90, -60, -30, -5], "referrals": 2, "feedbacks": 4},     # all, maxed
    )
    s = scoring.compute(data, ScoringConfig(), today=TODAY)
    # repeat = (k-1)/3 x 100; recommend = 50/referral + 10/share; tolerance = 25/feedback
    # + 50 if stayed after a complaint; score = 0.4 R + 0.3 Rec + 0.3 Tol.
    assert s.fan_parts[:, 3].tolist() == [100.0, 80.0, 75.0]
    assert s.fan_score.tolist() == [0.0, 13.3, 28.3, 86.5, 100.0]
    assert s.is_true_fan.tolist() == [False, False, False, True, True]
    assert np.all(np.diff(s.fan_score) > 0)
    assert s.explanation(3)["fan"] == "复购 100、推荐 80、包容反馈 75 → 铁粉指数 86.5，是铁粉"


def test_true_fan_needs_all_three_criteria() -> None:
    # Maxed repeat and recommendation but no feedback: 70 points, yet not a true fan.
    s = scoring.compute(facts({"days": [-90, -60, -30, -5], "referrals": 2}),
                        ScoringConfig(), today=TODAY)
    assert s.fan_score.tolist() == [70.0] and s.is_true_fan.tolist() == [False]


def test_every_audience_type_is_reachable() -> None:
    launch = dt.date(1970, 1, 1) + dt.timedelta(days=TODAY - 400)
    data = facts(
        {"days": [-300, -200, -100, -5], "spend": 3000, "referrals": 1, "feedbacks": 2},
        {"days": [-50], "referrals": 3},                          # influencer
        {"days": [-390, -200], "feedbacks": 1},                   # seed: early, repeat, feedback
        {"days": [-395]},                                         # pioneer: early
        {"days": [-20], "referred": True},                        # follower (referred)
        {"days": [-20], "channel": "朋友推荐"},                    # follower (channel)
        {},                                                       # potential
        {"days": [-100, -20]},                                    # mainstream
        {"days": [-30], "shares": 10},                            # influencer via shares
    )
    cfg = ScoringConfig(audience=AudienceConfig(launch_date=launch, ideal_min_rfm=9))
    s = scoring.compute(data, cfg, today=TODAY)
    assert s.audience == ["ideal", "influencer", "seed", "pioneer", "follower", "follower",
                          "potential", "mainstream", "influencer"]
    assert set(s.audience) == set(scoring.AUDIENCE_TYPES)


def test_assets_are_bounded_and_documented() -> None:
    data = facts(
        {"days": [-30], "spend": 100},
        {"days": [-700, -300, -200, -100, -10], "spend": 9000, "ratings": [1.0, 0.8]},
        {"days": [-20, -10], "spend": 500, "ratings": [0.2]},
        {},
    )
    s = scoring.compute(data, ScoringConfig(), today=TODAY)
    for values in (s.value_asset, s.brand_asset, s.retention_asset):
        assert np.all((values >= 0) & (values <= 100))
    # value: share of the 3 buyers spending at most as much.
    assert s.value_asset.tolist() == [33.3, 100.0, 66.7, 0.0]
    # brand: (satisfaction + fan score) / 2; no rating counts as neutral 50.
    assert s.brand_asset.tolist() == [25.0, 65.0, 16.6, 25.0]
    # retention: (repeat + tenure/730 x 100) / 2 without a CLV model.
    assert s.retention_asset.tolist() == [2.1, 97.9, 18.0, 0.0]


def test_clv_scores_come_from_the_model() -> None:
    data = facts({"days": [-70, -35, -7], "spend": 300}, {})
    inputs = scoring.ClvInputs(
        model_id=1, time_unit="week",
        bgnbd=clv_math.BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426),
        gamma_gamma=clv_math.GammaGammaParams(p=6.25, q=3.74, gamma=15.44),
        index=np.array([0]), frequency=np.array([2.0]), recency=np.array([9.0]),
        age=np.array([10.0]), monetary=np.array([100.0]))
    s = scoring.compute(data, ScoringConfig(), today=TODAY, clv=inputs)
    expected_alive = clv_math.bgnbd_probability_alive(inputs.bgnbd, [2.0], [9.0], [10.0])[0]
    assert s.p_alive[0] == pytest.approx(expected_alive)
    assert 0 < s.p_alive[0] < 1 and s.expected_purchases[0] > 0 and s.clv[0] > 0
    assert np.isnan(s.clv[1]) and np.isnan(s.p_alive[1])
    assert s.explanation(0)["clv"].startswith(f"存活概率 {expected_alive:.0%}")
    assert s.explanation(1)["clv"] == "尚无购买，无法估计"


# -- days and configuration ---------------------------------------------------------------------


def test_local_days_count_in_the_brands_zone() -> None:
    # 1996-12-31 16:00 UTC is 1997-01-01 00:00 in Shanghai; 15:59:59 UTC is still Dec 31.
    seconds = np.array([852048000.0, 852047999.0, np.nan])
    days = local_days(seconds, "Asia/Shanghai")
    assert days[:2].tolist() == [(dt.date(1997, 1, 1) - dt.date(1970, 1, 1)).days,
                                 (dt.date(1996, 12, 31) - dt.date(1970, 1, 1)).days]
    assert days[2] == NO_DAY
    # New York changes offset with daylight saving: 2024-07-01 03:00 UTC is June 30 there.
    summer = dt.datetime(2024, 7, 1, 3, tzinfo=dt.UTC).timestamp()
    assert local_days(np.array([summer]), "America/New_York").tolist() == [
        (dt.date(2024, 6, 30) - dt.date(1970, 1, 1)).days]


def test_config_file_is_loaded_and_errors_name_the_field(tmp_path: Any) -> None:
    good = tmp_path / "scoring.json"
    good.write_text('{"acquisition_cost": {"直播": 80}, "fan": {"goal": 500}}', encoding="utf-8")
    cfg = load_config(good)
    assert cfg.acquisition_cost == {"直播": 80.0} and cfg.fan.goal == 500
    assert cfg.rfm.tiers[0].name == "VIP"  # untouched defaults stay
    bad = tmp_path / "bad.json"
    bad.write_text('{"rfm": {"frequency_edges": [5, 3, 2, 1]}, "colour": 1}', encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        load_config(bad)
    fields = {d["field"] for d in info.value.details}
    assert fields == {"rfm", "colour"}
    assert "frequency_edges must be ascending" in info.value.message
    with pytest.raises(InvalidInput, match="cannot read the scoring config"):
        load_config(tmp_path / "missing.json")


def test_a_new_buyer_stays_in_acquisition_for_new_days() -> None:
    # With a 10-day default cycle a single purchase 30 days ago would be overdue, but the
    # acquisition rule (first purchase at most 30 days ago) is checked first; a day later
    # the customer is in decline.
    config = ScoringConfig(lifecycle=LifecycleConfig(default_cycle_days=10))
    s = scoring.compute(facts({"days": [-30]}, {"days": [-31]}), config, today=TODAY)
    assert s.lifecycle == ["acquisition", "decline"]


def test_explanations_are_valid_json_even_with_odd_tier_names() -> None:
    cfg = ScoringConfig(rfm=RfmConfig(tiers=[Tier(name='"金"\\卡', min_score=0)]))
    data = facts({"days": [-3], "spend": 1234567.5}, {"days": [-2], "spend": 12.5}, {})
    s = scoring.compute(data, cfg, today=TODAY)
    texts = s.explanations
    assert [set(json.loads(t)) for t in texts] == [set(scoring.EXPLANATION_KEYS)] * 3
    assert json.loads(texts[0])["rfm"].endswith('消费 ¥1,234,568（M3），总分 5 → "金"\\卡')
    assert "消费 ¥12.50" in s.explanation(1)["value_asset"]
