"""The dashboard page (TestClient) and in a real browser (Chromium via Playwright)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics import service
from siyu.analytics.config import ScoringConfig
from siyu.config import Settings
from siyu.customers import service as customers
from siyu.jobs.models import Job
from tests.analytics.builders import add_customers, add_events, add_orders, end_of_today
from tests.console.conftest import (  # noqa: F401
    PASSWORD,
    LiveServer,
    Login,
    MakeUser,
    csrf_from,
    live_server,
    login,
    make_user,
    sign_in_at,
)

SCREENSHOT = "/tmp/analytics-dashboard.png"


@pytest.fixture
def brand(sessions: sessionmaker[Session], settings: Settings, make_user: MakeUser  # noqa: F811
          ) -> None:
    """Five customers: three repeat buyers, one new buyer, one who never bought; C0 is a
    true fan (4 purchase days, referred C1, shared twice, gave feedback: 40 + 0.3 x 70 +
    0.3 x 25 = 68.5). Scored as of today. Staff: analyst, operator, agent."""
    for role in ("analyst", "operator", "agent"):
        make_user(role, role)
    with sessions() as s:
        add_customers(s, settings, {"id": "C0", "acquisition_channel": "直播"})
        add_customers(s, settings, {"id": "C1", "acquisition_channel": "直播",
                                    "referred_by": "C0"},
                      *({"id": f"C{i}", "acquisition_channel": ch}
                        for i, ch in ((2, "门店"), (3, "门店"), (4, "App"))))
        add_orders(s, settings, "C0", (90, 100.0), (60, 120.0), (30, 90.0), (5, 300.0))
        add_orders(s, settings, "C1", (50, 80.0), (30, 60.0))
        add_orders(s, settings, "C2", (40, 200.0), (25, 210.0))
        add_orders(s, settings, "C3", (3, 50.0))
        add_events(s, settings, "C0", (4, "share_product"), (3, "feedback", {"score": 5}),
                   (2, "invite_friend"))
        s.commit()
    service.recompute_scores(sessions, now=end_of_today(), config=ScoringConfig())


def _customer(sessions: sessionmaker[Session], external_id: str) -> int:
    with sessions() as s:
        return customers.find_by_identity(s, "external_id", external_id)


def test_customer_360_shows_every_score_with_why(app_client: TestClient, login: Login,  # noqa: F811
                                                 sessions: sessionmaker[Session],
                                                 settings: Settings, brand: None) -> None:
    html = login("agent").get(f"/customers/{_customer(sessions, 'C0')}").text
    card = html.split('id="panel-scores"')[1].split("</section>")[0]
    for label in ("RFM 分层", "生命周期", "客户终身价值", "存活概率", "铁粉指数", "人群类型",
                  "价值资产", "品牌资产", "维系资产"):
        assert f"<th>{label}</th>" in card, label
    assert "68.5 · 铁粉" in card
    assert card.count('class="muted small why"') >= 8
    # A customer who was never scored gets the hint, not an error.
    with sessions() as s:
        add_customers(s, settings, {"id": "NEW"})
        s.commit()
    fresh = login("agent").get(f"/customers/{_customer(sessions, 'NEW')}").text
    assert "尚未计算评分" in fresh


def test_dashboard_page_for_roles(app_client: TestClient, login: Login,  # noqa: F811
                                  sessions: sessionmaker[Session], brand: None) -> None:
    page = login("analyst").get("/dashboard")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/dashboard" class="active" aria-current="page">仪表盘</a>' in html
    # no CAC configured: no LTV/CAC ratio chart (the journey funnel is the journeys card)
    journey = html.split('id="chart-journey-funnel"')[1].split('id="chart-ltv"')[0]
    # ... and no stage-change chart: the brand's scores changed no stage in the last 12
    # months, so there is no range with data to chart.
    # (the fans card: progress, criteria and one-short bars; no trend from one scoring)
    assert html.count("<svg") - journey.count("<svg") == 8
    assert "还没有阶段变化" in html
    assert "这里显示铁粉数的月度趋势" in html
    assert 'data-label="达到推荐" data-value="1"' in html
    assert 'data-label="三项都有" data-value="1"' in html
    assert 'data-label="成长期" data-value="3"' in html
    assert 'data-label="获取期" data-value="2"' in html
    assert "1 / 1,000 位铁粉（0.1%）" in html
    assert "重新计算评分" not in html  # analysts read only
    app_client.cookies.clear()
    operator = login("operator")
    page = operator.get("/dashboard")
    response = operator.post("/dashboard/recompute", data={"csrf_token": csrf_from(page.text)},
                             follow_redirects=False)
    assert response.status_code == 303
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(
            Job.name == service.RECOMPUTE_JOB, Job.dedup_key.like("%:manual:%"))) == 1
    refused = operator.post("/dashboard/recompute", data={"csrf_token": "forged"},
                            follow_redirects=False)
    assert refused.status_code == 403
    app_client.cookies.clear()
    agent = login("agent").get("/dashboard")
    assert agent.status_code == 403 and "仪表盘" not in agent.text.split("<main")[0]


@pytest.mark.browser
def test_dashboard_renders_its_charts(browser: Browser, live_server: LiveServer,  # noqa: F811
                                      sessions: sessionmaker[Session], brand: None) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in_at(page, f"{live_server.url}/dashboard", "analyst")
    # The journeys domain's cards (funnel, scenarios) have their own tests.
    expect(page.locator("section:not([id^=chart-journey]):not(#chart-scenarios) svg.chart")
           ).to_have_count(8)
    lifecycle = page.locator("#chart-lifecycle g.bar")
    expect(lifecycle).to_have_count(6)
    expect(page.locator('#chart-lifecycle g.bar[data-label="成长期"] text.value')).to_have_text("3")
    expect(page.locator('#chart-tiers g.bar[data-label="粉丝"]')).to_have_attribute(
        "data-value", re.compile(r"^\d+$"))
    expect(page.locator("#chart-fans .progress text.value")).to_have_text(
        "1 / 1,000 位铁粉（0.1%）")
    expect(page.locator('#fan-criteria g.bar[data-label="铁粉"] text.value')).to_have_text("1")
    expect(page.locator("#fan-near g.bar")).to_have_count(3)
    expect(page.locator("#chart-clv g.bin")).to_have_count(7)
    expect(page.locator("#chart-transitions .empty")).to_have_text("还没有阶段变化。")
    expect(page.locator("#ltv-table tbody tr")).to_have_count(3)
    expect(page.locator("#kpi-customers")).to_have_text("5")
    page.screenshot(path=SCREENSHOT, full_page=True)

    # The customer 360 page shows every score with its one-line why.
    page.goto(f"{live_server.url}/customers/{_customer(sessions, 'C0')}")
    card = page.locator("#panel-scores")
    expect(card.locator("tr")).to_have_count(9)
    expect(card.locator("tr", has_text="铁粉指数").locator("strong")).to_have_text("68.5 · 铁粉")
    expect(card.locator("tr", has_text="生命周期").locator(".why")).not_to_be_empty()
    context.close()
