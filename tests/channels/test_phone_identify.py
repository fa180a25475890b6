"""Who is calling: a number that names two customers (a merge conflict keeps a husband and
wife apart who share his phone) asks one verifying question and tells neither one's data
before the answer; a verified voiceprint decides; the transcript after a transfer joins the
conversation, and the ended call is on the customer's timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.phone.models import PhoneCall
from siyu.config import Settings
from siyu.customers.models import Customer, Identity, MergeConflict
from siyu.customers.service import upsert_customers
from siyu.customers.timeline import timeline_page
from siyu.db import utcnow
from siyu.events.service import ingest
from siyu.service.models import Conversation, Message
from tests.channels.test_phone_webhook import Caller, kb, phone_client  # noqa: F401
from tests.console.conftest import login, make_user, staff  # noqa: F401

HUSBAND = "+8613600136000"


def _family(sessions: sessionmaker[Session], settings: Settings, *,
            wife_birthday: str | None = "1990-07-16") -> tuple[int, int]:
    """张伟 holds 13600136000; 李娜 ordered with it, so a conflict keeps them apart."""
    with sessions() as s:
        husband, wife = upsert_customers(s, [
            {"id": "HY4", "name": "张伟", "gender": "male", "birthday": "1988-11-02",
             "identities": [{"kind": "phone", "value": HUSBAND, "verified": True}]},
            {"id": "HY5", "name": "李娜", "gender": "female", "birthday": wife_birthday,
             "identities": [{"kind": "phone", "value": "13700137000", "verified": True}]},
        ], settings=settings).customer_ids
        # Her order names her brand id and his phone: resolution refuses to merge.
        upsert_customers(s, [{"id": "HY5", "identities": [
            {"kind": "phone", "value": HUSBAND, "verified": True}]}], settings=settings)
        ingest(s, "events", [{"id": "E-wife-pay", "customer_id": "HY5",
                              "type": "payment_failed",
                              "ts": (utcnow() - dt.timedelta(minutes=3)).isoformat(),
                              "properties": {"amount": 299.0, "reason": "银行卡余额不足"}}],
               settings=settings)
        s.commit()
        assert s.scalar(select(MergeConflict.shared_value)) == HUSBAND, "no conflict queued"
    return husband, wife


def _spoken(answer: Any) -> str:
    return "".join(a.get("text", "") for a in answer.json()["actions"])


@pytest.mark.usefixtures("kb")
def test_a_shared_number_asks_one_question_and_names_the_one_who_answers(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    husband, wife = _family(sessions, settings)
    caller = Caller(phone_client, "FAM-1")
    started = caller.start("13600136000")
    text = _spoken(started)
    assert "出生月日" in text and started.json()["status"] == "verify"
    for leak in ("张", "李", "女士", "先生", "299", "付款"):
        assert leak not in text
    assert started.json()["actions"][-1]["input"] == "dtmf"
    with sessions() as s:
        call = s.scalars(select(PhoneCall)).one()
        assert call.customer_id is None and sorted(call.candidate_ids) == sorted([husband, wife])
    # A spoken utterance that is no answer: the same question again, nothing filed.
    again = caller.say("你好")
    assert "出生月日" in _spoken(again)
    with sessions() as s:
        assert s.query(Message).count() == 0
    named = caller.send("dtmf", digits="0716")
    assert named.json()["status"] == "bot"
    text = _spoken(named)
    assert "李女士" in text and "299元" in text  # her failed payment, now that she is known
    caller.say("我的积分有多少")
    with sessions() as s:
        call = s.scalars(select(PhoneCall)).one()
        assert (call.customer_id, call.identified_by) == (wife, "question")
        conv = s.scalars(select(Conversation)).one()
        assert conv.customer_id == wife  # filed under her, not the number's holder
        assert "0716" not in str(call.transcript)


@pytest.mark.usefixtures("kb")
def test_a_wrong_answer_goes_to_a_person_with_nobody_s_data(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    _family(sessions, settings)
    caller = Caller(phone_client, "FAM-2")
    caller.start("13600136000")
    wrong = caller.send("dtmf", digits="1234")
    body = wrong.json()
    assert body["status"] == "transferred"
    assert body["actions"][-1] == {"type": "transfer", "queue": "general",
                                   "agent_user_id": None, "reason": "identity_unverified"}
    text = _spoken(wrong)
    assert "张" not in text and "李" not in text and "299" not in text
    # Only one question: what follows is for the person, and filed under nobody.
    after = caller.say("我是李娜，我的付款怎么失败了")
    assert after.json()["actions"] == []
    caller.send("call.ended", duration_seconds=30)
    with sessions() as s:
        call = s.scalars(select(PhoneCall)).one()
        assert call.customer_id is None and call.status == "ended"
        assert s.query(Message).count() == 0 and s.query(Conversation).count() == 0


@pytest.mark.usefixtures("kb")
def test_without_a_distinguishing_birthday_the_question_is_the_own_mobile(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    husband, _ = _family(sessions, settings, wife_birthday=None)
    caller = Caller(phone_client, "FAM-3")
    assert "手机号后四位" in _spoken(caller.start("13600136000"))
    assert "张先生" in _spoken(caller.send("dtmf", digits="6000"))
    with sessions() as s:
        assert s.scalars(select(PhoneCall)).one().customer_id == husband


@pytest.mark.usefixtures("kb")
def test_a_verified_voiceprint_decides_and_an_unverified_one_never_identifies(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    husband, wife = _family(sessions, settings)
    with sessions() as s:
        s.add(Identity(customer_id=wife, kind="voiceprint_id", value="VP-LINA", verified=True))
        s.add(Identity(customer_id=husband, kind="voiceprint_id", value="VP-ZW",
                       verified=False))
        s.commit()
    lina = Caller(phone_client, "VP-1")
    r = lina.send("call.started", **{"from": "13600136000", "voiceprint_id": "VP-LINA"})
    assert r.json()["status"] == "bot" and "李女士" in _spoken(r)
    # An unverified voiceprint is no identity: the shared number still asks.
    zw = Caller(phone_client, "VP-2")
    r = zw.send("call.started", **{"from": "13600136000", "voiceprint_id": "VP-ZW"})
    assert r.json()["status"] == "verify"
    # From an unknown number only a verified voiceprint names someone.
    stranger = Caller(phone_client, "VP-3")
    r = stranger.send("call.started", **{"from": "13900000001", "voiceprint_id": "VP-ZW"})
    assert "张" not in _spoken(r)
    known = Caller(phone_client, "VP-4")
    r = known.send("call.started", **{"from": "13900000002", "voiceprint_id": "VP-LINA"})
    assert "李女士" in _spoken(r)
    with sessions() as s:
        by = {c.call_id: (c.customer_id, c.identified_by) for c in s.scalars(select(PhoneCall))}
        assert by["VP-1"] == (wife, "voiceprint") and by["VP-4"] == (wife, "voiceprint")
        assert by["VP-2"] == (None, None) and by["VP-3"] == (None, None)
        assert s.query(Customer).count() == 2


@pytest.mark.usefixtures("kb")
def test_words_after_a_transfer_join_the_conversation_and_the_call_is_on_the_timeline(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    with sessions() as s:
        cid = upsert_customers(s, [{"id": "C1", "name": "林晓雯", "gender": "female",
                                    "identities": [{"kind": "phone", "value": "13800138000"}]}],
                               settings=settings).customer_ids[0]
        s.commit()
    caller = Caller(phone_client, "TL-1")
    caller.start("13800138000")
    caller.say("转人工")
    caller.send("call.answered", agent="agent")
    caller.say("我想改一下收货地址")
    caller.send("call.ended", duration_seconds=95)
    with sessions() as s:
        texts = [m.text for m in s.scalars(select(Message).where(Message.direction == "in")
                                           .order_by(Message.id))]
        assert texts == ["转人工", "我想改一下收货地址"]
        page = timeline_page(s, cid, category="service")
        calls = [e for e in page.entries if e["title"] == "电话来电"]
        assert len(calls) == 1 and calls[0]["channel"] == "phone"
    # A repeated end changes nothing (no second timeline entry).
    caller.send("call.ended", duration_seconds=96)
    with sessions() as s:
        page = timeline_page(s, cid, category="service")
        assert len([e for e in page.entries if e["title"] == "电话来电"]) == 1


@pytest.mark.usefixtures("kb", "staff")
def test_service_metrics_count_phone_calls_by_channel_with_the_resolution_chart(
        phone_client: TestClient, sessions: sessionmaker[Session], settings: Settings,  # noqa: F811
        login: Any) -> None:  # noqa: F811
    from siyu.service import metrics

    with sessions() as s:
        upsert_customers(s, [
            {"id": "C1", "name": "林晓雯",
             "identities": [{"kind": "phone", "value": "13800138000"}]},
            {"id": "C2", "name": "王建国",
             "identities": [{"kind": "phone", "value": "13912345678"}]},
        ], settings=settings)
        s.commit()
    bot_call = Caller(phone_client, "M-1")
    bot_call.start("13800138000")
    bot_call.say("好的谢谢，再见")
    bot_call.send("dtmf", digits="5")
    person = Caller(phone_client, "M-2")
    person.start("13912345678")
    person.say("转人工")
    with sessions() as s:
        m = metrics.summary(s, days=30)
    phone = next(r for r in m["by_channel"] if r["channel"] == "phone")
    assert (phone["conversations"], phone["by_bot"], phone["transferred"]) == (2, 1, 1)
    assert phone["csat"] == 5 and phone["name"] == "电话"
    assert set(m["resolution_minutes"]) == {"bot", "agent"}
    page = login("agent").get("/service/metrics")
    assert page.status_code == 200
    assert 'data-channel="phone"' in page.text and "有无机器人的解决用时" in page.text
    assert "<svg" in page.text
