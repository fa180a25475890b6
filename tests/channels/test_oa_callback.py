"""The official account callback in the app: verification, safe-mode messages for the desk
and the bot, events on the timeline, identities joining, and replies inside and outside the
customer-service window through a local server standing in for the platform."""

from __future__ import annotations

import datetime as dt
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
from siyu.auth.models import User
from siyu.channels import tasks
from siyu.channels.config import ChannelSettings
from siyu.channels.models import AccessToken
from siyu.channels.oa.adapter import OaAdapter
from siyu.config import Settings
from siyu.customers.models import Customer, Identity
from siyu.events.models import Event
from siyu.events.service import ingest
from siyu.jobs.models import Job
from siyu.service import service as desk
from siyu.service.models import Conversation, Message
from tests.channels.conftest import row_counts, run_jobs
from tests.channels.fakes import serve
from tests.channels.oa_helpers import (
    DOC,
    SECRET,
    FakeOa,
    doc_body,
    event_xml,
    independent_encrypt,
    plain_params,
    text_xml,
)
from tests.console.conftest import Login, csrf_from, login, make_user, staff  # noqa: F401

URL = "/channels/oa/callback"
OPENID = "oFollower0001"
PHONE = "+8613900139000"


@pytest.fixture
def oa_api() -> Iterator[FakeOa]:
    with serve(FakeOa(DOC["appid"], SECRET)) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def oa_cs(oa_api: FakeOa) -> ChannelSettings:
    return ChannelSettings(oa_appid=DOC["appid"], oa_token=SecretStr(DOC["token"]),
                           oa_aes_key=SecretStr(DOC["encoding_aes_key"]),
                           oa_secret=SecretStr(SECRET), oa_max_skew_seconds=300,
                           oa_api_base=oa_api.url)


@pytest.fixture
def oa_adapters(settings: Settings, oa_cs: ChannelSettings, sessions: sessionmaker[Session]
                ) -> Iterator[dict[str, Any]]:
    oa = OaAdapter(settings, oa_cs, sessions=sessions)
    registry = {"oa": oa, "webchat": tasks.outbox.WebChatAdapter()}
    tasks.use_adapters(registry)  # type: ignore[arg-type]
    yield registry
    tasks.use_adapters(None)
    oa.close()


@pytest.fixture
def oa_client(settings: Settings, oa_cs: ChannelSettings, engine: Engine,
              sessions: sessionmaker[Session], oa_adapters: dict[str, Any]
              ) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine)
    app.state.channel_settings = oa_cs
    with TestClient(app) as client:
        yield client


def post(client: TestClient, xml: str, **params: str) -> Any:
    body, signed = independent_encrypt(xml, token=DOC["token"], key=DOC["encoding_aes_key"],
                                       appid=DOC["appid"])
    return client.post(URL, params={**signed, "openid": OPENID, **params}, content=body)


def say(client: TestClient, text: str, msg_id: str, openid: str = OPENID,
        create_time: int | None = None) -> None:
    response = post(client, text_xml(openid, text, msg_id, create_time))
    assert (response.status_code, response.text) == (200, "success"), response.text


def customer_of(sessions: sessionmaker[Session], kind: str, value: str) -> int | None:
    with sessions() as s:
        return s.scalar(select(Identity.customer_id).where(Identity.kind == kind,
                                                           Identity.value == value))


def oa_conversation(sessions: sessionmaker[Session]) -> Conversation:
    with sessions() as s:
        return s.scalars(select(Conversation).where(Conversation.channel == "oa")).one()


def test_documented_server_verification(oa_client: TestClient) -> None:
    v = DOC["verify"]
    # The documented example is from 2024: turn the skew limit off to replay it.
    oa_client.app.state.channel_settings = oa_client.app.state.channel_settings.model_copy(
        update={"oa_max_skew_seconds": 0})
    ok = oa_client.get(URL, params=v)
    assert (ok.status_code, ok.text) == (200, "4375120948345356249")
    forged = oa_client.get(URL, params=dict(v, signature="0" * 40))
    assert forged.status_code == 403 and forged.json()["details"]["reason"] == "bad_signature"
    missing = oa_client.get(URL, params={"signature": v["signature"]})
    assert missing.status_code == 400 and "echostr" in missing.text


