"""The score rules, vectorised: per-customer facts in numpy arrays in, scores out.

No database here: :mod:`siyu.analytics.repository` loads the facts with SQL aggregates and
:mod:`siyu.analytics.service` writes the result. Every rule is described on its section of
:class:`~siyu.analytics.config.ScoringConfig`; this module applies them to all customers at
once, and writes the one-line Chinese reason per score that the 360 page shows.

Days are whole calendar days in the brand's time zone, numbered from 1970-01-01; a day
array holds ``NO_DAY`` for a customer without purchases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from siyu.analytics import clv as clv_math
from siyu.analytics.config import RfmConfig, ScoringConfig
from siyu.analytics.timeutil import EPOCH
from siyu.kit import labels

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

LIFECYCLE_STAGES: tuple[str, ...] = (
    "acquisition", "growth", "maturity", "decline", "churned", "reactivated")
AUDIENCE_TYPES: tuple[str, ...] = (
    "ideal", "influencer", "seed", "pioneer", "follower", "potential", "mainstream")
LABELS_ZH: dict[str, str] = {**dict(labels.LIFECYCLE), **dict(labels.AUDIENCES)}


@dataclass
class Facts:
    """What the scores are built from, one entry per customer (aligned arrays).

    ``purchase_days`` counts distinct purchase days; ``first_day``/``prev_day``/``last_day``
    are the first, second-to-last and last of them (``NO_DAY`` when missing). Ratings are
    already divided by their scale (0..1) and summed in ``rating_sum``.
    """

    customer_id: IntArray
    created_day: IntArray
    acquisition_channel: list[str | None]
    orders_count: IntArray
    spend: FloatArray
    purchase_days: IntArray
    first_day: IntArray
    prev_day: IntArray
    last_day: IntArray
    referrals: IntArray
    referred: BoolArray
    shares: IntArray
    feedbacks: IntArray
    complaints: IntArray
    stayed_after_complaint: BoolArray
    rating_sum: FloatArray
    rating_count: IntArray

    def __len__(self) -> int:
        return int(self.customer_id.shape[0])


@dataclass
class ClvInputs:
    """The active model and each buyer's repeat-purchase summary in its time unit
    (``index`` says which customers, in :class:`Facts` order, the arrays describe)."""

    model_id: int
    time_unit: clv_math.TimeUnit
    bgnbd: clv_math.BGNBDParams
    gamma_gamma: clv_math.GammaGammaParams
    index: IntArray
    frequency: FloatArray
    recency: FloatArray
    age: FloatArray
    monetary: FloatArray


@dataclass
class Scores:
    """The computed scores, aligned with :class:`Facts`; NaN / None where a score has no
    value (no purchase, no CLV model)."""

    rfm_r: IntArray
    rfm_f: IntArray
    rfm_m: IntArray
    rfm_score: IntArray
    rfm_tier: list[str | None]
    lifecycle: list[str]
    p_alive: FloatArray
    expected_purchases: FloatArray
    clv: FloatArray
    fan_score: FloatArray
    fan_parts: FloatArray  # (3, n): repeat, recommend, tolerance
    is_true_fan: BoolArray
    audience: list[str]
    value_asset: FloatArray
    brand_asset: FloatArray
    retention_asset: FloatArray
    explanations: list[str]

    def explanation(self, index: int) -> dict[str, str]:
        """The reasons of one customer, by score."""
        reasons: dict[str, str] = json.loads(self.explanations[index])
        return reasons


def quantile_scores(values: FloatArray, higher_is_better: bool = True) -> IntArray:
    """Scores 1-5: ``1 + floor(5 * below / n)``, ``below`` = how many values are strictly
    worse. Equal values share a score; the best value always gets 5 unless all are equal
    (then everyone gets 1)."""
    n = values.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keyed = values if higher_is_better else -values
    below = np.searchsorted(np.sort(keyed), keyed, side="left")
    return np.asarray(1 + (5 * below) // n, dtype=np.int64)


def fixed_scores(values: FloatArray, edges: list[float], higher_is_better: bool = True
                 ) -> IntArray:
    """Scores 1-5: 1 plus the number of ``edges`` reached (``>=`` edge, or ``<=`` when lower
    is better)."""
    edge = np.asarray(edges, dtype=np.float64)
    if higher_is_better:
        reached = (values[:, None] >= edge[None, :]).sum(axis=1)
    else:
        reached = (values[:, None] <= edge[None, :]).sum(axis=1)
    return np.asarray(1 + reached, dtype=np.int64)


def rfm_scores(recency_days: FloatArray, frequency: FloatArray, monetary: FloatArray,
               config: RfmConfig) -> tuple[IntArray, IntArray, IntArray]:
    """R, F and M scores of buyers (see :class:`RfmConfig`)."""
    if config.method == "fixed":
        return (fixed_scores(recency_days, config.recency_edges_days, higher_is_better=False),
                fixed_scores(frequency, config.frequency_edges),
                fixed_scores(monetary, config.monetary_edges))
    return (quantile_scores(recency_days, higher_is_better=False),
            quantile_scores(frequency), quantile_scores(monetary))


def tier_names(total: IntArray, config: RfmConfig) -> list[str | None]:
    """The first tier (highest ``min_score`` first) whose ``min_score`` the total reaches;
    None when no tier does."""
    tiers = sorted(config.tiers, key=lambda t: -t.min_score)
    choice = np.full(total.shape[0], -1, dtype=np.int64)
    for i, tier in reversed(list(enumerate(tiers))):
        choice[total >= tier.min_score] = i
    names: list[str | None] = [t.name for t in tiers]
    return [names[c] if c >= 0 else None for c in choice.tolist()]


def compute(facts: Facts, config: ScoringConfig, *, today: int,
            clv: ClvInputs | None = None) -> Scores:
    """Score every customer in ``facts`` as of the local day ``today`` (a day number)."""
    n = len(facts)
    buyer = facts.purchase_days > 0
    k = facts.purchase_days.astype(np.float64)
    recency = np.where(buyer, today - facts.last_day, 0).astype(np.float64)
    tenure = np.where(buyer, today - facts.first_day, 0).astype(np.float64)

    # RFM among buyers.
    rfm_r = np.zeros(n, dtype=np.int64)
    rfm_f = np.zeros(n, dtype=np.int64)
    rfm_m = np.zeros(n, dtype=np.int64)
    idx = np.flatnonzero(buyer)
    r, f, m = rfm_scores(recency[idx], facts.orders_count[idx].astype(np.float64),
                         facts.spend[idx], config.rfm)
    rfm_r[idx], rfm_f[idx], rfm_m[idx] = r, f, m
    rfm_total = rfm_r + rfm_f + rfm_m
    tiers = tier_names(rfm_total, config.rfm)
    buyer_list = buyer.tolist()
    rfm_tier = [t if b else config.rfm.non_buyer_tier for t, b in zip(tiers, buyer_list,
                                                                      strict=True)]

    # Lifecycle.
    lc = config.lifecycle
    repeaters = facts.purchase_days >= 2
    own_cycle = np.divide((facts.last_day - facts.first_day).astype(np.float64), k - 1,
                          out=np.zeros(n), where=repeaters)
    if lc.default_cycle_days is not None:
        default_cycle = float(lc.default_cycle_days)
    elif np.any(repeaters):
        default_cycle = float(max(np.median(own_cycle[repeaters]), 1.0))
    else:
        default_cycle = float(lc.fallback_cycle_days)
    cycle = np.where(repeaters, np.maximum(own_cycle, 1.0), default_cycle)
    churned = buyer & (recency > lc.churned_ratio * cycle) & (recency >= lc.churned_min_days)
    decline = buyer & ~churned & (recency > lc.decline_ratio * cycle) & (
        recency >= lc.decline_min_days)
    three = facts.purchase_days >= 3
    cycle_before = np.where(
        three,
        np.divide((facts.prev_day - facts.first_day).astype(np.float64), k - 2,
                  out=np.ones(n), where=three),
        default_cycle)
    cycle_before = np.maximum(cycle_before, 1.0)
    gap = np.where(repeaters, facts.last_day - facts.prev_day, 0).astype(np.float64)
    reactivated = (repeaters & ~churned & ~decline & (gap > lc.churned_ratio * cycle_before)
                   & (gap >= lc.churned_min_days))
    new_buyer = buyer & (facts.purchase_days == 1) & (tenure <= lc.new_days)
    mature = (facts.purchase_days >= lc.maturity_min_purchases) & (
        tenure >= lc.maturity_min_tenure_days)
    stage_code = np.select(
        [~buyer | new_buyer, churned, decline, reactivated, mature],
        [0, 4, 3, 5, 2], default=1)
    lifecycle = [LIFECYCLE_STAGES[c] for c in stage_code.tolist()]

    # CLV from the active model.
    p_alive = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    clv_value = np.full(n, np.nan)
    if clv is not None and clv.index.size:
        unit_days = 7.0 if clv.time_unit == "week" else 1.0
        horizon = config.clv.horizon_months * clv_math.DAYS_PER_MONTH / unit_days
        p_alive[clv.index] = clv_math.bgnbd_probability_alive(
            clv.bgnbd, clv.frequency, clv.recency, clv.age)
        expected[clv.index] = clv_math.bgnbd_conditional_expected_transactions(
            clv.bgnbd, horizon, clv.frequency, clv.recency, clv.age)
        clv_value[clv.index] = clv_math.customer_lifetime_value(
            clv.bgnbd, clv.gamma_gamma, clv.frequency, clv.recency, clv.age, clv.monetary,
            time_unit=clv.time_unit, horizon_months=config.clv.horizon_months,
            monthly_discount_rate=clv_math.monthly_rate_from_annual(
                config.clv.annual_discount_rate),
            margin=config.clv.margin)

    # True-fan score.
    fc = config.fan
    repeat = np.clip((k - 1) / (fc.repeat_target - 1), 0, 1) * 100
    recommend = np.minimum(100.0, facts.referrals * fc.referral_points
                           + facts.shares * fc.share_points)
    tolerance = np.minimum(100.0, facts.feedbacks * fc.feedback_points
                           + facts.stayed_after_complaint * fc.stayed_points)
    weights = fc.weight_repeat + fc.weight_recommend + fc.weight_tolerance
    fan = np.round((fc.weight_repeat * repeat + fc.weight_recommend * recommend
                    + fc.weight_tolerance * tolerance) / weights, 1)
    true_fan = (repeat > 0) & (recommend > 0) & (tolerance > 0) & (fan >= fc.true_fan_min_score)

    # Audience type.
    ac = config.audience
    if ac.launch_date is not None:
        launch = (ac.launch_date - EPOCH).days
    elif np.any(buyer):
        launch = int(facts.first_day[buyer].min())
    else:
        launch = today
    early = buyer & (facts.first_day <= launch + ac.early_days)
    channels = set(ac.referral_channels)
    via_referral = facts.referred | np.fromiter(
        (c in channels for c in facts.acquisition_channel), dtype=bool, count=n)
    influencer = (facts.referrals >= ac.influencer_min_referrals) | (
        facts.referrals + facts.shares >= ac.influencer_min_shares)
    ideal = true_fan & (rfm_total >= ac.ideal_min_rfm)
    seed = early & repeaters & (facts.feedbacks > 0)
    follower = buyer & via_referral & (facts.purchase_days <= 2)
    audience_code = np.select(
        [ideal, influencer, seed, early, follower, ~buyer],
        [0, 1, 2, 3, 4, 5], default=6)
    audience = [AUDIENCE_TYPES[c] for c in audience_code.tolist()]

    # Customer asset.
    value_asset = np.zeros(n)
    if idx.size:
        spend_sorted = np.sort(facts.spend[idx])
        value_asset[idx] = np.round(
            100.0 * np.searchsorted(spend_sorted, facts.spend[idx], side="right") / idx.size, 1)
    satisfaction = np.where(
        facts.rating_count > 0,
        100.0 * facts.rating_sum / np.maximum(facts.rating_count, 1),
        config.asset.neutral_satisfaction)
    satisfaction = np.clip(satisfaction, 0, 100)
    brand_asset = np.round((satisfaction + fan) / 2, 1)
    tenure_score = np.clip(tenure / config.asset.full_tenure_days, 0, 1) * 100
    alive_factor = np.where(np.isnan(p_alive), 1.0, p_alive)
    retention_asset = np.round((repeat + tenure_score) / 2 * alive_factor, 1)

    scores = Scores(
        rfm_r=rfm_r, rfm_f=rfm_f, rfm_m=rfm_m, rfm_score=rfm_total, rfm_tier=rfm_tier,
        lifecycle=lifecycle, p_alive=p_alive, expected_purchases=expected, clv=clv_value,
        fan_score=fan, fan_parts=np.stack([repeat, recommend, tolerance]),
        is_true_fan=true_fan, audience=audience, value_asset=value_asset,
        brand_asset=brand_asset, retention_asset=retention_asset, explanations=[])
    scores.explanations = explain(
        facts, scores, config, recency=recency, cycle=cycle, gap=gap,
        cycle_before=cycle_before, satisfaction=satisfaction, tenure=tenure,
        horizon_months=config.clv.horizon_months, has_model=clv is not None,
        lifecycle_codes=stage_code.astype(np.int64),
        audience_codes=audience_code.astype(np.int64))
    return scores


def _money(value: float) -> str:
    return f"¥{value:,.0f}" if abs(value) >= 100 else f"¥{value:,.2f}"


EXPLANATION_KEYS: tuple[str, ...] = ("rfm", "lifecycle", "clv", "fan", "audience",
                                     "value_asset", "brand_asset", "retention_asset")


def _escaped(text: str) -> str:
    """``text`` ready to sit inside a JSON string literal."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def explain(facts: Facts, s: Scores, config: ScoringConfig, *, recency: FloatArray,
            cycle: FloatArray, gap: FloatArray, cycle_before: FloatArray,
            satisfaction: FloatArray, tenure: FloatArray, horizon_months: int,
            has_model: bool, lifecycle_codes: IntArray, audience_codes: IntArray
            ) -> list[str]:
    """One line of Chinese per score (keys :data:`EXPLANATION_KEYS`) saying why each
    customer has it, as one JSON object text per customer.

    The JSON is written directly by one format string per customer (a million customers
    take seconds); the only text not written here, tier names from the configuration, is
    escaped once up front.
    """
    lc, fc, ac = config.lifecycle, config.fan, config.audience
    tiers = {t: _escaped(t if t is not None else "未分层") for t in set(s.rfm_tier)}
    decline, churned = f"{lc.decline_ratio:g}", f"{lc.churned_ratio:g}"
    fan_short = f"（铁粉需三项都有且 ≥ {fc.true_fan_min_score:g}）"
    no_model = "尚未拟合 CLV 模型（运行 siyu clv fit）" if not has_model else "尚无购买，无法估计"
    columns: list[list[Any]] = [
        facts.purchase_days.tolist(), facts.orders_count.tolist(), facts.spend.tolist(),
        recency.tolist(), cycle.tolist(), gap.tolist(), cycle_before.tolist(),
        tenure.tolist(), s.rfm_r.tolist(), s.rfm_f.tolist(), s.rfm_m.tolist(),
        s.rfm_score.tolist(), s.rfm_tier, lifecycle_codes.tolist(), s.p_alive.tolist(),
        s.expected_purchases.tolist(), s.clv.tolist(), s.fan_score.tolist(),
        s.fan_parts[0].tolist(), s.fan_parts[1].tolist(), s.fan_parts[2].tolist(),
        s.is_true_fan.tolist(), audience_codes.tolist(), facts.referrals.tolist(),
        facts.shares.tolist(), s.value_asset.tolist(), s.brand_asset.tolist(),
        s.retention_asset.tolist(), satisfaction.tolist(), facts.rating_count.tolist(),
    ]
    out: list[str] = []
    append = out.append
    for (k, orders, spend, rec, cyc, gp, cyc_b, ten, r, f, m, total, tier, stage, alive,
         exp, value, fan, rep, recm, tol, true_fan, audience, refs, shares, va, ba, ra,
         sat, n_ratings) in zip(*columns, strict=True):
        tier_text = tiers[tier]
        if k:
            money = _money(spend)
            rfm = (f"{rec:.0f} 天前购买（R{r}）、{orders} 笔订单（F{f}）、"
                   f"消费 {money}（M{m}），总分 {total} → {tier_text}")
            value_why = f"消费 {money}，不低于 {va:.0f}% 的购买客户"
        else:
            rfm = f"尚无购买 → {tier_text}"
            value_why = "尚无消费，价值资产为 0"
        if stage == 0:
            why = f"首单在 {ten:.0f} 天内，新客获取期" if k else "尚无购买，处于获取期"
        elif stage == 1:
            why = f"{k} 个购买日，距上次 {rec:.0f} 天（周期 {cyc:.0f} 天）内 → 成长期"
        elif stage == 2:
            why = f"{k} 个购买日、首购至今 {ten:.0f} 天，节奏稳定 → 成熟期"
        elif stage == 3:
            why = f"{rec:.0f} 天未购买，超过自身购买周期 {cyc:.0f} 天的 {decline} 倍 → 衰退"
        elif stage == 4:
            why = f"{rec:.0f} 天未购买，超过自身购买周期 {cyc:.0f} 天的 {churned} 倍 → 流失"
        else:
            why = f"沉寂 {gp:.0f} 天（周期 {cyc_b:.0f} 天）后再次购买 → 回流"
        if value == value:  # not NaN
            clv_why = (f"存活概率 {alive:.0%}，未来 {horizon_months} 个月预计购买 {exp:.1f} 次，"
                       f"折现价值 {_money(value)}")
            retention_tail = f" × 存活概率 {alive:.0%}"
        else:
            clv_why = no_model
            retention_tail = ""
        if audience == 0:
            aud = f"铁粉且 RFM 总分 {total} ≥ {ac.ideal_min_rfm} → 理想人群"
        elif audience == 1:
            aud = f"推荐 {refs} 人、分享 {shares} 次 → 影响人群"
        elif audience == 2:
            aud = "品牌早期首购、多次购买并给过反馈 → 种子人群"
        elif audience == 3:
            aud = "在品牌早期就已首购 → 先锋人群"
        elif audience == 4:
            aud = f"经推荐而来，购买 {k} 天 → 追随人群"
        elif audience == 5:
            aud = "尚未购买，有待培养 → 潜在人群"
        else:
            aud = "常规购买客户 → 主流人群"
        ratings = f"（{n_ratings} 次评价）" if n_ratings else "（无评价，按中性计）"
        append(
            f'{{"rfm":"{rfm}","lifecycle":"{why}","clv":"{clv_why}",'
            f'"fan":"复购 {rep:.0f}、推荐 {recm:.0f}、包容反馈 {tol:.0f} → 铁粉指数 {fan:.1f}'
            f'{"，是铁粉" if true_fan else fan_short}","audience":"{aud}",'
            f'"value_asset":"{value_why}",'
            f'"brand_asset":"满意度 {sat:.0f}{ratings} 与忠诚度 {fan:.0f} 的平均 → {ba:.0f}",'
            f'"retention_asset":"复购 {rep:.0f} 与关系时长 {ten:.0f} 天的平均'
            f'{retention_tail} → {ra:.0f}"}}')
    return out
