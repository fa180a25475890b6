"""Acceptance of the intelligent service desk in a real browser: a customer whose payment
failed five minutes ago opens the web chat and asks something vague; the bot's first reply
names that payment; they ask for a person; the conversation waits in the agent inbox with
its context; the agent (signed in to the console) replies, the customer sees it; the agent
closes, the satisfaction question arrives, the customer answers and the answer is stored.
Live server with the job worker in-process, Debian chromium."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.auth.service import create_user
from siyu.channels.config import ChannelSettings
from siyu.channels.webchat.tokens import mint_token
from siyu.config import Settings
from siyu.customers.service import upsert_customers
from siyu.events.service import ingest
from siyu.kb.demo import seed_demo_kb
from siyu.service.models import Conversation, CsatAnswer
from tests.channels.conftest import (  # noqa: F401  (channel fixtures)
    WEBCHAT_SECRET,
    adapters,
    channel_settings,
    live_app,
    sms_api,
    vector,
    wecom_api,
    wecom_settings,
)
from tests.console.conftest import sign_in_at

pytestmark = pytest.mark.browser
SCREENSHOT = os.environ.get("SIYU_SCREENSHOT_DIR", "/tmp")
PASSWORD = "agent-password-123"


def test_payment_failed_customer_reaches_an_agent_and_rates_the_service(
        browser: Any, wecom_settings: Settings,  # noqa: F811  (imported fixtures)
        channel_settings: ChannelSettings,  # noqa: F811
        engine: Engine, sessions: sessionmaker[Session],
        adapters: dict[str, Any],  # noqa: F811
) -> None:
    failed_at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(microsecond=0)
    with sessions() as s:
        seed_demo_kb(s)
        upsert_customers(s, [{"id": "C1", "name": "林晓雯", "tier": "VIP", "identities": [
            {"kind": "phone", "value": "13800138000"}]}], settings=wecom_settings)
        ingest(s, "events", [{"id": "e-pay", "type": "payment_failed", "ts": failed_at,
                              "identities": [{"kind": "external_id", "value": "C1"}],
                              "properties": {"reason": "银行卡余额不足", "amount": 776.0}}],
               settings=wecom_settings)
        create_user(s, "xiaochen", PASSWORD, "agent", display_name="小陈")
        s.commit()
    local = failed_at.astimezone(ZoneInfo(wecom_settings.timezone)).strftime("%H:%M")

    app = create_app(wecom_settings, engine=engine, run_worker=True)
    app.state.channel_settings = channel_settings
    token = mint_token(WEBCHAT_SECRET, {"phone": "13800138000"}, name="林晓雯")
    with live_app(app) as base:
        customer_ctx = browser.new_context(viewport={"width": 390, "height": 760})
        chat = customer_ctx.new_page()
        chat.goto(f"{base}/chat?token={token}")
        chat.wait_for_selector("#composer:not([hidden])")

        # A vague question: the first bot reply is about the failed payment, with its time.
        chat.fill("#text", "怎么回事啊")
        chat.press("#text", "Enter")
        chat.wait_for_selector(".msg-bot .bubble", timeout=15_000)
        first = chat.locator(".msg-bot .bubble").last.inner_text()
        assert "付款" in first and local in first, first

        bot_count = chat.locator(".msg-bot .bubble, .msg-system .bubble").count()
        chat.fill("#text", "转人工")
        chat.press("#text", "Enter")
        # (A locator wait, not a string predicate: the page's CSP forbids eval.)
        chat.locator(".msg-bot .bubble, .msg-system .bubble").nth(bot_count).wait_for(
            timeout=15_000)

        # The agent signs in to the console and finds the conversation in the queue.
        agent_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        desk = agent_ctx.new_page()
        sign_in_at(desk, f"{base}/service", "xiaochen", PASSWORD)
        row = desk.locator("#queue-table tbody tr").first
        assert "转人工" in row.locator(".handoff-reason").inner_text()
        row.locator("a").click()
        desk.wait_for_url(re.compile(r"/service/conversations/\d+$"))
        conv_id = int(desk.url.rsplit("/", 1)[1])
        # The context beside it: who, the failed payment, the bot's decisions.
        assert "林晓雯" in desk.inner_text("#customer-panel")
        event = desk.locator("#recent-events [data-type='payment_failed']")
        assert event.inner_text() == "支付失败"
        assert "怎么回事啊" in desk.inner_text("#messages")
        assert desk.locator("#decisions [data-action='handoff']").inner_text() == "转人工"

        desk.fill("#reply-text", "您好，我是客服小陈，这就帮您重新发起付款。")
        desk.click("#send-reply")
        desk.wait_for_selector(".flash >> text=已发送")
        chat.wait_for_selector(".msg-agent >> text=客服小陈", timeout=15_000)

        desk.click("#close")
        desk.wait_for_selector(".flash >> text=会话已结束")
        chat.wait_for_selector(".csat button", timeout=15_000)
        chat.click(".csat button[data-score='5']")
        chat.wait_for_selector(".msg-customer >> text=5")
        chat.screenshot(path=f"{SCREENSHOT}/siyu-desk-chat.png", full_page=True)
        desk.screenshot(path=f"{SCREENSHOT}/siyu-desk-agent.png", full_page=True)

        def stored() -> list[tuple[int, int | None]]:
            with sessions() as s:
                return [(a.score, a.agent_user_id) for a in s.scalars(
                    select(CsatAnswer).where(CsatAnswer.conversation_id == conv_id))]

        deadline = time.monotonic() + 15
        while not stored() and time.monotonic() < deadline:
            time.sleep(0.2)
        with sessions() as s:
            conv = s.get(Conversation, conv_id)
            assert conv is not None and conv.status == "closed" and not conv.csat_pending
            agent_id = conv.assigned_user_id
        assert stored() == [(5, agent_id)]
        customer_ctx.close()
        agent_ctx.close()