def test_documented_safe_mode_push_is_acknowledged_and_stores_nothing(
        oa_client: TestClient, sessions: sessionmaker[Session]) -> None:
    oa_client.app.state.channel_settings = oa_client.app.state.channel_settings.model_copy(
        update={"oa_max_skew_seconds": 0})
    before = row_counts(sessions)
    ok = oa_client.post(URL, params=DOC["safe"], content=doc_body())
    assert (ok.status_code, ok.text) == (200, "success")  # a debug_demo event: nothing to keep
    assert row_counts(sessions) == before


def test_forged_signature_stores_nothing(oa_client: TestClient,
                                         sessions: sessionmaker[Session]) -> None:
    before = row_counts(sessions)
    body, params = independent_encrypt(text_xml(OPENID, "你好", "9001"), token=DOC["token"],
                                       key=DOC["encoding_aes_key"], appid=DOC["appid"])
    forged = oa_client.post(URL, params=dict(params, msg_signature="f" * 40), content=body)
    assert forged.status_code == 403
    wrong_key = independent_encrypt(text_xml(OPENID, "你好", "9001"), token="not-the-token",
                                    key=DOC["encoding_aes_key"], appid=DOC["appid"])
    assert oa_client.post(URL, params=wrong_key[1], content=wrong_key[0]).status_code == 403
    plaintext = oa_client.post(URL, params=plain_params(DOC["token"]),
                               content=text_xml(OPENID, "你好", "9001").encode())
    assert plaintext.status_code == 403  # safe mode configured: no downgrade
    stale = independent_encrypt(text_xml(OPENID, "你好", "9001"), token=DOC["token"],
                                key=DOC["encoding_aes_key"], appid=DOC["appid"],
                                timestamp=str(int(time.time()) - 3600))
    assert oa_client.post(URL, params=stale[1], content=stale[0]).status_code == 403
    assert row_counts(sessions) == before


def test_message_is_answered_by_the_bot_once_and_a_retry_is_stored_once(
        oa_client: TestClient, sessions: sessionmaker[Session], oa_api: FakeOa) -> None:
    xml = text_xml(OPENID, "你好", "24100000000000001")
    body, params = independent_encrypt(xml, token=DOC["token"], key=DOC["encoding_aes_key"],
                                       appid=DOC["appid"])
    started = time.monotonic()
    first = oa_client.post(URL, params=params, content=body)
    assert (first.status_code, first.text) == (200, "success")
    assert time.monotonic() - started < 5.0
    with sessions() as s:  # acknowledged before the bot ran
        assert "service.handle_inbound" in set(s.scalars(
            select(Job.name).where(Job.status == "queued")))
    assert run_jobs(sessions).failed == 0
    counts = row_counts(sessions)
    # The platform retries with the same MsgId (and a new signature): stored once.
    again = post(oa_client, xml)
    assert again.status_code == 200
    assert oa_client.post(URL, params=params, content=body).status_code == 200
    assert run_jobs(sessions).done == 0
    assert row_counts(sessions) == counts

    conv = oa_conversation(sessions)
    assert conv.customer_id == customer_of(sessions, "wechat_openid", OPENID)
    with sessions() as s:
        msgs = list(s.scalars(select(Message).where(Message.conversation_id == conv.id)
                              .order_by(Message.id)))
    assert next((m.direction, m.text) for m in msgs) == ("in", "你好")
    replies = [m for m in msgs if m.direction == "out"]
    assert replies and all(m.status == "sent" for m in replies)
    sends = oa_api.calls("/cgi-bin/message/custom/send")
    assert [(r.body["touser"], r.body["msgtype"], r.body["text"]["content"]) for r in sends] \
        == [(OPENID, "text", m.text) for m in replies]
    assert len(oa_api.calls("/cgi-bin/token")) == 1


