"""A reply with a link is not read out: the caller hears that it comes by SMS, and the
link goes through the outbox to a local HTTP server standing in for the SMS provider,
once, to the customer's own mobile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels import tasks
from siyu.channels.config import ChannelSettings
from siyu.channels.models import Delivery
from siyu.channels.sms import SmsAdapter
from siyu.config import Settings
from siyu.customers.service import upsert_customers
from siyu.kb.service import add_keyword_rule
from tests.channels.conftest import run_jobs
from tests.channels.fakes import FakeSms
from tests.channels.test_phone_webhook import Caller, kb, phone_client  # noqa: F401

LINK = "https://shop.example/invoice?o=1"


@pytest.fixture
def sms_out(sms_api: FakeSms) -> Iterator[FakeSms]:
    cs = ChannelSettings(sms_url=sms_api.url + "/sms", sms_token=SecretStr("sms-token-xyz"))
    tasks.use_adapters({"sms": SmsAdapter(cs)})
    yield sms_api
    tasks.use_adapters(None)


@pytest.mark.usefixtures("kb")
def test_a_link_in_a_reply_goes_out_by_sms_once_and_is_not_spoken(
        phone_client: TestClient, sessions: sessionmaker[Session],  # noqa: F811
        settings: Settings, sms_out: FakeSms) -> None:
    with sessions() as s:
        upsert_customers(s, [{"id": "C1", "name": "林晓雯", "gender": "female",
                              "identities": [{"kind": "phone", "value": "13800138000"}]}],
                         settings=settings)
        add_keyword_rule(s, pattern="电子发票", priority=50,
                         reply=f"电子发票可以在这里申请：{LINK} ，提交后当天开出。")
        s.commit()
    caller = Caller(phone_client, "SMS-1")
    caller.start("13800138000")
    answer = caller.say("我要开电子发票")
    spoken = "".join(a.get("text", "") for a in answer.json()["actions"])
    assert "http" not in spoken and "shop.example" not in spoken
    assert "短信发给您" in spoken
    run_jobs(sessions)
    run_jobs(sessions)
    sent: list[Any] = sms_out.calls("/sms")
    assert len(sent) == 1
    assert sent[0].body["to"] == "+8613800138000" and LINK in sent[0].body["text"]
    with sessions() as s:
        d = s.scalars(select(Delivery).where(Delivery.channel == "sms")).one()
        assert (d.state, d.purpose, d.source) == ("sent", "service", "phone")


@pytest.mark.usefixtures("kb")
def test_a_caller_without_a_mobile_hears_no_promise_of_an_sms(
        phone_client: TestClient, sessions: sessionmaker[Session],  # noqa: F811
        settings: Settings, sms_out: FakeSms) -> None:
    with sessions() as s:
        upsert_customers(s, [{"id": "C7", "name": "周洁", "gender": "female", "identities": [
            {"kind": "voiceprint_id", "value": "VP-7", "verified": True}]}], settings=settings)
        add_keyword_rule(s, pattern="电子发票", reply=f"电子发票可以在这里申请：{LINK}",
                         priority=50)
        s.commit()
    caller = Caller(phone_client, "SMS-2")
    caller.send("call.started", **{"from": "13900000009", "voiceprint_id": "VP-7"})
    answer = caller.say("我要开电子发票")
    spoken = "".join(a.get("text", "") for a in answer.json()["actions"])
    assert "http" not in spoken and "短信" not in spoken
    run_jobs(sessions)
    assert sms_out.calls("/sms") == []


def test_a_withheld_number_goes_to_a_person_and_is_filed_under_nobody(
        phone_client: TestClient, sessions: sessionmaker[Session]) -> None:  # noqa: F811
    from siyu.customers.models import Customer, Identity

    for n in (1, 2):
        caller = Caller(phone_client, f"ANON-{n}")
        started = caller.send("call.started", **{"from": "anonymous"})
        assert started.json()["actions"][-1]["type"] == "transfer"
        assert caller.say("我要开电子发票").json()["actions"] == []
    with sessions() as s:
        assert s.query(Customer).count() == 0 and s.query(Identity).count() == 0


def test_the_generic_provider_adapter_maps_callbacks_and_commands(
        phone_client: TestClient, sessions: sessionmaker[Session],  # noqa: F811
        settings: Settings) -> None:
    import json
    import time

    from siyu.channels.phone.models import PhoneCall
    from siyu.channels.phone.protocol import sign
    from tests.channels.test_phone_webhook import SECRET

    with sessions() as s:
        upsert_customers(s, [{"id": "C1", "name": "林晓雯", "gender": "female",
                              "identities": [{"kind": "phone", "value": "13800138000"}]}],
                         settings=settings)
        s.commit()

    def post(payload: dict[str, Any], secret: str = SECRET) -> Any:
        body = json.dumps(payload, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        return phone_client.post("/channels/phone/generic/webhook", content=body, headers={
            "X-Siyu-Timestamp": ts, "X-Siyu-Signature": sign(secret, ts, body)})

    start = {"event": "start", "callId": "G-1", "seq": 1, "caller": "13800138000"}
    assert post(start, secret="guess").status_code == 403
    r = post(start)
    assert r.status_code == 200, r.text
    cmds = r.json()["commands"]
    assert cmds[0]["cmd"] == "tts" and cmds[0]["text"].startswith("林女士您好")
    assert cmds[-1] == {"cmd": "gather", "mode": "speech", "timeout": 8}
    assert post(start).status_code == 409  # the same callId + seq is a replay
    bridged = post({"event": "asr", "callId": "G-1", "seq": 2, "asrText": "转人工",
                    "asrFinal": True, "asrConfidence": 0.9}).json()["commands"]
    assert bridged[-1]["cmd"] == "bridge" and bridged[-1]["queue"]
    assert post({"event": "hangup", "callId": "G-1", "seq": 3, "duration": 20}
                ).status_code == 200
    bad = post({"event": "ring", "callId": "G-1", "seq": 4})
    assert bad.status_code == 422 and "event" in bad.text
    with sessions() as s:
        call = s.scalars(select(PhoneCall)).one()
        assert call.status == "ended" and call.duration_seconds == 20
