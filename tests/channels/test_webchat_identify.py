"""Web chat identification: brand tokens, phone codes over a local SMS server, demo mode."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.config import ChannelSettings
from siyu.channels.models import VerificationCode
from siyu.channels.webchat.tokens import (
    ChatAuthError,
    WebChatNotConfigured,
    mint_token,
    read_session,
    verify_token,
)
from siyu.customers.models import Customer, Identity
from tests.channels.conftest import WEBCHAT_SECRET, chat_key, row_counts
from tests.channels.fakes import FakeSms

PHONE = "13800138000"
E164 = "+8613800138000"


# -- brand tokens ----------------------------------------------------------------------------


def test_token_round_trip_normalises_identities() -> None:
    token = mint_token(WEBCHAT_SECRET, {"phone": "138 0013 8000", "external_id": " C1 "},
                       ttl_seconds=600, name="林晓雯")
    claims = verify_token(WEBCHAT_SECRET, token, max_lifetime=3600)
    assert [(r.kind, r.value, r.verified) for r in claims.identities] == [
        ("phone", E164, True), ("external_id", "C1", False)]
    assert claims.name == "林晓雯"
    # A standard HS256 JWT: any JWT library reads it.
    assert jwt.decode(token, WEBCHAT_SECRET, algorithms=["HS256"])["identities"] == {
        "phone": "138 0013 8000", "external_id": " C1 "}


@pytest.mark.parametrize(("make", "field", "reason"), [
    (lambda: mint_token("another-secret-of-the-same-length-0123", {"phone": PHONE}), "token",
     "Signature verification failed"),
    (lambda: mint_token(WEBCHAT_SECRET, {"phone": PHONE}, now=time.time() - 7200),
     "token.exp", "expired"),
    (lambda: mint_token(WEBCHAT_SECRET, {"phone": PHONE}, ttl_seconds=90_000), "token.exp",
     "too far in the future"),
    (lambda: mint_token(WEBCHAT_SECRET, {"phone": "12345"}), "token.identities.phone", None),
    (lambda: mint_token(WEBCHAT_SECRET, {"shoe_size": "42"}), "token.identities.shoe_size",
     None),
    (lambda: jwt.encode({"identities": {"phone": PHONE}}, WEBCHAT_SECRET, algorithm="HS256"),
     "token", 'Token is missing the "exp" claim'),
    (lambda: jwt.encode({"exp": int(time.time()) + 60}, WEBCHAT_SECRET, algorithm="HS256"),
     "token.identities", "required"),
    (lambda: jwt.encode({"identities": {"phone": PHONE}, "exp": int(time.time()) + 60},
                        WEBCHAT_SECRET * 2, algorithm="HS384"), "token",
     "The specified alg value is not allowed"),
])
def test_bad_tokens_are_refused_naming_the_claim(make: Any, field: str, reason: str | None
                                                 ) -> None:
    with pytest.raises(ChatAuthError) as err:
        verify_token(WEBCHAT_SECRET, make(), max_lifetime=86_400)
    assert err.value.status_code == 401
    assert err.value.details["field"] == field
    if reason:
        assert err.value.details["reason"] == reason


def test_tokens_need_a_configured_secret() -> None:
    with pytest.raises(WebChatNotConfigured):
        verify_token("", "x.y.z", max_lifetime=60)


def test_token_exchange_links_the_identities_to_one_customer(
        chan_client: TestClient, sessions: sessionmaker[Session]) -> None:
    token = mint_token(WEBCHAT_SECRET, {"phone": PHONE, "external_id": "C42"}, name="王芳")
    response = chan_client.post("/chat/api/session", json={"token": token})
    assert response.status_code == 200
    body = response.json()
    assert body["customer"] == {"name": "王芳"} and body["via"] == "token"
    chat = read_session(chat_key(chan_client), body["session"], max_age=60)
    with sessions() as s:
        rows = s.execute(select(Identity.kind, Identity.value, Identity.customer_id)).all()
    assert sorted((k, v) for k, v, _ in rows) == [("external_id", "C42"), ("phone", E164)]
    assert {c for _, _, c in rows} == {chat.customer_id}


def test_refused_token_creates_nothing(chan_client: TestClient,
                                       sessions: sessionmaker[Session]) -> None:
    before = row_counts(sessions)
    forged = mint_token("not-the-brand-secret-but-long-enough-01", {"phone": PHONE})
    response = chan_client.post("/chat/api/session", json={"token": forged})
    assert response.status_code == 401
    assert response.json()["details"]["field"] == "token"
    missing = chan_client.post("/chat/api/session", json={})
    assert missing.status_code == 422
    assert missing.json()["details"] == [{"field": "token", "reason": "required"}]
    assert chan_client.post("/chat/api/session", content=b"{oops").status_code == 400
    assert row_counts(sessions) == before


# -- phone codes -----------------------------------------------------------------------------


def sent_code(sms: FakeSms, index: int = -1) -> str:
    return str(sms.calls("/sms")[index].body["params"]["code"])


def test_phone_code_flow(chan_client: TestClient, sms_api: FakeSms,
                         sessions: sessionmaker[Session]) -> None:
    response = chan_client.post("/chat/api/code", json={"phone": PHONE})
    assert response.status_code == 200
    assert response.json() == {"phone": "+86138****8000", "expires_in": 300, "resend_in": 60}
    call = sms_api.calls("/sms")[0]
    code = sent_code(sms_api)
    assert len(code) == 6 and code.isdigit()
    assert call.headers["authorization"] == "Bearer sms-token-xyz"
    assert call.body == {"to": E164, "template": "verification_code",
                         "params": {"code": code, "minutes": 5},
                         "text": f"【私域客服】您的验证码是 {code}，5 分钟内有效。请勿告诉他人。"}
    with sessions() as s:
        row = s.scalars(select(VerificationCode)).one()
    assert row.phone == E164 and code not in row.code_hash and len(row.code_hash) == 64

    ok = chan_client.post("/chat/api/verify", json={"phone": "+86 138-0013-8000", "code": code})
    assert ok.status_code == 200 and ok.json()["via"] == "phone"
    with sessions() as s:
        identity = s.scalars(select(Identity)).one()
    assert (identity.kind, identity.value, identity.verified) == ("phone", E164, True)
    again = chan_client.post("/chat/api/verify", json={"phone": PHONE, "code": code})
    assert again.status_code == 401  # used once
    assert again.json()["details"]["reason"] == "expired"


def test_five_wrong_guesses_burn_the_code(chan_client: TestClient, sms_api: FakeSms,
                                          sessions: sessionmaker[Session]) -> None:
    chan_client.post("/chat/api/code", json={"phone": PHONE})
    code = sent_code(sms_api)
    wrong = "000000" if code != "000000" else "111111"
    lefts = []
    for _ in range(5):
        r = chan_client.post("/chat/api/verify", json={"phone": PHONE, "code": wrong})
        assert r.status_code == 401
        lefts.append(r.json()["details"]["attempts_left"])
    assert lefts == [4, 3, 2, 1, 0]
    r = chan_client.post("/chat/api/verify", json={"phone": PHONE, "code": code})
    assert r.status_code == 401
    assert r.json()["details"]["reason"] == "too_many_attempts"
    with sessions() as s:
        assert s.scalars(select(Identity)).all() == []
        assert s.scalars(select(VerificationCode.attempts)).one() == 5


def test_expired_code_is_refused(chan_client: TestClient, sms_api: FakeSms,
                                 sessions: sessionmaker[Session]) -> None:
    chan_client.post("/chat/api/code", json={"phone": PHONE})
    code = sent_code(sms_api)
    with sessions() as s:
        s.execute(update(VerificationCode).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        s.commit()
    r = chan_client.post("/chat/api/verify", json={"phone": PHONE, "code": code})
    assert r.status_code == 401 and r.json()["details"]["reason"] == "expired"
    with sessions() as s:
        assert s.scalars(select(Identity)).all() == []


def age_codes(sessions: sessionmaker[Session], seconds: int) -> None:
    with sessions() as s:
        for row in s.scalars(select(VerificationCode)):
            row.created_at = row.created_at - dt.timedelta(seconds=seconds)
        s.commit()


def test_codes_are_rate_limited_per_phone(chan_client: TestClient, sms_api: FakeSms,
                                          sessions: sessionmaker[Session]) -> None:
    assert chan_client.post("/chat/api/code", json={"phone": PHONE}).status_code == 200
    again = chan_client.post("/chat/api/code", json={"phone": PHONE})
    assert again.status_code == 429
    assert again.json()["details"]["reason"] == "resend too soon"
    assert len(sms_api.calls("/sms")) == 1
    # Past the resend interval, but five codes in the hour is the cap.
    for _ in range(4):
        age_codes(sessions, 61)
        assert chan_client.post("/chat/api/code", json={"phone": PHONE}).status_code == 200
    age_codes(sessions, 61)
    capped = chan_client.post("/chat/api/code", json={"phone": PHONE})
    assert capped.status_code == 429 and capped.json()["details"]["reason"] == "hourly limit"
    assert len(sms_api.calls("/sms")) == 5


@pytest.mark.parametrize(("body", "field"), [
    ({}, "phone"), ({"phone": ""}, "phone"), ({"phone": "12345"}, "phone"),
    ({"phone": 13800138000}, "phone"),
])
def test_invalid_phone_is_422_and_sends_nothing(chan_client: TestClient, sms_api: FakeSms,
                                               body: dict[str, Any], field: str) -> None:
    r = chan_client.post("/chat/api/code", json=body)
    assert r.status_code == 422 and r.json()["details"][0]["field"] == field
    assert sms_api.calls("/sms") == []


def test_sms_provider_failure_leaves_no_code(chan_client: TestClient, sms_api: FakeSms,
                                             sessions: sessionmaker[Session]) -> None:
    sms_api.then("/sms", {"status": 500, "json": {"error": "down"}})
    r = chan_client.post("/chat/api/code", json={"phone": PHONE})
    assert r.status_code == 502
    assert r.json()["message"] == "SMS provider refused the message (HTTP 500)"
    with sessions() as s:
        assert s.scalars(select(VerificationCode)).all() == []


def test_bad_code_format_is_422(chan_client: TestClient) -> None:
    r = chan_client.post("/chat/api/verify", json={"phone": PHONE, "code": "12ab"})
    assert r.status_code == 422
    assert r.json()["details"] == [{"field": "code", "reason": "must be 6 digits"}]


# -- demo mode -------------------------------------------------------------------------------


def make_customer(sessions: sessionmaker[Session], name: str, phone: str) -> int:
    with sessions() as s:
        customer = Customer(name=name, tier="黑金", city="上海")
        s.add(customer)
        s.flush()
        s.add(Identity(customer_id=customer.id, kind="phone", value=phone, verified=True))
        s.commit()
        return customer.id


def test_demo_is_closed_unless_enabled(chan_client: TestClient,
                                       sessions: sessionmaker[Session]) -> None:
    customer_id = make_customer(sessions, "林晓雯", E164)
    assert chan_client.get("/chat/demo").status_code == 404
    r = chan_client.post("/chat/api/demo", json={"customer_id": customer_id})
    assert r.status_code == 403


def test_demo_lists_customers_and_starts_a_session(
        chan_client: TestClient, channel_settings: ChannelSettings,
        sessions: sessionmaker[Session]) -> None:
    chan_client.app.state.channel_settings = channel_settings.model_copy(  # type: ignore[attr-defined]
        update={"webchat_demo": True})
    customer_id = make_customer(sessions, "林晓雯", E164)
    page = chan_client.get("/chat/demo")
    assert page.status_code == 200
    assert "林晓雯" in page.text and f'data-customer-id="{customer_id}"' in page.text
    r = chan_client.post("/chat/api/demo", json={"customer_id": customer_id})
    assert r.status_code == 200 and r.json()["customer"] == {"name": "林晓雯"}
    chat = read_session(chat_key(chan_client), r.json()["session"], max_age=60)
    assert chat.customer_id == customer_id and chat.via == "demo"
    assert [(i.kind, i.value) for i in chat.identities] == [("phone", E164)]
    assert chan_client.post("/chat/api/demo", json={"customer_id": 999999}).status_code == 404
    bad = chan_client.post("/chat/api/demo", json={"customer_id": "1"})
    assert bad.status_code == 422
    assert bad.json()["details"] == [{"field": "customer_id", "reason": "must be an integer"}]


# -- pages and snippet ------------------------------------------------------------------------


def test_chat_page_and_assets_are_self_contained(chan_client: TestClient) -> None:
    page = chan_client.get("/chat")
    assert page.status_code == 200
    assert "在线客服" in page.text and 'lang="zh-CN"' in page.text
    assert 'data-phone-login="1"' in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for name, kind in (("chat.js", "javascript"), ("chat.css", "css")):
        asset = chan_client.get(f"/chat/assets/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
        assert "https://" not in asset.text
    assert chan_client.get("/chat/assets/secret.py").status_code == 404


def test_embed_snippet_points_at_this_server(chan_client: TestClient) -> None:
    js = chan_client.get("/chat/embed.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert 'var origin = "http://testserver";' in js.text
    assert "iframe" in js.text and "在线客服" in js.text