def test_follow_scan_and_menu_events_become_customer_events(
        oa_client: TestClient, sessions: sessionmaker[Session]) -> None:
    t = int(time.time())
    follow = event_xml(OPENID, "subscribe", "qrscene_store-12", t, ticket="TICKET1")
    assert post(oa_client, follow).text == "success"
    assert post(oa_client, follow).text == "success"  # a retry: one event
    assert post(oa_client, event_xml(OPENID, "SCAN", "spring-fair", t + 1, "T2")).status_code \
        == 200
    assert post(oa_client, event_xml(OPENID, "CLICK", "MENU_ORDERS", t + 2)).status_code == 200
    assert post(oa_client, event_xml(OPENID, "VIEW", "https://shop.example/a", t + 3)
                ).status_code == 200
    assert post(oa_client, event_xml(OPENID, "LOCATION", None, t + 4)).status_code == 200
    assert post(oa_client, event_xml(OPENID, "unsubscribe", "", t + 5)).status_code == 200
    customer_id = customer_of(sessions, "wechat_openid", OPENID)
    with sessions() as s:
        rows = [(e.type, e.channel, e.properties) for e in s.scalars(
            select(Event).where(Event.customer_id == customer_id).order_by(Event.ts))]
    assert rows == [
        ("oa_subscribe", "oa", {"scene": "store-12", "ticket": "TICKET1"}),
        ("oa_scan", "oa", {"scene": "spring-fair", "ticket": "T2"}),
        ("oa_menu_click", "oa", {"key": "MENU_ORDERS"}),
        ("oa_menu_view", "oa", {"url": "https://shop.example/a"}),
        ("oa_unsubscribe", "oa", {}),
    ]


