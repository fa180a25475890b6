"""Web chat messages: sending, history, the live stream (over a real server), auth."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.channels import desk
from siyu.channels.config import ChannelSettings
from siyu.channels.webchat import service
from siyu.channels.webchat.tokens import mint_token, read_session
from siyu.config import Settings
from siyu.jobs.models import Job
from tests.channels.conftest import WEBCHAT_SECRET, live_app, row_counts, run_jobs

PHONE = "13800138000"


def start(client: TestClient, phone: str = PHONE) -> dict[str, str]:
    token = mint_token(WEBCHAT_SECRET, {"phone": phone}, name="林晓雯")
    body = client.post("/chat/api/session", json={"token": token}).json()
    return {"X-Siyu-Chat": body["session"]}


def test_message_goes_to_the_service_desk_once_per_client_id(
        chan_client: TestClient, sessions: sessionmaker[Session]) -> None:
    headers = start(chan_client)
    first = chan_client.post("/chat/api/messages", headers=headers,
                             json={"text": " 你好 ", "client_id": "c0ffee-0001"})
    assert first.status_code == 200 and first.json()["duplicate"] is False
    again = chan_client.post("/chat/api/messages", headers=headers,
                             json={"text": " 你好 ", "client_id": "c0ffee-0001"})
    assert again.json() == {**first.json(), "duplicate": True}
    history = chan_client.get("/chat/api/messages", headers=headers).json()
    assert history["customer"] == {"name": "林晓雯"}
    assert [(m["direction"], m["text"]) for m in history["messages"]] == [("in", "你好")]
    with sessions() as s:
        assert list(s.scalars(select(Job.name).where(Job.status == "queued"))) == [
            "service.handle_inbound"]


@pytest.mark.parametrize(("body", "field"), [
    ({"client_id": "c0ffee-0001"}, "text"),
    ({"text": "   ", "client_id": "c0ffee-0001"}, "text"),
    ({"text": "x" * 2001, "client_id": "c0ffee-0001"}, "text"),
    ({"text": "你好"}, "client_id"),
    ({"text": "你好", "client_id": "bad id!"}, "client_id"),
])
def test_invalid_message_is_422_and_stores_nothing(
        chan_client: TestClient, sessions: sessionmaker[Session], body: dict[str, Any],
        field: str) -> None:
    headers = start(chan_client)
    before = row_counts(sessions)
    r = chan_client.post("/chat/api/messages", headers=headers, json=body)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == field
    assert row_counts(sessions) == before


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/chat/api/messages"), ("POST", "/chat/api/messages"), ("GET", "/chat/stream"),
])
@pytest.mark.parametrize("session", [None, "forged.session.value"])
def test_chat_routes_need_a_chat_session(chan_client: TestClient,
                                        sessions: sessionmaker[Session], method: str,
                                        path: str, session: str | None) -> None:
    before = row_counts(sessions)
    headers = {"X-Siyu-Chat": session} if session else {}
    params = {"session": session} if session and path == "/chat/stream" else {}
    r = chan_client.request(method, path, headers=headers, params=params,
                            json={"text": "你好", "client_id": "c0ffee-0001"}
                            if method == "POST" else None)
    assert r.status_code == 401
    assert r.json()["error"] == "chat_unauthorized"
    assert row_counts(sessions) == before


def test_poll_replies_waits_for_an_older_reply_still_queued(
        chan_client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    from siyu.auth.secrets import purpose_key
    from siyu.service import service as desk_service

    headers = start(chan_client)
    chat = read_session(purpose_key(settings, "chat-session").hex(), headers["X-Siyu-Chat"],
                        max_age=60)
    posted = chan_client.post("/chat/api/messages", headers=headers,
                              json={"text": "你好", "client_id": "c0ffee-0002"}).json()
    with sessions() as s:
        conv_id = posted["conversation_id"]
        older = desk_service.post_outbound(s, conversation_id=conv_id, sender="bot", text="一")
        younger = desk_service.post_outbound(s, conversation_id=conv_id, sender="agent",
                                             text="二")
        desk.set_message_status(s, younger, "delivered")
        s.commit()
    seen: set[int] = set()
    with sessions() as s:
        fresh, cursor = service.poll_replies(s, chat.customer_id, 0, seen)
    assert [(m["sender"], m["text"]) for m in fresh] == [("agent", "二")]
    assert cursor < older  # the cursor waits before the queued reply
    with sessions() as s:
        desk.set_message_status(s, older, "delivered")
        s.commit()
    with sessions() as s:
        fresh, cursor = service.poll_replies(s, chat.customer_id, cursor, seen)
    assert [(m["sender"], m["text"]) for m in fresh] == [("bot", "一")]
    assert cursor == younger
    with sessions() as s:
        assert service.poll_replies(s, chat.customer_id, cursor, seen) == ([], younger)
    history = chan_client.get("/chat/api/messages", headers=headers).json()
    assert [m["text"] for m in history["messages"]] == ["你好", "一", "二"]
    assert history["cursor"] == younger


def read_events(base: str, session: str, after: int, want: int, timeout: float = 20.0
                ) -> list[dict[str, Any]]:
    """Read ``want`` message events from the live stream."""
    found: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{base}/chat/stream",
                      params={"session": session, "after": after, "timeout": int(timeout)},
                      timeout=timeout + 5) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "message":
                found.append(json.loads(line[6:]))
                if len(found) >= want:
                    break
            elif line.startswith("data: ") and event == "end":
                break
    return found


def test_bot_reply_arrives_on_the_live_stream(
        wecom_settings: Settings, channel_settings: ChannelSettings, engine: Engine,
        sessions: sessionmaker[Session], adapters: dict[str, Any]) -> None:
    app = create_app(wecom_settings, engine=engine, run_worker=True)
    app.state.channel_settings = channel_settings
    with live_app(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        token = mint_token(WEBCHAT_SECRET, {"phone": PHONE})
        session = http.post("/chat/api/session", json={"token": token}).json()["session"]
        headers = {"X-Siyu-Chat": session}
        cursor = http.get("/chat/api/messages", headers=headers).json()["cursor"]
        started = time.monotonic()
        sent = http.post("/chat/api/messages", headers=headers,
                         json={"text": "你好", "client_id": "c0ffee-0003"})
        assert sent.status_code == 200
        events = read_events(base, session, cursor, want=1)
        assert time.monotonic() - started < 15
    assert len(events) == 1
    reply = events[0]
    assert reply["direction"] == "out" and reply["sender"] in ("bot", "system", "agent")
    assert reply["text"]
    with sessions() as s:
        status = desk.load_outbound(s, reply["id"])
        assert status is not None and status.status == "delivered"
    assert run_jobs(sessions).failed == 0


@pytest.mark.parametrize("last_event_id", ["9" * 40, str(2**63)])
def test_stream_refuses_an_out_of_range_last_event_id(chan_client: TestClient,
                                                      last_event_id: str) -> None:
    session = start(chan_client)["X-Siyu-Chat"]
    r = chan_client.get(f"/chat/stream?session={session}&timeout=1",
                        headers={"Last-Event-ID": last_event_id})
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["message"]
    r = chan_client.get(f"/chat/stream?session={session}&timeout=1&after={'9' * 30}")
    assert r.status_code == 422
