"""A visitor flooding the web chat (issue 11): throttled per chat visitor with a Chinese
notice, counted in the database; the agent's conversation page shows the newest messages and
pages back through the rest (it used to show the first 200 only)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.auth.service import create_user
from siyu.channels import desk
from siyu.channels.config import ChannelSettings
from siyu.channels.webchat.tokens import mint_token
from siyu.config import Settings
from siyu.customers.identity import IdentityRef
from siyu.service.models import Conversation, Message
from tests.channels.conftest import WEBCHAT_SECRET, live_app
from tests.channels.test_webchat_messages import start
from tests.console.conftest import sign_in_at

PHONE = "13800138000"


def _flood(post: Any, n: int) -> list[Any]:
    return [post({"text": f"刷屏{i:03d}", "client_id": f"flood-{i:04d}"}) for i in range(n)]


def _a_minute_passes(sessions: sessionmaker[Session]) -> None:
    """Age every stored message by 61 s: the same as waiting out the window."""
    with sessions() as s:
        for message in s.scalars(select(Message)):
            message.created_at -= dt.timedelta(seconds=61)
        s.commit()


def test_a_flood_of_500_messages_is_throttled_with_a_chinese_notice(
        chan_client: TestClient, sessions: sessionmaker[Session],
        channel_settings: ChannelSettings) -> None:
    headers = start(chan_client)
    answers = _flood(lambda body: chan_client.post("/chat/api/messages", headers=headers,
                                                   json=body), 500)
    limit = channel_settings.webchat_messages_per_minute
    assert [r.status_code for r in answers[:limit]] == [200] * limit
    refused = answers[limit:]
    assert {r.status_code for r in refused} == {429}
    body = refused[-1].json()
    assert body["error"] == "too_many_requests"
    assert "太频繁" in body["message"] and "秒后再发" in body["message"]
    assert 1 <= body["details"]["retry_after"] <= 60
    with sessions() as s:
        assert s.scalar(select(Message.id).where(Message.text == f"刷屏{limit:03d}")) is None
        stored = list(s.scalars(select(Message.text).where(Message.direction == "in")))
    assert len(stored) == limit
    # A re-sent message (same client_id, flaky network) is answered, not refused.
    again = chan_client.post("/chat/api/messages", headers=headers,
                             json={"text": "刷屏000", "client_id": "flood-0000"})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # Another visitor is not throttled by this one.
    other = start(chan_client, phone="13900139000")
    assert chan_client.post("/chat/api/messages", headers=other,
                            json={"text": "你好", "client_id": "other-0001"}).status_code == 200
    _a_minute_passes(sessions)
    after = chan_client.post("/chat/api/messages", headers=headers,
                             json={"text": "转人工", "client_id": "handoff-0001"})
    assert after.status_code == 200, after.text


def test_the_limit_is_counted_in_the_database_so_every_process_agrees(
        chan_client: TestClient, wecom_settings: Settings, channel_settings: ChannelSettings,
        engine: Engine) -> None:
    headers = start(chan_client)
    second = create_app(wecom_settings, engine=engine)  # another server process' app
    second.state.channel_settings = channel_settings
    limit = channel_settings.webchat_messages_per_minute
    with TestClient(second) as other:
        clients = [chan_client, other]
        answers = [clients[i % 2].post("/chat/api/messages", headers=headers,
                                       json={"text": f"m{i}", "client_id": f"two-procs-{i:03d}"})
                   for i in range(limit + 5)]
    assert [r.status_code for r in answers].count(200) == limit



@pytest.mark.browser
def test_flooded_conversation_shows_the_newest_messages_and_the_handoff(
        browser: Any, wecom_settings: Settings, channel_settings: ChannelSettings,
        engine: Engine, sessions: sessionmaker[Session], adapters: dict[str, Any]) -> None:
    # A long history first: 300 messages from hours ago (the page used to stop at 200).
    with sessions() as s:
        create_user(s, "xiaochen", "agent-password-123", "agent", display_name="小陈")
        first = desk.receive_inbound(s, channel="webchat",
                                     identities=[IdentityRef("phone", "+86" + PHONE)],
                                     text="你好", external_id="old-0000")
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
        s.add_all(Message(conversation_id=first.conversation_id, direction="in",
                          channel="webchat", sender="customer", text=f"旧消息{i:03d}",
                          payload={}, status="received", external_id=f"old-{i + 1:04d}",
                          created_at=long_ago) for i in range(300))
        s.execute(update(Message).values(created_at=long_ago))
        s.commit()
        conv_id = first.conversation_id

    app = create_app(wecom_settings, engine=engine, run_worker=True)
    app.state.channel_settings = channel_settings
    token = mint_token(WEBCHAT_SECRET, {"phone": PHONE}, name="林晓雯")
    with live_app(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        session = http.post("/chat/api/session", json={"token": token}).json()["session"]
        answers = _flood(lambda body: http.post("/chat/api/messages", json=body,
                                                headers={"X-Siyu-Chat": session}), 500)
        codes = [r.status_code for r in answers]
        assert codes.count(200) == channel_settings.webchat_messages_per_minute
        assert codes.count(429) == 500 - codes.count(200)

        # The visitor's page, still within the minute: the message is refused, in Chinese.
        visitor = browser.new_context(viewport={"width": 390, "height": 760}).new_page()
        visitor.goto(f"{base}/chat?token={token}")
        visitor.wait_for_selector("#composer:not([hidden])")
        visitor.fill("#text", "还有人吗")
        visitor.press("#text", "Enter")
        notice = visitor.locator(".msg-system .bubble", has_text="太频繁")
        notice.wait_for(timeout=15_000)
        assert "秒后再发" in notice.inner_text()

        # A minute later the hand-off request goes through and the bot hands over.
        _a_minute_passes(sessions)
        visitor.fill("#text", "转人工")
        visitor.press("#text", "Enter")
        deadline = time.monotonic() + 30
        while True:
            with sessions() as s:
                conv = s.get(Conversation, conv_id)
                assert conv is not None
                if conv.status == "waiting":
                    break
            assert time.monotonic() < deadline, "the hand-off never reached the queue"
            time.sleep(0.3)

        agent = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        sign_in_at(agent, f"{base}/service", "xiaochen", "agent-password-123")
        agent.goto(f"{base}/service/conversations/{conv_id}")
        messages = agent.locator("#messages .msg-text")
        texts = messages.all_inner_texts()
        assert "转人工" in texts[-5:], texts[-5:]
        assert "刷屏019" in texts and "旧消息000" not in texts
        assert agent.locator("#handoff-reason").is_visible()
        expect(messages.last).to_be_in_viewport()  # the list opens scrolled to its end
        count = agent.inner_text("#message-count")
        assert "显示最新的 50 条" in count, count
        agent.screenshot(path="/tmp/siyu-flood-agent.png", full_page=True)

        # Paging back reaches the oldest messages; the page then stops reloading itself.
        for _ in range(10):
            if "旧消息000" in agent.locator("#messages .msg-text").all_inner_texts():
                break
            agent.click("#older-messages")
            agent.wait_for_selector("#messages[data-live='0']")
        oldest = agent.locator("#messages .msg-text").all_inner_texts()
        assert oldest[:2] == ["你好", "旧消息000"], oldest[:3]
        assert agent.locator("#older-messages").count() == 0  # the first page: nothing older
        agent.click("#newest-messages")
        agent.wait_for_selector("#messages[data-live='1']")
        assert "转人工" in agent.locator("#messages .msg-text").all_inner_texts()[-5:]
