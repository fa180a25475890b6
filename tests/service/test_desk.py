"""The service desk end to end below the channels: a message in, the bot's decision with its
reason, hand-off and routing, an agent's reply, closing with the satisfaction question, the
answer stored; and the conversations API."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.service import create_user
from siyu.config import Settings
from siyu.customers.identity import IdentityRef
from siyu.customers.models import Customer
from siyu.customers.service import upsert_customers
from siyu.events.service import ingest
from siyu.jobs.models import Job
from siyu.kb.demo import seed_demo_kb
from siyu.service import bot
from siyu.service import service as desk
from siyu.service.models import Agent, BotDecision, Conversation, CsatAnswer, Message

PHONE = IdentityRef("phone", "+8613800138000")


@pytest.fixture
def kb(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        seed_demo_kb(s)
        s.commit()


def customer(sessions: sessionmaker[Session], settings: Settings, **attrs: Any) -> int:
    with sessions() as s:
        cid = upsert_customers(s, [{"id": "C1", "identities": [
            {"kind": "phone", "value": "13800138000"}], "name": "林晓雯", "gender": "female",
            **attrs}], settings=settings).customer_ids[0]
        s.commit()
        return cid


def say(sessions: sessionmaker[Session], text: str, external_id: str,
        channel: str = "webchat") -> desk.InboundResult:
    with sessions() as s:
        result = desk.receive_inbound(s, channel=channel, identities=[PHONE], text=text,
                                      external_id=external_id)
        s.commit()
    with sessions() as s:
        bot.handle_inbound(s, result.message_id)
        s.commit()
    return result


def replies(sessions: sessionmaker[Session], conversation_id: int) -> list[tuple[str, str]]:
    with sessions() as s:
        return [(m.sender, m.text or "") for m in s.scalars(
            select(Message).where(Message.conversation_id == conversation_id,
                                  Message.direction == "out").order_by(Message.id))]


def decision(sessions: sessionmaker[Session], message_id: int) -> BotDecision:
    with sessions() as s:
        return s.scalars(select(BotDecision).where(BotDecision.message_id == message_id)).one()


def test_a_message_is_stored_once_and_queues_the_bot(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = customer(sessions, settings)
    with sessions() as s:
        first = desk.receive_inbound(s, channel="wecom", identities=[PHONE], text=" 在吗 ",
                                     external_id="m-1")
        again = desk.receive_inbound(s, channel="wecom", identities=[PHONE], text="在吗",
                                     external_id="m-1")
        s.commit()
        assert first.customer_id == cid and not first.duplicate
        assert again.duplicate and again.message_id == first.message_id
        assert [j.name for j in s.scalars(select(Job))] == [desk.BOT_JOB]
        assert s.get(Message, first.message_id).text == "在吗"  # type: ignore[union-attr]


def test_a_failed_payment_minutes_ago_is_addressed_first(
        sessions: sessionmaker[Session], settings: Settings, kb: None) -> None:
    customer(sessions, settings)
    failed_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    with sessions() as s:
        ingest(s, "events", [{"id": "e-pay", "type": "payment_failed", "ts": failed_at,
                              "identities": [{"kind": "external_id", "value": "C1"}],
                              "properties": {"reason": "银行卡余额不足", "amount": 776.0}}],
               settings=settings)
        s.commit()
    result = say(sessions, "怎么回事啊", "w-1")
    local = failed_at.astimezone(ZoneInfo(settings.timezone)).strftime("%H:%M")
    (sender, text), = replies(sessions, result.conversation_id)
    assert sender == "bot"
    assert f"刚才 {local} 的付款" in text and "银行卡余额不足" in text and "776.00" in text
    assert text.startswith("林女士您好")
    made = decision(sessions, result.message_id)
    assert made.action == "context" and made.reason == "近期事件「支付失败」优先处理"
    assert made.steps[0]["step"] == "context" and made.steps[0]["addressed"] is True
    # The next message is answered on its own: the payment was already addressed.
    second = say(sessions, "怎么开发票", "w-2")
    assert "发票" in replies(sessions, second.conversation_id)[-1][1]
    assert decision(sessions, second.message_id).intent == "invoice"


def test_known_intent_is_answered_from_its_template_with_the_context(
        sessions: sessionmaker[Session], settings: Settings, kb: None) -> None:
    customer(sessions, settings, tier="黑金", attributes={"points": 8620})
    result = say(sessions, "我有多少积分", "w-1")
    assert "8620" in replies(sessions, result.conversation_id)[-1][1]
    made = decision(sessions, result.message_id)
    assert made.intent == "membership_points" and made.confidence is not None
    assert made.confidence >= bot.MIN_CONFIDENCE


def test_order_status_runs_the_lookup(sessions: sessionmaker[Session], settings: Settings,
                                      kb: None) -> None:
    customer(sessions, settings)
    with sessions() as s:
        ingest(s, "orders", [{"id": "SO-1", "ts": dt.datetime.now(dt.UTC) - dt.timedelta(days=2),
                              "amount": 199.0, "status": "shipped",
                              "identities": [{"kind": "external_id", "value": "C1"}]}],
               settings=settings)
        s.commit()
    result = say(sessions, "我的订单到哪了", "w-1")
    text = replies(sessions, result.conversation_id)[-1][1]
    assert "SO-1" in text and "已发货" in text
    assert decision(sessions, result.message_id).action == "action"


@pytest.mark.parametrize(("text", "why"), [("转人工", "asked_for_person"),
                                           ("你们这什么垃圾服务！！！", "angry")])
def test_hand_off_goes_to_the_vip_customers_own_advisor_first(
        sessions: sessionmaker[Session], settings: Settings, kb: None, text: str,
        why: str) -> None:
    with sessions() as s:
        advisor = create_user(s, "advisor01", "pw-123456789", "agent", display_name="陈静")
        other = create_user(s, "advisor02", "pw-123456789", "agent", display_name="刘洋")
        for user in (advisor, other):
            desk.set_agent_status(s, user.id, "online")
        s.commit()
    cid = customer(sessions, settings, tier="黑金")
    with sessions() as s:  # advisors are assigned in WeCom, not through the ingest API
        s.execute(update(Customer).where(Customer.id == cid).values(advisor_id=advisor.id))
        s.commit()
    result = say(sessions, text, "w-1")
    with sessions() as s:
        conv = s.get(Conversation, result.conversation_id)
        assert conv is not None
        assert conv.status == "with_agent" and conv.assigned_user_id == advisor.id
    made = decision(sessions, result.message_id)
    assert made.action == "handoff"
    assert made.steps[-1] == {"step": "route", "assignee": advisor.id, "advisor_first": True,
                              "skill_group": made.steps[-1]["skill_group"]}
    assert any("人工" in t for _, t in replies(sessions, result.conversation_id))
    # The bot stays out of a conversation a person holds.
    later = say(sessions, "你好", "w-2")
    with sessions() as s:
        assert s.scalar(select(BotDecision).where(BotDecision.message_id == later.message_id)
                        ) is None


def test_without_an_available_agent_the_conversation_waits_in_the_queue(
        sessions: sessionmaker[Session], settings: Settings, kb: None) -> None:
    customer(sessions, settings)
    result = say(sessions, "我要找真人", "w-1")
    with sessions() as s:
        queue = desk.queue(s)
        assert [c["id"] for c in queue["waiting"]] == [result.conversation_id]
        assert queue["waiting"][0]["handoff_reason"] == "客户要求转人工"


def test_agent_reply_close_and_satisfaction_answer(
        sessions: sessionmaker[Session], settings: Settings, kb: None) -> None:
    customer(sessions, settings)
    result = say(sessions, "转人工", "w-1")
    with sessions() as s:
        agent = create_user(s, "agent7", "pw-123456789", "agent", display_name="小陈")
        desk.agent_reply(s, result.conversation_id, agent.id, "您好，我是小陈")
        desk.close(s, result.conversation_id, actor=f"user:{agent.id}")
        s.commit()
    sent = replies(sessions, result.conversation_id)
    assert sent[-2] == ("agent", "您好，我是小陈")
    assert sent[-1] == ("system", desk.CSAT_QUESTION)
    with sessions() as s:
        question = s.scalars(select(Message).where(Message.text == desk.CSAT_QUESTION)).one()
        assert question.payload == {"csat": True} and question.status == "queued"
        conv = s.get(Conversation, result.conversation_id)
        assert conv is not None and conv.first_response_at is not None
    answer = say(sessions, "5", "w-2")
    assert answer.conversation_id == result.conversation_id
    with sessions() as s:
        stored = s.scalars(select(CsatAnswer)).one()
        assert (stored.score, stored.handled_by, stored.agent_user_id) == (5, "agent", agent.id)
        conv = s.get(Conversation, result.conversation_id)
        assert conv is not None and conv.csat_pending is False and conv.status == "closed"
        metrics = desk_metrics(s)
        assert metrics["csat"] == 5.0 and metrics["handoff_rate"] == 1.0
        assert metrics["csat_by_agent"] == [{"name": "小陈", "answers": 1, "csat": 5.0}]
    # A later "5" is a new message in a new conversation, not a second answer.
    new = say(sessions, "5", "w-3")
    assert new.conversation_id != result.conversation_id


def desk_metrics(session: Session) -> dict[str, Any]:
    from siyu.service import metrics

    return metrics.summary(session)


def test_bad_inputs_are_refused(sessions: sessionmaker[Session]) -> None:
    from siyu.errors import InvalidInput, NotFound

    with sessions() as s:
        with pytest.raises(InvalidInput, match="identity"):
            desk.receive_inbound(s, channel="webchat", identities=[], text="hi",
                                 external_id=None)
        with pytest.raises(InvalidInput, match="2000"):
            desk.receive_inbound(s, channel="webchat", identities=[PHONE], text="x" * 2001,
                                 external_id=None)
        with pytest.raises(NotFound):
            desk.post_outbound(s, conversation_id=999, sender="bot", text="hi")
        with pytest.raises(InvalidInput, match="status"):
            desk.set_agent_status(s, 1, "sleeping")
        assert s.scalar(select(Agent)) is None


def test_conversations_api(client: TestClient, sessions: sessionmaker[Session],
                           settings: Settings) -> None:
    cid = customer(sessions, settings)
    result = say(sessions, "你好", "w-1")
    listed = client.get("/api/v1/conversations", params={"customer_id": cid})
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["items"]] == [result.conversation_id]
    messages = client.get(f"/api/v1/conversations/{result.conversation_id}/messages").json()
    assert messages["items"][0]["text"] == "你好" and messages["items"][0]["sender"] == "customer"
    assert client.get("/api/v1/conversations", params={"customer_id": 999}).status_code == 404
    assert client.get("/api/v1/conversations").status_code == 422
    # Agent actions need a person, not an API key.
    assert client.post(f"/api/v1/conversations/{result.conversation_id}/take"
                       ).status_code == 403
    del client.headers["Authorization"]
    assert client.get("/api/v1/conversations", params={"customer_id": cid}).status_code == 401


def test_a_near_tie_gets_a_clarifying_question_and_the_answer_picks_the_intent(
        sessions: sessionmaker[Session], settings: Settings, kb: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from siyu.kb.service import KbRuntime, Prediction

    customer(sessions, settings)
    real = KbRuntime.classify

    def torn(self: KbRuntime, text: str) -> Prediction:
        if text == "我的快递怎么还没到":  # the model hesitates between two order-desk intents
            return Prediction("order_status", 0.44, False,
                              [("order_status", 0.44), ("delivery_delay", 0.27),
                               ("refund_progress", 0.02)])
        return real(self, text)

    monkeypatch.setattr(KbRuntime, "classify", torn)
    asked = say(sessions, "我的快递怎么还没到", "w-1")
    made = decision(sessions, asked.message_id)
    assert made.action == "clarify"
    assert made.steps[-1] == {"step": "clarify", "options": ["order_status", "delivery_delay"]}
    question = replies(sessions, asked.conversation_id)[-1][1]
    assert "1. 订单查询" in question and "2. 物流延误催件" in question
    with sessions() as s:
        conv = s.get(Conversation, asked.conversation_id)
        assert conv is not None and conv.status == "bot"  # no hand-off

    picked = say(sessions, "2", "w-2")
    chose = decision(sessions, picked.message_id)
    assert (chose.action, chose.intent, chose.confidence) == ("answer", "delivery_delay", 1.0)
    assert chose.steps[0]["step"] == "choice"
    assert "物流" in replies(sessions, picked.conversation_id)[-1][1] or \
        "快递" in replies(sessions, picked.conversation_id)[-1][1]

    # A "2" that answers no question is just a message (no choice step).
    later = say(sessions, "2", "w-3")
    assert all(st["step"] != "choice" for st in decision(sessions, later.message_id).steps)


def test_a_clarifying_question_can_be_answered_by_name(
        sessions: sessionmaker[Session], settings: Settings, kb: None) -> None:
    from siyu.kb.service import load_runtime

    with sessions() as s:
        runtime = load_runtime(s)
        ctx = bot.load_context(s, customer(sessions, settings), now=dt.datetime.now(dt.UTC))
        out = bot.decide(s, runtime, ctx, "订单查询", first_turn=False,
                         options=["order_status", "delivery_delay"])
    assert out.action == "action" and out.intent == "order_status"
    assert out.steps[0] == {"step": "choice", "intent": "order_status",
                            "options": ["order_status", "delivery_delay"]}