def test_message_from_an_openid_joins_the_phone_customer_after_a_linking_event(
        oa_client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as s:
        ingest(s, "events", [{"id": "E-phone", "identities": [{"kind": "phone",
                                                               "value": PHONE}],
                              "type": "app_login", "ts": "2026-12-01T10:00:00"}],
               settings=settings)
        s.commit()
    phone_customer = customer_of(sessions, "phone", PHONE)
    say(oa_client, "在吗", "24100000000000010")
    follower = customer_of(sessions, "wechat_openid", OPENID)
    assert follower is not None and follower != phone_customer
    # The brand's system reports the follower bound their phone (e.g. on a member page).
    with sessions() as s:
        ingest(s, "events", [{"id": "E-bind", "identities": [
            {"kind": "phone", "value": PHONE}, {"kind": "wechat_openid", "value": OPENID}],
            "type": "bind_phone", "ts": "2026-12-02T08:00:00"}], settings=settings)
        s.commit()
    assert customer_of(sessions, "wechat_openid", OPENID) == phone_customer
    say(oa_client, "我的订单到哪了", "24100000000000011")
    with sessions() as s:
        history = desk.conversations_of(s, phone_customer)
        assert [c["channel"] for c in history] == ["oa"]
        texts = [m["text"] for m in desk.messages_of(s, history[0]["id"])
                 if m["direction"] == "in"]
        merged = s.get(Customer, follower)
        assert merged is not None and merged.merged_into_id == phone_customer
    assert texts == ["在吗", "我的订单到哪了"]


def test_unionid_given_by_the_platform_is_an_identity(
        oa_client: TestClient, sessions: sessionmaker[Session]) -> None:
    post(oa_client, text_xml(OPENID, "你好", "24100000000000020", unionid="uUnion42"))
    assert customer_of(sessions, "wechat_unionid", "uUnion42") == customer_of(
        sessions, "wechat_openid", OPENID)


def test_plaintext_mode_and_missing_configuration(
        oa_client: TestClient, sessions: sessionmaker[Session], oa_cs: ChannelSettings) -> None:
    oa_client.app.state.channel_settings = oa_cs.model_copy(
        update={"oa_aes_key": SecretStr("")})
    ok = oa_client.post(URL, params=plain_params(DOC["token"]),
                        content=text_xml(OPENID, "明文", "24100000000000030").encode())
    assert (ok.status_code, ok.text) == (200, "success")
    assert customer_of(sessions, "wechat_openid", OPENID) is not None
    forged = oa_client.post(URL, params=plain_params("guess"),
                            content=text_xml(OPENID, "明文", "24100000000000031").encode())
    assert forged.status_code == 403
    oa_client.app.state.channel_settings = ChannelSettings()
    unconfigured = oa_client.get(URL, params=DOC["verify"])
    assert unconfigured.status_code == 503
    assert "SIYU_OA_APPID" in unconfigured.text and "SIYU_OA_TOKEN" in unconfigured.text


# -- replies in and out of the window ------------------------------------------------------


def _age_inbound(sessions: sessionmaker[Session], hours: float) -> None:
    with sessions() as s:
        for m in s.scalars(select(Message).where(Message.direction == "in",
                                                 Message.channel == "oa")):
            m.created_at = m.created_at - dt.timedelta(hours=hours)
        s.commit()


def _handed_off(oa_client: TestClient, sessions: sessionmaker[Session]) -> int:
    say(oa_client, "转人工", "24100000000000040")
    run_jobs(sessions)
    return oa_conversation(sessions).id


@pytest.mark.usefixtures("staff")
def test_agent_reply_inside_the_window_goes_out_once(
        oa_client: TestClient, login: Login, sessions: sessionmaker[Session],  # noqa: F811
        oa_api: FakeOa) -> None:
    conv_id = _handed_off(oa_client, sessions)
    before = len(oa_api.calls("/cgi-bin/message/custom/send"))
    agent = login("agent")
    page = agent.get(f"/service/conversations/{conv_id}")
    assert "公众号客服消息窗口内还可回复" in page.text
    sent = agent.post(f"/service/conversations/{conv_id}/reply",
                      data={"text": "您好，我是客服小禾", "csrf_token": csrf_from(page.text)})
    assert sent.status_code == 200 and "发送失败" not in sent.text
    run_jobs(sessions)
    run_jobs(sessions)
    sends = oa_api.calls("/cgi-bin/message/custom/send")[before:]
    assert [(r.body["touser"], r.body["text"]["content"]) for r in sends] == [
        (OPENID, "您好，我是客服小禾")]
    with sessions() as s:
        out = s.scalars(select(Message).where(Message.sender == "agent")).one()
        assert out.status == "sent"


@pytest.mark.usefixtures("staff")
def test_agent_reply_outside_the_window_is_refused_with_the_reason_and_what_remains(
        oa_client: TestClient, login: Login, sessions: sessionmaker[Session],  # noqa: F811
        settings: Settings, oa_api: FakeOa) -> None:
    conv_id = _handed_off(oa_client, sessions)
    with sessions() as s:  # the follower is also known by phone
        ingest(s, "events", [{"id": "E-bind", "identities": [
            {"kind": "phone", "value": PHONE}, {"kind": "wechat_openid", "value": OPENID}],
            "type": "bind_phone", "ts": "2026-12-02T08:00:00"}], settings=settings)
        s.commit()
    _age_inbound(sessions, 49)
    sends_before = len(oa_api.calls("/cgi-bin/message/custom/send"))
    agent = login("agent")  # signing in stores a session and an audit entry: count after it
    before = row_counts(sessions)
    page = agent.get(f"/service/conversations/{conv_id}")
    assert "公众号客服消息窗口已关闭" in page.text and "可改用：短信" in page.text
    refused = agent.post(f"/service/conversations/{conv_id}/reply",
                         data={"text": "您好，还在吗？", "csrf_token": csrf_from(page.text)})
    assert refused.status_code == 200
    assert "发送失败：公众号客服消息窗口已关闭" in refused.text
    assert "已超过 48 小时" in refused.text and "可改用：短信" in refused.text
    with sessions() as s:  # the same refusal for the API (409), with machine-readable details
        agent_id = s.scalar(select(User.id).where(User.username == "agent"))
        assert agent_id is not None
        with pytest.raises(desk.ReplyRefused) as err:
            desk.agent_reply(s, conv_id, agent_id, "您好")
        s.rollback()
    assert err.value.status_code == 409
    assert err.value.details["reason"] == "oa_expired"
    assert {"channel": "sms", "label": "短信"} in err.value.details["alternatives"]
    run_jobs(sessions)
    assert row_counts(sessions) == before  # nothing stored, nothing queued
    assert len(oa_api.calls("/cgi-bin/message/custom/send")) == sends_before


@pytest.mark.usefixtures("staff")
def test_the_window_holds_at_most_the_configured_number_of_replies(
        oa_client: TestClient, login: Login, sessions: sessionmaker[Session],  # noqa: F811
        oa_api: FakeOa) -> None:
    conv_id = _handed_off(oa_client, sessions)
    with sessions() as s:
        used = s.scalar(select(Message.id).where(Message.direction == "out").limit(1))
    assert used is not None  # the bot's hand-off notice used one of the five
    agent = login("agent")
    token = csrf_from(agent.get(f"/service/conversations/{conv_id}").text)
    texts = []
    for n in range(6):
        texts.append(agent.post(f"/service/conversations/{conv_id}/reply",
                                data={"text": f"第 {n + 1} 条", "csrf_token": token}).text)
    with sessions() as s:
        out = s.scalars(select(Message.text).where(Message.direction == "out")).all()
    assert len(out) == 5
    assert "公众号客服消息已达上限" in texts[-1]
    run_jobs(sessions)
    assert len(oa_api.calls("/cgi-bin/message/custom/send")) == 5


def test_a_queued_reply_whose_window_closed_fails_with_its_reason(
        oa_client: TestClient, sessions: sessionmaker[Session], oa_api: FakeOa) -> None:
    say(oa_client, "你好", "24100000000000050")
    _age_inbound(sessions, 47.9)
    conv_id = oa_conversation(sessions).id
    with sessions() as s:
        message_id = desk.post_outbound(s, conversation_id=conv_id, sender="system",
                                        text="稍后回复您")
        s.commit()
    _age_inbound(sessions, 1)
    run_jobs(sessions)
    with sessions() as s:
        message = s.get(Message, message_id)
        assert message is not None and message.status == "failed"
        shown = desk.message_to_dict(message)["error"]
    assert "公众号客服消息窗口已关闭" in shown
    assert all(r.body["text"]["content"] != "稍后回复您"
               for r in oa_api.calls("/cgi-bin/message/custom/send"))


def test_a_token_the_platform_retired_is_refreshed_once(
        oa_client: TestClient, sessions: sessionmaker[Session], oa_api: FakeOa) -> None:
    say(oa_client, "你好", "24100000000000060")
    run_jobs(sessions)
    assert oa_api.issued == ["OATOKEN-1"]
    # Something else fetched a token with the same credentials: ours is retired.
    import httpx

    httpx.get(f"{oa_api.url}/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": DOC["appid"], "secret": SECRET})
    with sessions() as s:
        desk.post_outbound(s, conversation_id=oa_conversation(sessions).id, sender="system",
                           text="您好，客服马上来")
        s.commit()
    assert run_jobs(sessions).failed == 0
    assert oa_api.issued == ["OATOKEN-1", "OATOKEN-2", "OATOKEN-3"]
    with sessions() as s:
        row = s.scalars(select(AccessToken)).one()
        assert row.refreshes == 2 and "OATOKEN" not in (row.token_enc or "")
        assert all(m.status == "sent" for m in s.scalars(
            select(Message).where(Message.direction == "out")))
