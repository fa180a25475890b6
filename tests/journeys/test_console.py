"""The journey card on the customer 360 and the dashboard's journey funnel and scenario
charts (TestClient), and in a real browser a scenario appearing on the 360 seconds after the
customer writes in the web chat (the worker running in the served process)."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.channels.config import ChannelSettings
from siyu.channels.webchat.tokens import mint_token
from siyu.config import Settings
from siyu.customers import service as customers
from siyu.customers.identity import IdentityRef
from siyu.events.service import ingest
from siyu.jobs import service as jobs
from siyu.journeys import service
from siyu.journeys.schedule import CUSTOMERS_JOB
from siyu.service import bot
from siyu.service import service as desk
from tests.channels.conftest import (  # noqa: F401
    WEBCHAT_SECRET,
    channel_settings,
    live_app,
    sms_api,
    vector,
    wecom_api,
    wecom_settings,
)
from tests.console.conftest import Login, MakeUser, login, make_user, sign_in_at  # noqa: F401

pytestmark = pytest.mark.usefixtures("world")


def _brand(sessions: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    """Three customers: 林晓雯 bought PRO ×1 27 days ago (售后; the cycle ends in 3 days) and
    says she wants one for her mother; 王强 joined the group and complained; 赵敏 only
    added."""
    now = dt.datetime.now(dt.UTC)
    with sessions() as s:
        ids = customers.upsert_customers(s, [
            {"id": ref, "name": name, "identities": [{"kind": "phone", "value": phone}]}
            for ref, name, phone in (("C-LIN", "林晓雯", "13800000061"),
                                     ("C-WANG", "王强", "13800000062"),
                                     ("C-ZHAO", "赵敏", "13800000063"))],
            settings=settings).customer_ids
        ingest(s, "orders", [{"id": "O-LIN-1", "customer_id": "C-LIN",
                              "ts": (now - dt.timedelta(days=27)).isoformat(), "amount": 199.0,
                              "items": [{"sku": "PRO", "quantity": 1}]}], settings=settings)
        ingest(s, "events", [{"id": "g-wang", "customer_id": "C-WANG", "type": "join_group",
                              "ts": (now - dt.timedelta(days=2)).isoformat()}], settings=settings)
        s.commit()
    for phone, text, ext in (("+8613800000061", "想给我妈也买一盒", "w-1"),
                             ("+8613800000062", "质量太差要投诉", "w-2")):
        with sessions() as s:
            result = desk.receive_inbound(s, channel="webchat", identities=[
                IdentityRef("phone", phone)], text=text, external_id=ext)
            s.commit()
        with sessions() as s:
            bot.handle_inbound(s, result.message_id)
            s.commit()
    jobs.run_due(sessions, names={CUSTOMERS_JOB})
    with sessions() as s:
        service.recompute(s, now=dt.datetime.now(dt.UTC))  # the hourly run: 赵敏 gets 加微
        s.commit()
    return dict(zip(("lin", "wang", "zhao"), ids, strict=True))


def test_the_360_card_shows_the_stage_and_each_scenario_with_its_why(
        app_client: TestClient, login: Login, make_user: MakeUser,  # noqa: F811
        sessions: sessionmaker[Session], settings: Settings) -> None:
    make_user("agent", "agent")
    ids = _brand(sessions, settings)
    client = login("agent")
    html = client.get(f"/customers/{ids['lin']}").text
    card = html.split('id="panel-journey"')[1].split("</section>")[0]
    assert "旅程与场景" in html and "旅程阶段" in card and "<strong>售后</strong>" in card
    assert "<strong>食用周期结束</strong>" in card and "<strong>帮亲友购买</strong>" in card
    assert "订单 O-LIN-1 的「益生菌冻干粉 30 条」×1，预计 3 天后吃完" in card
    assert "客户在网页聊天说「想给我妈也买一盒」" in card
    wang = client.get(f"/customers/{ids['wang']}").text.split('id="panel-journey"')[1]
    assert "<strong>入群</strong>" in wang and "<strong>投诉（投诉中）</strong>" in wang
    assert "客户在网页聊天说「质量太差要投诉」" in wang
    zhao = client.get(f"/customers/{ids['zhao']}").text.split('id="panel-journey"')[1]
    assert "<strong>加微</strong>" in zhao and "当前不在任何细分场景中" in zhao


def test_the_dashboard_shows_the_funnel_conversions_and_scenario_flow(
        app_client: TestClient, login: Login, make_user: MakeUser,  # noqa: F811
        sessions: sessionmaker[Session], settings: Settings) -> None:
    make_user("analyst", "analyst")
    _brand(sessions, settings)
    html = login("analyst").get("/dashboard").text
    funnel = html.split('id="chart-journey-funnel"')[1].split("</section>")[0]
    steps = re.findall(r'class="funnel-step" data-label="([^"]+)" data-value="([^"]+)"', funnel)
    assert steps == [("加微", "3"), ("入群", "2"), ("留存", "1"), ("活跃", "1"), ("转化", "1"),
                     ("售后", "1")]
    conversions = re.findall(r"<td>(\S+) → (\S+)</td><td>([^<]+)</td>", funnel)
    assert conversions[:2] == [("加微", "入群", "66.7%"), ("入群", "留存", "50.0%")]
    assert conversions[-1] == ("转化", "售后", "100.0%")
    scenarios = html.split('id="chart-scenarios"')[1].split("</section>")[0]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>售后</td><td>(\d+)</td><td>(\d+)</td>"
                      r"<td>(\d+)</td></tr>", scenarios)
    assert dict((name, (int(m), int(e), int(x))) for name, m, e, x in rows) == {
        "食用周期结束": (1, 1, 0), "帮亲友购买": (1, 1, 0), "换购": (0, 0, 0),
        "退换货": (0, 0, 0), "投诉": (1, 1, 0)}
    # The time chart shows only the days that have data: today, one point per series.
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert today.strftime("%m-%d") in scenarios
    assert scenarios.count('<g class="line"') == 2 and scenarios.count("<circle") == 2


@pytest.mark.browser
def test_a_scenario_appears_on_the_360_after_a_web_chat_message(
        browser: Any, wecom_settings: Settings, channel_settings: ChannelSettings,  # noqa: F811
        engine: Engine, sessions: sessionmaker[Session], make_user: MakeUser) -> None:  # noqa: F811
    make_user("agent", "agent")
    with sessions() as s:
        cid = customers.upsert_customers(s, [{"id": "C-WEB", "name": "林晓雯", "identities": [
            {"kind": "phone", "value": "13800138000"}]}], settings=wecom_settings).customer_ids[0]
        s.commit()
    app = create_app(wecom_settings, engine=engine, run_worker=True)
    app.state.channel_settings = channel_settings
    token = mint_token(WEBCHAT_SECRET, {"phone": "13800138000"}, name="林晓雯")
    with live_app(app) as base:
        staff = browser.new_context(locale="zh-CN")
        console = staff.new_page()
        sign_in_at(console, f"{base}/customers/{cid}", "agent")
        card = console.locator("#panel-journey")
        assert "帮亲友购买" not in card.inner_text()

        chat = browser.new_page(viewport={"width": 390, "height": 760})
        chat.goto(f"{base}/chat?token={token}")
        chat.wait_for_selector("#composer:not([hidden])")
        chat.fill("#text", "想给我妈也买一盒")
        chat.press("#text", "Enter")
        chat.wait_for_selector(".msg-customer >> text=想给我妈也买一盒")
        sent = time.monotonic()

        # The bot recognises the intent, the recompute job runs in the served process; the
        # agent reloads the 360 until the scenario shows (within seconds).
        while True:
            console.reload()
            text = card.inner_text()
            if "帮亲友购买" in text or time.monotonic() - sent > 30:
                break
            time.sleep(0.5)
        row = card.locator("tr", has_text="帮亲友购买")
        assert row.count() == 1, text
        assert "客户在网页聊天说「想给我妈也买一盒」" in row.locator(".why").inner_text()
        assert card.locator("tr", has_text="旅程阶段").locator("strong").inner_text() == "加微"
        console.screenshot(path="/tmp/siyu-journey-360.png", full_page=True)
        chat.close()
        staff.close()
