"""Console page of the analytics domain: the dashboard (仪表盘) with inline SVG charts.

The page extends the console's ``base.html``; templates live in ``analytics/templates``
and render through an overlay of the console's Jinja environment (same filters and
globals). The numbers come from :func:`siyu.analytics.service.summary` and
:func:`~siyu.analytics.service.ltv_cac`; the charts from :mod:`siyu.kit.charts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from siyu.analytics import service
from siyu.analytics.config import load_config
from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.panels import register_customer_panel
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.db import utcnow
from siyu.journeys import console as journeys_console
from siyu.kit import charts, labels
from siyu.kit.web import get_session

_HERE = Path(__file__).resolve().parent
PERMISSION = "analytics.read"

register_nav("仪表盘", "/dashboard", PERMISSION, order=5)
# Every score with its one-line "why" on the customer 360 page.
register_customer_panel("scores", "客户评分", service.score_card, "customers.read", order=10,
                        empty="尚未计算评分（导入数据后自动重算，或运行 siyu scores recompute）")

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def transition_range(transitions: dict[str, Any]) -> tuple[list[str], dict[str, list[int]]]:
    """The months from the first one with a stage change to the last month, and each
    stage's counts over them: a chart of only the range that has data (a young brand's
    "last 12 months" would start with months of zeros)."""
    months: list[str] = transitions["months"]
    series: dict[str, list[int]] = transitions["series"]
    first = _first_with_data(transitions)
    return months[first:], {stage: values[first:] for stage, values in series.items()}


def _first_with_data(transitions: dict[str, Any]) -> int:
    months, series = transitions["months"], transitions["series"]
    return next((i for i in range(len(months)) if any(v[i] for v in series.values())),
                len(months))


def fan_trend(data: dict[str, Any]) -> tuple[list[str], list[int]]:
    """The true fans at each month's end over the months the stage-change chart shows (the
    range since scores began to be recomputed), ending with the current month."""
    trend = data["true_fans"]["trend"]
    first = min(_first_with_data(data["transitions"]), len(trend["months"]) - 1)
    return trend["months"][first:], trend["counts"][first:]


def dashboard_charts(data: dict[str, Any], ltv: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's charts as SVG markup, from the summary and LTV/CAC reports."""
    months, by_stage = transition_range(data["transitions"])
    series = [charts.Series(labels.label(stage, "lifecycle"), by_stage[stage])
              for stage in ("growth", "maturity", "decline", "churned", "reactivated",
                            "acquisition")]
    with_cac = [c for c in ltv["channels"] if c["ltv_cac"] is not None]
    fans = data["true_fans"]
    fan_months, fan_counts = fan_trend(data)
    return {
        "lifecycle": charts.bar_chart(
            [(row["label"], row["count"]) for row in data["by_lifecycle"]],
            title="各生命周期阶段客户数"),
        "tiers": charts.bar_chart([(row["tier"], row["count"]) for row in data["by_rfm_tier"]],
                                  title="各 RFM 分层客户数", color=charts.PALETTE[4]),
        "audiences": charts.bar_chart(
            [(row["label"], row["count"]) for row in data["by_audience"]],
            title="七类人群客户数", color=charts.PALETTE[6]),
        "fans": charts.progress(fans["count"], fans["goal"], title="铁粉进度", unit=" 位铁粉"),
        "fan_trend": charts.line_chart(
            [m[2:] for m in fan_months], [charts.Series("铁粉数", fan_counts)],
            title="每月末铁粉数", height=200) if len(fan_months) > 1 else None,
        "fan_criteria": charts.bar_chart(
            [(f"达到{c['label']}", c["met"]) for c in fans["criteria"]]
            + [("三项都有", fans["all_three"]), ("铁粉", fans["count"])],
            title="铁粉的三项条件：达到各项的客户数", color=charts.PALETTE[1]),
        "fan_near": charts.bar_chart(
            [(f"只差{c['label']}", c["only_missing"]) for c in fans["criteria"]],
            title="只差一项就满足三项条件的客户数", color=charts.PALETTE[3]),
        "clv": charts.histogram(
            [(row["bucket"], row["count"]) for row in data["clv_distribution"]["buckets"]],
            title="CLV 分布（客户数）"),
        "transitions": charts.stacked_bar_chart(
            [m[2:] for m in months], series, title="每月生命周期阶段变化") if months else None,
        "transition_months": len(months),
        "ltv": charts.bar_chart([(c["channel"], c["ltv"]) for c in ltv["channels"]],
                                title="各获客渠道 LTV", color=charts.PALETTE[1],
                                value_format="¥{}"),
        "ltv_cac": charts.bar_chart([(c["channel"], c["ltv_cac"]) for c in with_cac],
                                    title="各获客渠道 LTV/CAC", color=charts.PALETTE[2],
                                    value_format="{} 倍") if with_cac else None,
    }


@router.get("/dashboard")
def dashboard(
    request: Request,
    user: StaffUser = Depends(permitted(PERMISSION)),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    config = load_config()
    data = service.summary(session, config, now=utcnow(),
                           timezone=request.app.state.settings.timezone)
    ltv = service.ltv_cac(session, config)
    return pages.render(request, user, _HERE / "templates", "analytics/dashboard.html", {
        "data": data, "ltv": ltv, "charts": dashboard_charts(data, ltv),
        "journey": journeys_console.dashboard_charts(
            session, now=utcnow(), timezone=request.app.state.settings.timezone),
        "can_recompute": user.can("customers.write")})


@router.post("/dashboard/recompute")
def recompute(
    request: Request,
    _user: StaffUser = Depends(permitted("customers.write")),
    _csrf: None = Depends(check_csrf),
    session: Session = Depends(get_session),
) -> RedirectResponse:
    service.request_recompute(session)
    request.session["flash"] = {"kind": "ok",
                                "text": "已提交重新计算，后台完成后刷新本页即可看到最新数据"}
    return RedirectResponse("/dashboard", status_code=303)
