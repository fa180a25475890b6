"""Console parts of the journeys domain: the 旅程与场景 card on the customer 360 (a registered
panel, so the 360 template stays the customers domain's) and the dashboard's journey funnel
and scenario charts (SVG markup from :mod:`siyu.kit.charts`, placed by the dashboard)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from sqlalchemy.orm import Session

from siyu.console.panels import register_customer_panel
from siyu.journeys import service
from siyu.kit import charts
from siyu.segments.rules import describe_zh

PANEL_EMPTY = "尚未计算旅程阶段（订单、事件或消息到达后数秒内自动计算）"


def journey_card(session: Session, customer_id: int) -> list[dict[str, str]]:
    """The 360 card's rows: the stage (since when, and the rule that put the customer
    there), then each active scenario with its one-line why (which order, which message)."""
    view = service.customer_journey(session, customer_id)
    if view["stage"] is None:
        return []
    since = dt.datetime.fromisoformat(view["stage_since"])
    rule = dict(service.stage_rules(session)).get(view["stage"])
    why = f"自 {service.local_moment(since)} 起"
    if rule is not None:
        why += f"；{describe_zh(rule)}"
    rows = [{"label": "旅程阶段", "value": view["stage_label"] or view["stage"], "why": why}]
    for s in view["scenarios"]:
        entered = service.local_moment(dt.datetime.fromisoformat(s["entered_at"]))
        rows.append({"label": f"场景 · {s['stage_label'] or s['stage']}",
                     "value": s["name"] + (f"（{s['tag']}）" if s["tag"] else ""),
                     "why": f"{s['why']} · {entered} 进入"})
    if len(rows) == 1:
        rows.append({"label": "场景", "value": "暂无", "why": "当前不在任何细分场景中"})
    return rows


register_customer_panel("journey", "旅程与场景", journey_card, "customers.read", order=5,
                        empty=PANEL_EMPTY)


def _totals(series: Any, zero: list[int]) -> list[int]:
    return [sum(col) for col in zip(*series, strict=True)] or zero


def _trim(days: list[dt.date], *series: list[int]) -> int:
    """Index of the first day any series has data (0 when none has)."""
    for i in range(len(days)):
        if any(s[i] for s in series):
            return i
    return 0


def dashboard_charts(session: Session, *, now: dt.datetime, timezone: str) -> dict[str, Any]:
    """The journey funnel (customers reaching each stage, conversion from the stage before),
    stage conversions over time, and scenario members with entries and exits over time —
    each time chart limited to the days that have data."""
    funnel = service.funnel(session)
    steps = [(row["label"], float(row["reached"])) for row in funnel]
    conversions = []
    for before, after in itertools.pairwise(funnel):
        share = after["reached"] / before["reached"] if before["reached"] else None
        conversions.append({"from": before["label"], "to": after["label"], "share": share})
    flow = service.daily_flow(session, now=now, timezone=timezone)
    days: list[dt.date] = flow["days"]
    labels = service.STAGE_LABELS
    zero = [0] * len(days)
    into = {stage: flow["stage_into"].get(stage, zero) for stage in service.STAGE_ORDER[1:]}
    entered_total = _totals(flow["entered"].values(), zero)
    exited_total = _totals(flow["exited"].values(), zero)
    start = _trim(days, *into.values(), entered_total, exited_total)
    shown = [d.strftime("%m-%d") for d in days[start:]]
    has_flow = any(any(v) for v in into.values()) or any(entered_total) or any(exited_total)
    scenarios = service.list_scenarios(session)
    for s in scenarios:
        s["entered"] = sum(flow["entered"].get(s["name"], []))
        s["exited"] = sum(flow["exited"].get(s["name"], []))
    stage_series = [charts.Series(labels[stage], values[start:]) for stage, values in into.items()
                    if any(values[start:])]
    return {
        "funnel": charts.funnel(steps, title="旅程漏斗：到达各阶段的客户数"),
        "conversions": conversions,
        "stage_flow": charts.stacked_bar_chart(shown, stage_series, title="每日进入各阶段的客户数")
        if has_flow and stage_series else None,
        "scenarios": scenarios,
        "scenario_members": charts.bar_chart(
            [(s["name"], s["members"]) for s in scenarios], title="各场景当前客户数",
            color=charts.PALETTE[3]) if scenarios else None,
        "scenario_flow": charts.line_chart(
            shown, [charts.Series("进入", entered_total[start:], charts.PALETTE[1]),
                    charts.Series("退出", exited_total[start:], charts.PALETTE[3])],
            title="每日进入与退出场景的客户数")
        if any(entered_total) or any(exited_total) else None,
        "flow_range": (days[start].isoformat(), days[-1].isoformat()) if has_flow else None,
    }
