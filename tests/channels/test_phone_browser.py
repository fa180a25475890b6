"""The phone simulator and the agent's screen pop in a real browser, on a seeded demo: the
demo customer whose payment failed minutes ago calls; the first thing said names that
payment; 转人工 transfers to the skill group of her topic and to her own advisor, whose
desk opens the call with her 360 and the transcript."""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

import pytest
from playwright.sync_api import expect
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.auth.service import create_user
from siyu.channels.config import ChannelSettings
from siyu.channels.phone.models import PhoneCall
from siyu.config import Settings
from siyu.service.models import Conversation
from tests.channels.conftest import live_app
from tests.console.conftest import PASSWORD, sign_in_at

pytestmark = pytest.mark.browser
SCREENSHOT = os.environ.get("SIYU_SCREENSHOT_DIR", "/tmp")
PAGE = "/service/phone-simulator"


def _demo(sessions: sessionmaker[Session], settings: Settings) -> str:
    """A small seeded demo (the showcase's 林晓雯 failed to pay 3 minutes ago) with its
    knowledge base and skill groups; returns the demo staff password."""
    from siyu.demo import generator
    from siyu.kb.demo import seed_demo_kb
    from siyu.service.demo import seed_agents

    result = generator.seed_demo(sessions, settings, customers=100, seed=42,
                                 now=dt.datetime.now(dt.UTC))
    with sessions() as s:
        seed_demo_kb(s)
        seed_agents(s)
        create_user(s, "sim", PASSWORD, "admin", display_name="演示管理员")
        s.commit()
    assert result.password
    return result.password


def test_a_demo_call_names_the_failed_payment_transfers_and_pops_the_agent_screen(
        browser: Any, settings: Settings, engine: Engine,
        sessions: sessionmaker[Session]) -> None:
    staff_password = _demo(sessions, settings)
    app = create_app(settings, engine=engine)
    app.state.channel_settings = ChannelSettings(
        phone_secret=SecretStr("demo-phone-secret-0123456789"), phone_demo=True)
    with live_app(app) as base:
        # 陈静 (advisor01), 林晓雯's own advisor, is at her desk and online.
        desk = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        agent = desk.new_page()
        agent.set_default_timeout(15_000)
        sign_in_at(agent, f"{base}/service", "advisor01", staff_password)
        agent.click("#go-online")
        expect(agent.locator("#agent-status")).to_have_text("在线")

        sim = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        page = sim.new_page()
        page.set_default_timeout(15_000)
        sign_in_at(page, f"{base}{PAGE}", "sim")
        page.select_option("#number", "13800138000")
        page.click("#start")
        first = page.locator("#actions li.action-speak").first
        expect(first).to_contain_text("776元")
        expect(first).to_contain_text("没有成功")
        expect(page.locator("#actions li.action-listen")).to_have_count(1)
        expect(page.locator("#call-status")).to_have_text("机器人应答中")

        page.fill("#say-text", "转人工")
        page.click("#say")
        transfer = page.locator("#actions li[data-type='transfer']")
        expect(transfer).to_have_count(1)
        expect(transfer).to_contain_text("陈静")
        expect(page.locator("#call-status")).to_have_text("已转人工")
        page.screenshot(path=f"{SCREENSHOT}/siyu-phone-simulator.png", full_page=True)
        with sessions() as s:
            call = s.scalars(select(PhoneCall)).one()
            conv = s.get(Conversation, call.conversation_id)
            assert conv is not None and call.customer_id == 1
            queue = conv.skill_group
        assert queue == "order"  # a failed payment is an order matter: 订单物流
        assert transfer.get_attribute("data-queue") == queue
        expect(transfer).to_contain_text("订单物流")

        # The advisor's desk (which reloads itself) pops the call: 360 and transcript.
        agent.wait_for_url(re.compile(rf"/service/conversations/{conv.id}$"), timeout=20_000)
        expect(agent.locator("#customer-panel h2")).to_have_text("林晓雯")
        expect(agent.locator("#customer-tier")).to_have_text("黑金")
        expect(agent.locator("#messages .sender-customer .msg-text").last).to_have_text("转人工")
        expect(agent.locator("#handoff-reason")).to_contain_text("转人工")
        # the call's own transcript, the greeting that named the payment included
        expect(agent.locator("#calls .call-transcript li[data-who='bot']").first
               ).to_contain_text("776元")
        expect(agent.locator("#recent-events .event-type[data-type='payment_failed']")
               ).to_have_count(1)
        agent.screenshot(path=f"{SCREENSHOT}/siyu-phone-screen-pop.png", full_page=True)

        # The caller keeps talking to the advisor: the words join the same conversation.
        page.fill("#say-text", "我想换一张卡付款")
        page.click("#say")
        expect(page.locator("#actions li.carry-on")).to_have_count(1)
        page.click("#hangup")
        expect(page.locator("#call-status")).to_have_text("已结束")
        expect(agent.locator("#messages .sender-customer .msg-text").last).to_have_text(
            "我想换一张卡付款", timeout=20_000)
        desk.close()
        sim.close()
    with sessions() as s:
        call = s.scalars(select(PhoneCall)).one()
        assert call.status == "ended" and call.transferred_at is not None
        assert [t["text"] for t in call.transcript if t["who"] == "caller"] == [
            "转人工", "我想换一张卡付款"]
