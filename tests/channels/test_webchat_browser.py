"""The web chat in a real browser: a customer with a signed token says 你好, gets the bot's
reply, asks for a person and sees the hand-off message (worker running in-process)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.channels.config import ChannelSettings
from siyu.channels.webchat.tokens import mint_token
from siyu.config import Settings
from tests.channels.conftest import WEBCHAT_SECRET, live_app

pytestmark = pytest.mark.browser
SCREENSHOT = os.environ.get("SIYU_SCREENSHOT_DIR", "/tmp")


def test_customer_chats_with_the_bot_and_asks_for_a_person(
        browser: Any, wecom_settings: Settings, channel_settings: ChannelSettings,
        engine: Engine, sessions: sessionmaker[Session], adapters: dict[str, Any]) -> None:
    from siyu.kb.demo import seed_demo_kb

    with sessions() as s:  # the demo brand's knowledge base, so the bot can answer
        seed_demo_kb(s)
        s.commit()
    app = create_app(wecom_settings, engine=engine, run_worker=True)
    app.state.channel_settings = channel_settings
    token = mint_token(WEBCHAT_SECRET, {"phone": "13800138000"}, name="林晓雯")
    with live_app(app) as base:
        page = browser.new_page(viewport={"width": 390, "height": 760})
        page.goto(f"{base}/chat?token={token}")
        page.wait_for_selector("#composer:not([hidden])")
        assert "token=" not in page.url  # the token is dropped from the address bar
        # The greeting arrives with the history, just after the composer shows.
        # (Locator waits, not string predicates: the page's CSP forbids eval.)
        expect(page.locator("#who")).to_have_text("您好，林晓雯", timeout=10_000)

        page.fill("#text", "你好")
        page.press("#text", "Enter")
        page.wait_for_selector(".msg-customer >> text=你好")
        page.wait_for_selector(".msg-bot .bubble, .msg-agent .bubble", timeout=15_000)
        first_replies = page.locator(".msg-bot .bubble, .msg-agent .bubble").count()
        assert first_replies >= 1

        page.fill("#text", "转人工")
        page.click("#send")
        page.locator(".msg-bot .bubble, .msg-agent .bubble, .msg-system .bubble").nth(
            first_replies + 1).wait_for(timeout=15_000)
        handoff = page.locator(".msg-bot .bubble, .msg-agent .bubble, .msg-system .bubble"
                               ).last.inner_text()
        assert "人工" in handoff or "客服" in handoff, handoff

        # An agent answers, then the conversation closes with the satisfaction question.
        from siyu.service import service as desk_service

        last_id = int(page.locator(".msg-customer").last.get_attribute("data-id") or 0)
        with sessions() as s:
            from siyu.service.models import Message

            conv_id = int(s.scalars(select(Message.conversation_id)
                                    .where(Message.id == last_id)).one())
            desk_service.post_outbound(s, conversation_id=conv_id, sender="agent",
                                       text="您好，我是客服小陈，已看到您的订单，马上为您处理。")
            desk_service.post_outbound(s, conversation_id=conv_id, sender="system",
                                       text="请为本次服务打分（1-5 分）", payload={"csat": True})
            s.commit()
        page.wait_for_selector(".msg-agent >> text=客服小陈")
        page.wait_for_selector(".csat button")
        page.click(".csat button[data-score='5']")
        page.wait_for_selector(".msg-customer >> text=5")
        assert page.locator(".csat button:disabled").count() == 5
        page.screenshot(path=f"{SCREENSHOT}/siyu-webchat.png", full_page=True)

        # Reloading shows the same conversation from the server, each message once.
        page.reload()
        page.wait_for_selector(".msg-customer >> text=转人工")
        assert page.locator(".msg-customer >> text=你好").count() == 1
        page.close()


def test_phone_login_form_and_embed_snippet(
        browser: Any, wecom_settings: Settings, channel_settings: ChannelSettings,
        engine: Engine, sessions: sessionmaker[Session]) -> None:
    app = create_app(wecom_settings, engine=engine)
    app.state.channel_settings = channel_settings
    with live_app(app) as base:
        page = browser.new_page(viewport={"width": 390, "height": 760})
        page.goto(f"{base}/chat")
        page.wait_for_selector("#phone-form:not([hidden])")
        page.fill("#phone", "12345")
        page.click("#send-code")
        expect(page.locator("#login-error")).not_to_have_text("")
        assert page.inner_text("#login-error") == "请输入正确的手机号"
        page.screenshot(path=f"{SCREENSHOT}/siyu-webchat-login.png")

        page.set_content(f'<html><body><h1>品牌官网</h1><script src="{base}/chat/embed.js" '
                         'data-token="abc"></script></body></html>')
        page.click("text=在线客服")
        frame = page.wait_for_selector("iframe[title='在线客服']")
        assert frame.get_attribute("src") == f"{base}/chat?token=abc"
        page.close()
