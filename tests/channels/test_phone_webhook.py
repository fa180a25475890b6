"""The phone webhook: signed events (forged, stale and replayed ones store nothing),
identification by the calling number, the bot answering final utterances in words fit for
speech while partial ones never act, and 转人工 transferring into the agent desk."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.channels.config import ChannelSettings
from siyu.channels.phone.models import PhoneCall
from siyu.channels.phone.protocol import sign
from siyu.config import Settings
from siyu.customers.models import Customer, Identity
from siyu.customers.service import upsert_customers
from siyu.db import utcnow
from siyu.events.service import ingest
from siyu.kb.demo import seed_demo_kb
from siyu.service.models import Conversation, Message
from tests.channels.conftest import row_counts
from tests.console.conftest import Login, login, make_user, staff  # noqa: F401

SECRET = "phone-secret-for-tests-0123456789"
URL = "/channels/phone/webhook"
PHONE = "+8613800138000"


@pytest.fixture
def phone_client(settings: Settings, engine: Engine, sessions: sessionmaker[Session]
                 ) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine)
    app.state.channel_settings = ChannelSettings(phone_secret=SecretStr(SECRET),
                                                 phone_max_skew_seconds=300)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def kb(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        seed_demo_kb(s)
        s.commit()


class Caller:
    """Sends signed events for one call."""

    def __init__(self, client: TestClient, call_id: str = "CALL-1") -> None:
        self.client = client
        self.call_id = call_id
        self.n = 0

    def send(self, type_: str, *, timestamp: int | None = None, event_id: str | None = None,
             secret: str = SECRET, **fields: Any) -> Any:
        self.n += 1
        body = json.dumps({"event_id": event_id or f"{self.call_id}-{self.n}",
                           "call_id": self.call_id, "type": type_, **fields},
                          ensure_ascii=False).encode()
        ts = str(timestamp or int(time.time()))
        return self.client.post(URL, content=body, headers={
            "Content-Type": "application/json", "X-Siyu-Timestamp": ts,
            "X-Siyu-Signature": sign(secret, ts, body)})

    def start(self, number: str = PHONE) -> Any:
        return self.send("call.started", **{"from": number, "to": "4008001234"})

    def say(self, text: str, final: bool = True) -> Any:
        return self.send("utterance", text=text, confidence=0.93, final=final)


def _customer_with_failed_payment(sessions: sessionmaker[Session], settings: Settings) -> int:
    with sessions() as s:
        cid = upsert_customers(s, [{"id": "C1", "name": "林晓雯", "gender": "female",
                                    "identities": [{"kind": "phone", "value": "13800138000"}]}],
                               settings=settings).customer_ids[0]
        ingest(s, "events", [{"id": "E-pay", "customer_id": "C1", "type": "payment_failed",
                              "ts": (utcnow() - dt.timedelta(minutes=5)).isoformat(),
                              "properties": {"amount": 776.0, "reason": "银行卡余额不足"}}],
               settings=settings)
        s.commit()
    return cid


def test_forged_stale_and_replayed_events_are_refused_and_store_nothing(
        phone_client: TestClient, sessions: sessionmaker[Session]) -> None:
    caller = Caller(phone_client)
    before = row_counts(sessions)
    forged = caller.send("call.started", secret="guess", **{"from": PHONE})
    assert forged.status_code == 403 and forged.json()["details"]["reason"] == "bad_signature"
    stale = caller.send("call.started", timestamp=int(time.time()) - 3600, **{"from": PHONE})
    assert stale.status_code == 403 and stale.json()["details"]["reason"] == "stale_timestamp"
    unsigned = phone_client.post(URL, content=b'{"type":"call.started"}')
    assert unsigned.status_code == 401
    assert row_counts(sessions) == before

    assert caller.send("call.started", event_id="EV-1", **{"from": PHONE}).status_code == 200
    after = row_counts(sessions)
    replayed = caller.send("utterance", event_id="EV-1", text="转人工")
    assert replayed.status_code == 409 and replayed.json()["details"]["reason"] == "replayed"
    assert row_counts(sessions) == after


def test_a_tampered_body_does_not_verify(phone_client: TestClient) -> None:
    body = json.dumps({"event_id": "x", "call_id": "c", "type": "call.started",
                       "from": PHONE}).encode()
    ts = str(int(time.time()))
    headers = {"X-Siyu-Timestamp": ts, "X-Siyu-Signature": sign(SECRET, ts, body)}
    tampered = body.replace(b"138", b"139")
    assert phone_client.post(URL, content=tampered, headers=headers).status_code == 403
    later = str(int(ts) + 1)
    assert phone_client.post(URL, content=body, headers={**headers, "X-Siyu-Timestamp": later}
                             ).status_code == 403


def test_invalid_events_name_the_field(phone_client: TestClient) -> None:
    caller = Caller(phone_client)
    bad = caller.send("utterance", text="x" * 3000)
    assert bad.status_code == 422 and "text" in bad.text


@pytest.mark.usefixtures("kb")
def test_a_known_caller_hears_about_their_failed_payment_before_saying_anything(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = _customer_with_failed_payment(sessions, settings)
    caller = Caller(phone_client)
    started = caller.start("138 0013 8000")
    assert started.status_code == 200, started.text
    actions = started.json()["actions"]
    assert actions[0]["type"] == "speak"
    first = actions[0]["text"]
    assert first.startswith("林女士您好") and "付款" in first and "776元" in first
    assert "¥" not in first and "（" not in first and "「" not in first
    assert actions[-1]["type"] == "listen"
    with sessions() as s:
        call = s.scalars(select(PhoneCall)).one()
        assert (call.customer_id, call.identified_by, call.from_number) == (cid, "phone", PHONE)


@pytest.mark.usefixtures("kb")
def test_partial_utterances_never_act_and_final_ones_get_spoken_answers(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    _customer_with_failed_payment(sessions, settings)
    caller = Caller(phone_client)
    caller.start()
    before = row_counts(sessions)
    partial = caller.say("转人", final=False)
    assert partial.status_code == 200 and partial.json()["actions"] == []
    counts = row_counts(sessions)
    assert {k: v for k, v in counts.items() if v != before[k]} == {
        "phone_webhook_events": before["phone_webhook_events"] + 1}
    answer = caller.say("我的积分有多少")
    assert answer.status_code == 200
    actions = answer.json()["actions"]
    spoken = [a["text"] for a in actions if a["type"] == "speak"]
    assert spoken and all("http" not in t and "1." not in t for t in spoken)
    assert actions[-1]["type"] in ("listen", "transfer")
    with sessions() as s:
        conv = s.scalars(select(Conversation).where(Conversation.channel == "phone")).one()
        texts = [(m.direction, m.text, m.status) for m in s.scalars(
            select(Message).where(Message.conversation_id == conv.id).order_by(Message.id))]
    assert texts[0][:2] == ("in", "我的积分有多少")
    assert all(status == "delivered" for d, _, status in texts if d == "out")


@pytest.mark.usefixtures("kb")
def test_transfer_to_a_person_puts_the_call_in_the_desk_queue(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = _customer_with_failed_payment(sessions, settings)
    caller = Caller(phone_client)
    caller.start()
    answer = caller.say("转人工")
    actions = answer.json()["actions"]
    assert actions[-1]["type"] == "transfer" and actions[-1]["queue"]
    assert answer.json()["status"] == "transferred"
    with sessions() as s:
        conv = s.scalars(select(Conversation).where(Conversation.channel == "phone")).one()
        assert (conv.customer_id, conv.status) == (cid, "waiting")
        assert conv.handoff_reason
        call = s.scalars(select(PhoneCall)).one()
        assert call.conversation_id == conv.id and call.status == "transferred"
    # After the transfer the caller speaks to a person: the transcript grows, the bot is out.
    later = caller.say("你好，我的付款失败了")
    assert later.json()["actions"] == []
    caller.send("call.answered", agent="agent")
    ended = caller.send("call.ended", duration_seconds=184.5, recording_ref="rec/CALL-1.mp3")
    assert ended.json()["status"] == "ended"
    with sessions() as s:
        call = s.scalars(select(PhoneCall)).one()
        assert call.duration_seconds == 184.5 and call.recording_ref == "rec/CALL-1.mp3"
        whos = [t["who"] for t in call.transcript]
    assert whos[:3] == ["bot", "caller", "bot"] and "caller" in whos[3:]


def test_an_unknown_number_is_a_visitor_until_they_say_something(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    _customer_with_failed_payment(sessions, settings)
    caller = Caller(phone_client, "CALL-2")
    started = caller.start("13900000000")
    assert started.json()["actions"][0]["text"] == "您好，这里是客服中心，请问有什么可以帮您？"
    with sessions() as s:
        assert s.scalars(select(PhoneCall)).one().customer_id is None
        assert s.query(Customer).count() == 1
    caller.say("你好")
    with sessions() as s:
        call = s.scalars(select(PhoneCall)).one()
        holder = s.scalar(select(Identity.customer_id).where(
            Identity.kind == "phone", Identity.value == "+8613900000000"))
        assert call.customer_id == holder and holder is not None
        assert s.query(Customer).count() == 2  # a new visitor, never the known customer


def test_unconfigured_webhook_names_the_setting(settings: Settings, engine: Engine,
                                                sessions: sessionmaker[Session]) -> None:
    app = create_app(settings, engine=engine)
    app.state.channel_settings = ChannelSettings()
    with TestClient(app) as client:
        r = client.post(URL, content=b"{}")
    assert r.status_code == 503 and "SIYU_PHONE_SECRET" in r.text


@pytest.mark.usefixtures("kb")
def test_a_caller_who_says_goodbye_is_asked_for_a_keypad_score_which_is_stored(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    from siyu.service.models import CsatAnswer

    _customer_with_failed_payment(sessions, settings)
    caller = Caller(phone_client)
    caller.start()
    bye = caller.say("好的谢谢，再见").json()
    assert bye["status"] == "csat"
    assert bye["actions"][-1] == {"type": "listen", "input": "dtmf", "max_digits": 1,
                                  "timeout_seconds": 10}
    assert any("按1到5" in a.get("text", "") for a in bye["actions"])
    assert all("🌾" not in a.get("text", "") for a in bye["actions"])
    wrong = caller.send("dtmf", digits="9").json()
    assert wrong["status"] == "csat"
    done = caller.send("dtmf", digits="4").json()
    assert done["actions"][-1] == {"type": "hangup"}
    with sessions() as s:
        call = s.scalars(select(PhoneCall)).one()
        answer = s.scalars(select(CsatAnswer)).one()
        assert call.csat == 4 and answer.score == 4
        assert answer.conversation_id == call.conversation_id


@pytest.mark.usefixtures("kb", "staff")
def test_the_agent_page_of_a_transferred_call_shows_the_360_transcript_and_reasons(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings,
        login: Login) -> None:  # noqa: F811
    _customer_with_failed_payment(sessions, settings)
    caller = Caller(phone_client)
    caller.start()
    caller.say("我的付款怎么失败了")
    caller.say("转人工")
    with sessions() as s:
        conv = s.scalars(select(Conversation).where(Conversation.channel == "phone")).one()
    page = login("agent").get(f"/service/conversations/{conv.id}")
    assert page.status_code == 200
    assert "林晓雯" in page.text  # the customer 360
    assert "我的付款怎么失败了" in page.text and "转人工" in page.text  # the transcript
    assert "客户要求转人工" in page.text  # the bot's reason
    assert 'id="calls"' in page.text and "776元" in page.text  # the call's greeting
    inbox = login("agent").get("/service")
    assert f'data-conversation="{conv.id}"' in inbox.text  # in the queue like a chat


@pytest.mark.usefixtures("kb", "staff")
def test_an_agent_cannot_type_into_a_call_and_is_told_why(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings,
        login: Login) -> None:  # noqa: F811
    from tests.console.conftest import csrf_from

    _customer_with_failed_payment(sessions, settings)
    caller = Caller(phone_client)
    caller.start()
    caller.say("转人工")
    with sessions() as s:
        conv = s.scalars(select(Conversation).where(Conversation.channel == "phone")).one()
    agent = login("agent")
    page = agent.get(f"/service/conversations/{conv.id}")
    before = row_counts(sessions)
    refused = agent.post(f"/service/conversations/{conv.id}/reply",
                         data={"text": "您好", "csrf_token": csrf_from(page.text)})
    assert "电话会话只能在通话中交谈" in refused.text and "可改用：短信" in refused.text
    assert row_counts(sessions) == before


@pytest.mark.usefixtures("kb")
def test_a_bare_transfer_after_the_greeting_named_a_payment_goes_to_its_skill_group(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    _customer_with_failed_payment(sessions, settings)
    with sessions() as s:
        upsert_customers(s, [{"id": "C2", "name": "周洁", "gender": "female",
                              "identities": [{"kind": "phone", "value": "13900000002"}]}],
                         settings=settings)
        s.commit()
    paid = Caller(phone_client, "TOPIC-1")
    assert "776元" in paid.start().json()["actions"][0]["text"]
    assert paid.say("转人工").json()["actions"][-1]["queue"] == "order"  # 订单物流
    plain = Caller(phone_client, "TOPIC-2")  # nothing went wrong: no topic, the general queue
    assert "请问有什么可以帮您" in plain.start("13900000002").json()["actions"][0]["text"]
    assert plain.say("转人工").json()["actions"][-1]["queue"] == "general"
