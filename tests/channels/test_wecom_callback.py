"""``/channels/wecom/callback`` with WeCom's documented example (TestClient)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.channels.wecom.crypto import WeComCrypto
from siyu.config import Settings
from siyu.customers.models import Identity
from siyu.events.models import Event
from siyu.jobs.models import Job
from tests.channels.conftest import CORP_SECRET, row_counts, run_jobs
from tests.channels.fakes import FakeWeCom

URL = "/channels/wecom/callback"


def message_params(vector: dict[str, Any]) -> dict[str, str]:
    m = vector["message"]
    return {"msg_signature": m["msg_signature"], "timestamp": m["timestamp"],
            "nonce": m["nonce"]}


def post_vector(client: TestClient, vector: dict[str, Any], **override: str) -> Any:
    return client.post(URL, params={**message_params(vector), **override},
                       content=vector["message"]["body"].encode(),
                       headers={"Content-Type": "text/xml"})


def one_char_changed(signature: str) -> str:
    return signature[:-1] + ("0" if signature[-1] != "0" else "1")


def encrypted(vector: dict[str, Any], xml: str, nonce: str = "abc123", ts: str = "1700000000"
              ) -> tuple[dict[str, str], bytes]:
    """A callback request WeCom would send for plaintext ``xml`` (using the vector's keys)."""
    crypto = WeComCrypto(vector["token"], vector["encoding_aes_key"], vector["corp_id"])
    reply = crypto.encrypt_message(xml, nonce, ts)
    from siyu.channels.wecom.crypto import parse_xml

    root = parse_xml(reply)
    enc = root.findtext("Encrypt") or ""
    sig = root.findtext("MsgSignature") or ""
    body = (f"<xml><ToUserName><![CDATA[{vector['corp_id']}]]></ToUserName>"
            f"<Encrypt><![CDATA[{enc}]]></Encrypt></xml>").encode()
    return {"msg_signature": sig, "timestamp": ts, "nonce": nonce}, body


# -- URL verification ------------------------------------------------------------------------


def test_url_verification_returns_the_documented_plaintext(chan_client: TestClient,
                                                           vector: dict[str, Any]) -> None:
    v = vector["verify_url"]
    response = chan_client.get(URL, params={k: v[k] for k in
                                            ("msg_signature", "timestamp", "nonce", "echostr")})
    assert response.status_code == 200
    assert response.text == "1616140317555161061" == v["expected_plaintext"]
    assert response.headers["content-type"].startswith("text/plain")


def test_url_verification_with_a_changed_signature_is_403(chan_client: TestClient,
                                                          vector: dict[str, Any]) -> None:
    v = vector["verify_url"]
    response = chan_client.get(URL, params={
        "msg_signature": one_char_changed(v["msg_signature"]), "timestamp": v["timestamp"],
        "nonce": v["nonce"], "echostr": v["echostr"]})
    assert response.status_code == 403
    assert response.json()["details"] == {"reason": "bad_signature"}
    assert "1616140317555161061" not in response.text


def test_url_verification_names_missing_parameters(chan_client: TestClient) -> None:
    response = chan_client.get(URL, params={"timestamp": "1", "nonce": "2"})
    assert response.status_code == 400
    assert response.json()["details"] == [{"field": "msg_signature", "reason": "required"},
                                          {"field": "echostr", "reason": "required"}]


def test_unconfigured_wecom_answers_503_naming_the_settings(
        database_url: str, engine: Any, sessions: sessionmaker[Session],
        vector: dict[str, Any]) -> None:
    app = create_app(Settings(database_url=database_url, environment="test"), engine=engine)
    with TestClient(app) as client:
        response = post_vector(client, vector)
    assert response.status_code == 503
    assert response.json()["message"] == ("WeCom callback is not configured: set "
                                          "SIYU_WECOM_CORP_ID, SIYU_WECOM_TOKEN, "
                                          "SIYU_WECOM_AES_KEY")


# -- refused messages store nothing ----------------------------------------------------------


def test_changed_signature_is_refused_and_nothing_is_stored(
        chan_client: TestClient, vector: dict[str, Any], sessions: sessionmaker[Session]
        ) -> None:
    before = row_counts(sessions)
    response = post_vector(chan_client, vector, msg_signature=one_char_changed(
        vector["message"]["msg_signature"]))
    assert response.status_code == 403
    assert response.json()["details"] == {"reason": "bad_signature"}
    assert row_counts(sessions) == before


@pytest.mark.parametrize(("body", "reason"), [
    (b"", None),
    (b"not xml at all", "malformed_xml"),
    (b"<xml><ToUserName>x</ToUserName></xml>", "malformed_xml"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>',
     "malformed_xml"),
])
def test_malformed_body_is_400_and_stores_nothing(
        chan_client: TestClient, vector: dict[str, Any], sessions: sessionmaker[Session],
        body: bytes, reason: str | None) -> None:
    before = row_counts(sessions)
    response = chan_client.post(URL, params=message_params(vector), content=body)
    assert response.status_code == 400
    if reason:
        assert response.json()["details"] == {"reason": reason}
    assert row_counts(sessions) == before


def test_stale_timestamp_is_refused_when_skew_is_limited(
        wecom_settings: Settings, engine: Any, sessions: sessionmaker[Session],
        vector: dict[str, Any]) -> None:
    settings = wecom_settings.model_copy(update={"wecom_max_skew_seconds": 300})
    before = row_counts(sessions)
    with TestClient(create_app(settings, engine=engine)) as client:
        response = post_vector(client, vector)  # the example dates from 2014
    assert response.status_code == 403
    assert response.json()["details"] == {"reason": "stale_timestamp"}
    assert row_counts(sessions) == before


# -- the documented message ------------------------------------------------------------------


def test_documented_message_is_stored_for_mycreate_and_answered_by_the_bot(
        chan_client: TestClient, client: TestClient, vector: dict[str, Any],
        sessions: sessionmaker[Session], wecom_api: FakeWeCom) -> None:
    response = post_vector(chan_client, vector)
    assert response.status_code == 200
    assert response.text == ""
    # Acknowledged before the bot ran: its job is queued, no reply exists yet.
    with sessions() as s:
        queued = list(s.scalars(select(Job.name).where(Job.status == "queued")))
    assert "service.handle_inbound" in queued

    customer = client.get("/api/v1/customers", params={"identity": "wecom_userid:mycreate"})
    assert customer.status_code == 200
    customer_id = customer.json()["id"]
    conversations = client.get("/api/v1/conversations", params={"customer_id": customer_id})
    assert conversations.status_code == 200
    convs = conversations.json()["items"]
    assert len(convs) == 1 and convs[0]["channel"] == "wecom"
    messages = client.get(f"/api/v1/conversations/{convs[0]['id']}/messages").json()["items"]
    assert [(m["direction"], m["sender"], m["text"]) for m in messages] == [
        ("in", "customer", "hello")]

    summary = run_jobs(sessions)
    assert summary.failed == 0
    messages = client.get(f"/api/v1/conversations/{convs[0]['id']}/messages").json()["items"]
    replies = [m for m in messages if m["direction"] == "out"]
    assert replies and replies[0]["sender"] in ("bot", "system")
    assert replies[0]["status"] == "sent"
    # Delivered over WeCom's API to mycreate through the app the message came in on.
    sends = wecom_api.calls("/cgi-bin/message/send")
    assert len(sends) == len(replies)
    assert sends[0].body["touser"] == "mycreate"
    assert sends[0].body["agentid"] == 218
    assert sends[0].body["text"]["content"] == replies[0]["text"]
    assert "enable_duplicate_check" not in sends[0].body


def test_retried_callback_is_stored_once(chan_client: TestClient, client: TestClient,
                                         vector: dict[str, Any],
                                         sessions: sessionmaker[Session]) -> None:
    assert post_vector(chan_client, vector).status_code == 200
    after_first = row_counts(sessions)
    assert post_vector(chan_client, vector).status_code == 200
    assert row_counts(sessions) == after_first


def test_message_from_an_external_contact_uses_the_external_userid(
        chan_client: TestClient, client: TestClient, vector: dict[str, Any],
        sessions: sessionmaker[Session], wecom_api: FakeWeCom) -> None:
    xml = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
           "<FromUserName><![CDATA[wmExternal0001]]></FromUserName>"
           "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           "<Content><![CDATA[我的订单到哪了]]></Content><MsgId>9000000001</MsgId>"
           "<OpenKfId><![CDATA[wkShopKf01]]></OpenKfId></xml>")
    params, body = encrypted(vector, xml)
    assert chan_client.post(URL, params=params, content=body).status_code == 200
    found = client.get("/api/v1/customers",
                       params={"identity": "wecom_external_userid:wmExternal0001"})
    assert found.status_code == 200
    assert client.get("/api/v1/customers",
                      params={"identity": "wecom_userid:wmExternal0001"}).status_code == 404
    run_jobs(sessions)
    kf = wecom_api.calls("/cgi-bin/kf/send_msg")
    assert kf and kf[0].body["touser"] == "wmExternal0001"
    assert kf[0].body["open_kfid"] == "wkShopKf01"
    assert kf[0].body["msgid"].startswith("siyu-")
    assert wecom_api.calls("/cgi-bin/message/send") == []


