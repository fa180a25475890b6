"""Recent events that bear on what the customer asks are addressed first, on any turn of
the conversation, and each only once; the stored reason names the action in Chinese."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.events.service import ingest
from tests.service.test_desk import customer, decision, kb, replies, say

__all__ = ["kb"]


def _events(sessions: sessionmaker[Session], settings: Settings, *events: dict) -> None:
    with sessions() as s:
        ingest(s, "events", [{"identities": [{"kind": "external_id", "value": "C1"}], **e}
                             for e in events], settings=settings)
        s.commit()


def test_a_late_parcel_is_addressed_when_asked_about_after_another_incident(
        sessions: sessionmaker[Session], settings: Settings, kb: None) -> None:
    customer(sessions, settings)
    now = dt.datetime.now(dt.UTC)
    _events(sessions, settings,
            {"id": "e-late", "type": "delivery_delayed", "ts": now - dt.timedelta(days=1),
             "properties": {"carrier": "顺丰", "parcel_no": "SF123", "days_late": 2}},
            {"id": "e-pay", "type": "payment_failed", "ts": now - dt.timedelta(minutes=5),
             "properties": {"reason": "银行卡余额不足", "amount": 99.0}})
    first = say(sessions, "怎么回事啊", "w-1")
    before = replies(sessions, first.conversation_id)
    assert "付款" in before[0][1]
    second = say(sessions, "快递到哪了", "w-2")
    answer = [t for _, t in replies(sessions, second.conversation_id)[len(before):]]
    # The delay first, then the order lookup.
    assert "顺丰 SF123" in answer[0] and "晚了 2 天" in answer[0], answer
    assert "订单" in answer[-1]
    made = decision(sessions, second.message_id)
    assert {"step": "context", "incident": "delivery_delayed"}.items() <= next(
        s for s in made.steps if s.get("incident") == "delivery_delayed").items()
    # Addressed once: asking again answers the question alone.
    seen = len(replies(sessions, second.conversation_id))
    third = say(sessions, "快递到哪了", "w-3")
    assert all("SF123" not in t for _, t in replies(sessions, third.conversation_id)[seen:])


def test_a_late_parcel_yesterday_comes_before_the_order_list(
        sessions: sessionmaker[Session], settings: Settings, kb: None) -> None:
    customer(sessions, settings)
    now = dt.datetime.now(dt.UTC)
    _events(sessions, settings,
            {"id": "e-late", "type": "delivery_delayed", "ts": now - dt.timedelta(days=1),
             "properties": {"carrier": "顺丰", "parcel_no": "SF9", "days_late": 1}})
    result = say(sessions, "快递到哪了", "w-1")
    texts = [t for _, t in replies(sessions, result.conversation_id)]
    assert "SF9" in texts[0], texts


def test_the_action_reason_is_in_chinese(
        sessions: sessionmaker[Session], settings: Settings, kb: None) -> None:
    customer(sessions, settings)
    result = say(sessions, "我的订单到哪了", "w-1")
    made = decision(sessions, result.message_id)
    assert made.action == "action"
    assert "order_status" not in made.reason and "查询订单状态" in made.reason, made.reason
