"""Read-side analytics: LTV/CAC by channel, a customer's scores and score card, and the
dashboard summary. Reached through :mod:`siyu.analytics.service`, which re-exports them."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from siyu.analytics import repository as repo
from siyu.analytics import scoring
from siyu.analytics.config import ScoringConfig
from siyu.analytics.errors import ScoresNotComputed
from siyu.analytics.models import ClvModel, CustomerScore, StageTransition
from siyu.analytics.timeutil import EPOCH, local_days
from siyu.customers import service as customers
from siyu.customers.models import Customer


def _active_model_id(session: Session) -> int | None:
    return session.scalar(select(ClvModel.id).where(ClvModel.is_active.is_(True))
                          .order_by(ClvModel.id.desc()).limit(1))


# -- LTV / CAC ----------------------------------------------------------------------------------

UNKNOWN_CHANNEL = "未知"


def ltv_cac(session: Session, config: ScoringConfig) -> dict[str, Any]:
    """LTV and CAC per acquisition channel, from the stored scores.

    A customer's LTV is the value already realised plus the value still expected:
    ``margin x spend to date + CLV`` (CLV already carries the margin; 0 without a model).
    A channel's LTV is the mean over its active customers; CAC is the configured
    ``acquisition_cost`` of the channel (None when not configured, and then no ratio).
    """
    margin = config.clv.margin
    stmt = (
        select(Customer.acquisition_channel, func.count(),
               func.coalesce(func.sum(CustomerScore.spend), 0.0),
               func.coalesce(func.sum(CustomerScore.clv), 0.0),
               func.count(CustomerScore.customer_id))
        .select_from(Customer)
        .outerjoin(CustomerScore, CustomerScore.customer_id == Customer.id)
        .where(Customer.status == "active")
        .group_by(Customer.acquisition_channel)
    )
    channels: list[dict[str, Any]] = []
    for channel, count, spend, clv_sum, scored in session.execute(stmt):
        name = channel or UNKNOWN_CHANNEL
        ltv = (margin * float(spend or 0) + float(clv_sum or 0)) / count if count else 0.0
        cac = config.acquisition_cost.get(name)
        channels.append({
            "channel": name, "customers": int(count), "scored": int(scored),
            "ltv": round(ltv, 2), "cac": cac,
            "ltv_cac": round(ltv / cac, 2) if cac else None,
        })
    channels.sort(key=lambda c: (-c["customers"], c["channel"]))
    return {"channels": channels, "margin": margin,
            "clv_model_id": _active_model_id(session),
            "unconfigured": sorted(c["channel"] for c in channels if c["cac"] is None)}


# -- reading scores -----------------------------------------------------------------------------


def customer_scores(session: Session, customer_id: int) -> dict[str, Any]:
    """The stored scores of a customer (a merged-away id answers for its survivor), with
    the explanations; raises CustomerNotFound or ScoresNotComputed."""
    view = customers.get_customer_360(session, customer_id, show_pii=False)
    canonical = int(view["id"])
    row = session.get(CustomerScore, canonical)
    if row is None:
        raise ScoresNotComputed(
            f"customer {canonical} has no scores yet; run 'siyu scores recompute'")
    data = {c.key: getattr(row, c.key) for c in CustomerScore.__mapper__.column_attrs}
    for key, value in list(data.items()):
        if isinstance(value, dt.datetime):
            data[key] = value.isoformat()
    data["lifecycle_zh"] = scoring.LABELS_ZH.get(row.lifecycle or "", None)
    data["audience_zh"] = scoring.LABELS_ZH.get(row.audience or "", None)
    return data


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def score_card(session: Session, customer_id: int) -> list[dict[str, str]]:
    """The customer's scores as ``[{"label", "value", "why"}]`` rows in Chinese for the 360
    page; an empty list when the customer has not been scored yet."""
    try:
        s = customer_scores(session, customer_id)
    except ScoresNotComputed:
        return []
    why = s["explanations"] or {}

    def money(v: float | None) -> str:
        return "—" if v is None else f"¥{v:,.2f}"

    rfm = (f"{s['rfm_tier']}（R{s['rfm_r']} F{s['rfm_f']} M{s['rfm_m']}）"
           if s["rfm_score"] is not None else (s["rfm_tier"] or "—"))
    fan = f"{s['fan_score']:.1f}" + (" · 铁粉" if s["is_true_fan"] else "")
    return [
        {"label": "RFM 分层", "value": rfm, "why": why.get("rfm", "")},
        {"label": "生命周期", "value": s["lifecycle_zh"] or "—", "why": why.get("lifecycle", "")},
        {"label": "客户终身价值", "value": money(s["clv"]), "why": why.get("clv", "")},
        {"label": "存活概率", "value": _percent(s["p_alive"]), "why": why.get("clv", "")},
        {"label": "铁粉指数", "value": fan, "why": why.get("fan", "")},
        {"label": "人群类型", "value": s["audience_zh"] or "—", "why": why.get("audience", "")},
        {"label": "价值资产", "value": f"{s['value_asset']:.0f}",
         "why": why.get("value_asset", "")},
        {"label": "品牌资产", "value": f"{s['brand_asset']:.0f}",
         "why": why.get("brand_asset", "")},
        {"label": "维系资产", "value": f"{s['retention_asset']:.0f}",
         "why": why.get("retention_asset", "")},
    ]


# -- dashboard summary --------------------------------------------------------------------------


def _bucket_labels(edges: list[float]) -> list[str]:
    def fmt(v: float) -> str:
        return f"{v:,.0f}"

    labels = [f"<{fmt(edges[0])}"] if edges[0] > 0 else []
    labels += [f"{fmt(lo)}–{fmt(hi)}" for lo, hi in itertools.pairwise(edges)]
    labels.append(f"≥{fmt(edges[-1])}")
    return labels


#: The true-fan score's three criteria (seed 004), in :class:`FanConfig`'s order.
FAN_CRITERIA: tuple[str, ...] = ("repeat", "recommend", "tolerance")
FAN_CRITERIA_ZH = {"repeat": "复购", "recommend": "推荐", "tolerance": "包容反馈"}


def summary(session: Session, config: ScoringConfig, *, now: dt.datetime,
            timezone: str = "Asia/Shanghai", months: int = 12) -> dict[str, Any]:
    """The dashboard's numbers: customers by lifecycle stage, RFM tier and audience, true
    fans against the goal (with their count at each month's end and, per criterion, how
    many customers meet it and how many lack only it), the CLV distribution in
    ``config.clv_buckets`` and lifecycle transitions per brand-zone month over the last
    ``months`` months."""
    total = int(session.scalar(select(func.count()).select_from(Customer)
                               .where(Customer.status == "active")) or 0)
    scored_join = (select(CustomerScore).join(Customer, Customer.id == CustomerScore.customer_id)
                   .where(Customer.status == "active").subquery())

    def counts(column: str) -> dict[str, int]:
        col = scored_join.c[column]
        return {k: int(v) for k, v in session.execute(
            select(col, func.count()).group_by(col)) if k is not None}

    lifecycle_counts = counts("lifecycle")
    by_lifecycle = [{"stage": s, "label": scoring.LABELS_ZH[s],
                     "count": lifecycle_counts.get(s, 0)} for s in scoring.LIFECYCLE_STAGES]
    tier_counts = counts("rfm_tier")
    tier_order = [t.name for t in sorted(config.rfm.tiers, key=lambda t: t.min_score)]
    tier_order += sorted(set(tier_counts) - set(tier_order))
    by_tier = [{"tier": t, "count": tier_counts.get(t, 0)} for t in tier_order]
    audience_counts = counts("audience")
    by_audience = [{"audience": a, "label": scoring.LABELS_ZH[a],
                    "count": audience_counts.get(a, 0)} for a in scoring.AUDIENCE_TYPES]
    scored = sum(lifecycle_counts.values())
    fans = int(session.scalar(select(func.count()).select_from(scored_join)
                              .where(scored_join.c.is_true_fan.is_(True))) or 0)
    goal = config.fan.goal

    edges = list(config.clv_buckets)
    clv = scored_join.c.clv
    bounds = ([(None, edges[0])] if edges[0] > 0 else []) + list(
        itertools.pairwise(edges)) + [(edges[-1], None)]
    sums = []
    for lo, hi in bounds:
        cond: ColumnElement[bool] = clv.is_not(None)
        if lo is not None:
            cond = cond & (clv >= lo)
        if hi is not None:
            cond = cond & (clv < hi)
        sums.append(func.coalesce(func.sum(case((cond, 1), else_=0)), 0))
    bucket_counts = session.execute(select(*sums)).one()
    without_clv = scored - sum(int(c) for c in bucket_counts)
    distribution = [{"bucket": label, "count": int(c)}
                    for label, c in zip(_bucket_labels(edges), bucket_counts, strict=True)]

    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    month_keys = []
    y, m = local_now.year, local_now.month
    for _ in range(months):
        month_keys.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    month_keys.reverse()
    first_month = dt.datetime(int(month_keys[0][:4]), int(month_keys[0][5:]), 1, tzinfo=zone)
    def by_month(dimension: str) -> list[tuple[int, str]]:
        """(month index, stage entered) of the dimension's transitions in the window."""
        rows = session.execute(
            select(repo.epoch(StageTransition.at), StageTransition.to_stage)
            .where(StageTransition.dimension == dimension, StageTransition.at >= first_month,
                   StageTransition.at <= now)).all()
        if not rows:
            return []
        days = local_days(np.array([r[0] for r in rows], dtype=np.float64), timezone)
        position = {k: i for i, k in enumerate(month_keys)}
        out = []
        for day, (_at, stage) in zip(days.tolist(), rows, strict=True):
            key = (EPOCH + dt.timedelta(days=day)).strftime("%Y-%m")
            if key in position:
                out.append((position[key], stage))
        return out

    series = {s: [0] * months for s in scoring.LIFECYCLE_STAGES}
    for i, stage in by_month("lifecycle"):
        if stage in series:
            series[stage][i] += 1
    computed = session.scalar(select(func.max(CustomerScore.computed_at)))

    # Fans at each month's end: today's count less the net gains recorded after it.
    gains = [0] * months
    for i, stage in by_month("fan"):
        gains[i] += 1 if stage == repo.FAN_STAGES[True] else -1
    fan_trend = [fans - sum(gains[i + 1:]) for i in range(months)]

    # What makes the fans: who meets each of the three criteria, and who lacks only one.
    parts = [scored_join.c.fan_repeat > 0, scored_join.c.fan_recommend > 0,
             scored_join.c.fan_tolerance > 0]
    met = [case((p, 1), else_=0) for p in parts]
    n_met = met[0] + met[1] + met[2]
    two = n_met == 2
    criteria_row = session.execute(select(
        *[func.coalesce(func.sum(m), 0) for m in met],
        func.coalesce(func.sum(case((n_met == 3, 1), else_=0)), 0),
        *[func.coalesce(func.sum(case((two & ~p, 1), else_=0)), 0) for p in parts],
    ).where(scored_join.c.fan_repeat.is_not(None))).one()
    criteria = [{"criterion": c, "label": FAN_CRITERIA_ZH[c], "met": int(criteria_row[i]),
                 "only_missing": int(criteria_row[4 + i])}
                for i, c in enumerate(FAN_CRITERIA)]
    return {
        "customers": total, "scored": scored,
        "computed_at": computed.isoformat() if computed else None,
        "by_lifecycle": by_lifecycle, "by_rfm_tier": by_tier, "by_audience": by_audience,
        "true_fans": {"count": fans, "goal": goal,
                      "progress": round(min(fans / goal, 1.0), 4),
                      "trend": {"months": month_keys, "counts": fan_trend},
                      "all_three": int(criteria_row[3]), "criteria": criteria},
        "clv_distribution": {"buckets": distribution, "without_clv": without_clv},
        "transitions": {"months": month_keys, "series": series},
    }