def test_add_external_contact_event_goes_on_the_timeline(
        chan_client: TestClient, client: TestClient, vector: dict[str, Any],
        sessions: sessionmaker[Session]) -> None:
    xml = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
           "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1700000100</CreateTime>"
           "<MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[change_external_contact]]></Event>"
           "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
           "<UserID><![CDATA[advisor_chen]]></UserID>"
           "<ExternalUserID><![CDATA[wmNewFriend01]]></ExternalUserID>"
           "<State><![CDATA[package_card]]></State></xml>")
    params, body = encrypted(vector, xml)
    for _ in range(2):  # WeCom's retry is one timeline entry
        assert chan_client.post(URL, params=params, content=body).status_code == 200
    with sessions() as s:
        events = list(s.scalars(select(Event)))
    assert [(e.type, e.channel, e.properties) for e in events] == [
        ("wecom_add_external_contact", "wecom",
         {"member": "advisor_chen", "state": "package_card"})]
    found = client.get("/api/v1/customers",
                       params={"identity": "wecom_external_userid:wmNewFriend01"}).json()
    assert found["id"] == events[0].customer_id


def test_add_contact_with_a_channel_codes_state_attributes_the_new_contact_to_it(
        chan_client: TestClient, vector: dict[str, Any], sessions: sessionmaker[Session]
        ) -> None:
    # The brand made a 渠道活码 whose add_contact_way state is "store_sh01"; WeCom returns
    # that state in the add-contact callback of everyone who scanned it.
    from siyu.referrals import service as referrals
    from siyu.referrals.models import ReferralAttribution

    with sessions() as s:
        code_id = referrals.create_channel_code(s, "上海门店活码", state="store_sh01").id
        s.commit()

    def add_contact(external_userid: str, state: str, ts: int) -> None:
        xml = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
               f"<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{ts}</CreateTime>"
               "<MsgType><![CDATA[event]]></MsgType>"
               "<Event><![CDATA[change_external_contact]]></Event>"
               "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
               "<UserID><![CDATA[advisor_chen]]></UserID>"
               f"<ExternalUserID><![CDATA[{external_userid}]]></ExternalUserID>"
               f"<State><![CDATA[{state}]]></State></xml>")
        params, body = encrypted(vector, xml, ts=str(ts))
        for _ in range(2):  # WeCom retries: still one attribution
            assert chan_client.post(URL, params=params, content=body).status_code == 200

    add_contact("wmScanned01", "store_sh01", 1700000200)
    add_contact("wmOther01", "not_ours", 1700000300)  # a state siyu never issued
    with sessions() as s:
        rows = list(s.scalars(select(ReferralAttribution)))
        scanned = s.scalar(select(Identity.customer_id).where(
            Identity.kind == "wecom_external_userid", Identity.value == "wmScanned01"))
        [stats] = referrals.report(s)
    assert [(r.referred_id, r.code_id, r.referrer_id, r.status) for r in rows] == [
        (scanned, code_id, None, "pending")]
    assert (stats.name, stats.attributed) == ("上海门店活码", 1)


def test_other_events_are_acknowledged_and_ignored(
        chan_client: TestClient, vector: dict[str, Any], sessions: sessionmaker[Session]
        ) -> None:
    xml = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
           "<FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1700000200"
           "</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[enter_agent]]></Event><AgentID>218</AgentID></xml>")
    params, body = encrypted(vector, xml)
    before = row_counts(sessions)
    assert chan_client.post(URL, params=params, content=body).status_code == 200
    assert row_counts(sessions) == before


def test_secrets_are_never_logged(chan_client: TestClient, vector: dict[str, Any],
                                  sessions: sessionmaker[Session],
                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        post_vector(chan_client, vector, msg_signature="0" * 40)
        post_vector(chan_client, vector)
        run_jobs(sessions)
    for secret in (vector["token"], vector["encoding_aes_key"], CORP_SECRET, "TOKEN-1"):
        assert secret not in caplog.text
