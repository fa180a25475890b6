"""After-call satisfaction by SMS link: a caller who hangs up on the keypad question (or
whose call went to a person) gets an SMS through the outbox — to a local HTTP server
standing in for the SMS provider — with a signed link; the score given there is the call's
and its conversation's CSAT, once, and counts in the service metrics' phone row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.channels import tasks
from siyu.channels.config import ChannelSettings
from siyu.channels.models import Delivery
from siyu.channels.phone.models import PhoneCall
from siyu.channels.sms import SmsAdapter
from siyu.config import Settings
from siyu.customers.service import upsert_customers
from siyu.service import metrics
from siyu.service.models import CsatAnswer
from tests.channels.conftest import row_counts, run_jobs
from tests.channels.fakes import FakeSms
from tests.channels.test_phone_webhook import SECRET, Caller, kb  # noqa: F401

PUBLIC = "https://cs.brand.example"


def _client(settings: Settings, engine: Engine, sms_api: FakeSms,
            mode: Literal["off", "missed", "always"]) -> Iterator[TestClient]:
    # "missed" is configured through the install-wide SIYU_PUBLIC_URL, the others through
    # the phone's own SIYU_PHONE_PUBLIC_URL: either names where the link points.
    cs = ChannelSettings(phone_secret=SecretStr(SECRET), phone_csat_sms=mode,
                         sms_url=sms_api.url + "/sms", sms_token=SecretStr("sms-token-xyz"),
                         public_url=PUBLIC if mode == "missed" else "",
                         phone_public_url="" if mode == "missed" else PUBLIC)
    app = create_app(settings, engine=engine)
    app.state.channel_settings = cs
    tasks.use_adapters({"sms": SmsAdapter(cs)})
    try:
        with TestClient(app) as client:
            yield client
    finally:
        tasks.use_adapters(None)


@pytest.fixture
def missed(settings: Settings, engine: Engine, sms_api: FakeSms) -> Iterator[TestClient]:
    yield from _client(settings, engine, sms_api, "missed")


@pytest.fixture
def always(settings: Settings, engine: Engine, sms_api: FakeSms) -> Iterator[TestClient]:
    yield from _client(settings, engine, sms_api, "always")


@pytest.fixture
def off(settings: Settings, engine: Engine, sms_api: FakeSms) -> Iterator[TestClient]:
    yield from _client(settings, engine, sms_api, "off")


@pytest.fixture
def customer(sessions: sessionmaker[Session], settings: Settings) -> int:
    with sessions() as s:
        cid = upsert_customers(s, [{"id": "C1", "name": "林晓雯", "gender": "female",
                                    "identities": [{"kind": "phone", "value": "13800138000"}]}],
                               settings=settings).customer_ids[0]
        s.commit()
    return cid


def _link(sms_api: FakeSms) -> str:
    sent: list[Any] = sms_api.calls("/sms")
    assert len(sent) == 1, sent
    assert sent[0].body["to"] == "+8613800138000"
    found = re.search(re.escape(PUBLIC) + r"(/channels/phone/csat/\S+)", sent[0].body["text"])
    assert found, sent[0].body["text"]
    return found.group(1)


@pytest.mark.usefixtures("kb", "customer")
def test_a_caller_who_hangs_up_on_the_keypad_question_answers_by_sms_link_once(
        missed: TestClient, sessions: sessionmaker[Session], sms_api: FakeSms) -> None:
    caller = Caller(missed, "CSAT-1")
    caller.start()
    assert caller.say("好的谢谢，再见").json()["status"] == "csat"
    caller.send("call.ended", duration_seconds=42)
    run_jobs(sessions)
    run_jobs(sessions)
    path = _link(sms_api)
    with sessions() as s:
        d = s.scalars(select(Delivery).where(Delivery.channel == "sms")).one()
        assert (d.state, d.purpose, d.source) == ("sent", "service", "phone")

    page = missed.get(path)
    assert page.status_code == 200 and "请为您刚才的来电服务打分" in page.text
    assert missed.post(path, data={"score": "4"}).status_code == 200
    again = missed.post(path, data={"score": "1"})
    assert again.status_code == 409 and "已经评价过" in again.text
    with sessions() as s:
        call = s.scalars(select(PhoneCall)).one()
        answer = s.scalars(select(CsatAnswer)).one()
        assert call.csat == 4 and answer.score == 4
        assert answer.conversation_id == call.conversation_id
        assert answer.handled_by == "bot"
        phone = next(r for r in metrics.summary(s)["by_channel"] if r["channel"] == "phone")
    assert phone["csat"] == 4
    # a second end of the same call (a provider retry with a new id) sends nothing more
    caller.send("call.ended", duration_seconds=42)
    run_jobs(sessions)
    assert len(sms_api.calls("/sms")) == 1


@pytest.mark.usefixtures("kb", "customer")
def test_a_forged_or_altered_link_is_refused_and_stores_nothing(
        missed: TestClient, sessions: sessionmaker[Session], sms_api: FakeSms) -> None:
    caller = Caller(missed, "CSAT-2")
    caller.start()
    caller.say("转人工")
    caller.send("call.ended", duration_seconds=90)
    run_jobs(sessions)
    path = _link(sms_api)  # a call a person had gets the link too
    before = row_counts(sessions)
    token = path.rsplit("/", 1)[1]
    altered = path[: -len(token)] + token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (altered, "/channels/phone/csat/eyJjIjoiQ1NBVC0yIn0.forged.sig"):
        r = missed.post(bad, data={"score": "5"})
        assert r.status_code == 403 and "评价链接无效" in r.text
        assert missed.get(bad).status_code == 403
    assert missed.post(path, data={"score": "9"}).status_code == 422
    assert row_counts(sessions) == before
    with sessions() as s:
        assert s.scalars(select(PhoneCall)).one().csat is None


@pytest.mark.usefixtures("kb", "customer")
def test_a_keypad_score_sends_no_sms_and_off_sends_none(
        missed: TestClient, off: TestClient, sessions: sessionmaker[Session],
        sms_api: FakeSms) -> None:
    caller = Caller(missed, "CSAT-3")
    caller.start()
    caller.say("好的谢谢，再见")
    assert caller.send("dtmf", digits="5").json()["actions"][-1] == {"type": "hangup"}
    caller.send("call.ended", duration_seconds=30)
    quiet = Caller(off, "CSAT-4")
    quiet.start()
    quiet.say("转人工")
    quiet.send("call.ended", duration_seconds=60)
    run_jobs(sessions)
    assert sms_api.calls("/sms") == []


@pytest.mark.usefixtures("kb", "customer")
def test_always_texts_a_bot_call_that_ended_without_a_score(
        always: TestClient, missed: TestClient, sessions: sessionmaker[Session],
        sms_api: FakeSms) -> None:
    plain = Caller(missed, "CSAT-5")  # missed: the bot had it, nobody was asked: no SMS
    plain.start()
    plain.say("你好")
    plain.send("call.ended", duration_seconds=20)
    run_jobs(sessions)
    assert sms_api.calls("/sms") == []
    caller = Caller(always, "CSAT-6")
    caller.start()
    caller.say("你好")
    caller.send("call.ended", duration_seconds=20)
    run_jobs(sessions)
    path = _link(sms_api)
    assert always.post(path, data={"score": "2"}).status_code == 200
    with sessions() as s:
        call = s.scalars(select(PhoneCall).where(PhoneCall.call_id == "CSAT-6")).one()
        assert call.csat == 2 and call.transcript[-1]["via"] == "sms"
