"""The referral code routes: a customer's invite code and link (created on first ask), the
channel codes (create: 201, 422 naming the field, 403 for a read-only key; list with the
attributed contacts and conversion) and, with WeCom configured, the 联系我 QR code made
through ``externalcontact/add_contact_way`` at a local WeCom stand-in."""

from __future__ import annotations

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
from siyu.auth.service import create_api_key, create_user
from siyu.config import Settings
from siyu.referrals import service as referrals
from siyu.referrals.models import ReferralCode
from tests.channels.fakes import FakeWeCom, serve
from tests.referrals.test_referrals import _customer, _order

CODES = "/api/v1/referrals/channel-codes"
CORP, SECRET = "wwcorp0001", "corp-secret-for-tests"


def _advisor(sessions: sessionmaker[Session], username: str = "advisor_chen") -> int:
    with sessions() as s:
        create_user(s, username, "correct-horse-9", "agent", display_name="陈静")
        s.commit()
        return int(s.scalars(select(User.id).where(User.username == username)).one())


def test_a_customers_invite_code_is_created_on_first_ask_then_the_same(
        client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = _customer(sessions, settings, "C-API", "13800000071")
    first = client.get(f"/api/v1/customers/{cid}/referral-code")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["customer_id"] == cid and len(body["code"]) == referrals.CODE_LENGTH
    assert body["link"] == f"http://testserver/r/{body['code']}"
    assert client.get(f"/api/v1/customers/{cid}/referral-code").json() == body
    assert client.get("/api/v1/customers/999999/referral-code").status_code == 404
    bad = client.get("/api/v1/customers/0/referral-code")
    assert bad.status_code == 422 and "customer_id" in str(bad.json()["details"])
    assert client.get(body["link"].removeprefix("http://testserver")).status_code == 200


def test_create_and_list_channel_codes_with_their_contacts_and_conversion(
        client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    advisor = _advisor(sessions)
    made = client.post(CODES, json={"name": "静安嘉里中心店 门店活码", "channel": "store",
                                    "state": "store_jingan"})
    assert made.status_code == 201, made.text
    store = made.json()
    assert (store["channel"], store["channel_label"], store["state"], store["attributed"],
            store["conversion"], store["wecom_config_id"]) == (
        "store", "门店", "store_jingan", 0, None, None)
    by_advisor = client.post(CODES, json={"name": "顾问陈静 1V1 活码", "channel": "advisor",
                                          "advisor_user_id": advisor}).json()
    assert by_advisor["advisor_name"] == "陈静"
    assert by_advisor["state"] == f"advisor_{by_advisor['code'].lower()}"

    # Two contacts come through the store's code; one buys.
    a = _customer(sessions, settings, "C-A", "13800000081")
    b = _customer(sessions, settings, "C-B", "13800000082")
    with sessions() as s:
        referrals.attribute(s, a, state="store_jingan")
        referrals.attribute(s, b, state="store_jingan")
        s.commit()
    _order(sessions, settings, "C-A", "O-A")
    listed = client.get(CODES)
    assert listed.status_code == 200
    items = {i["code"]: i for i in listed.json()["items"]}
    assert list(items) == [by_advisor["code"], store["code"]]  # the newest first
    row = items[store["code"]]
    assert (row["attributed"], row["qualified"], row["pending"], row["conversion"]) == (
        2, 1, 1, 0.5)
    assert items[by_advisor["code"]]["attributed"] == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "", "channel": "store"}, "name"),
    ({"name": "x" * 101, "channel": "store"}, "name"),
    ({"name": "门店", "channel": "online"}, "channel"),
    ({"name": "门店"}, "channel"),
    ({"name": "门店", "channel": "store", "state": "有 空格"}, "state"),
    ({"name": "门店", "channel": "store", "state": "s" * 31}, "state"),
    ({"name": "门店", "channel": "store", "advisor_user_id": 0}, "advisor_user_id"),
    ({"name": "门店", "channel": "store", "advisor_user_id": 999999}, "advisor_user_id"),
    ({"name": "顾问码", "channel": "advisor"}, "advisor_user_id"),
    ({"name": "门店", "channel": "store", "colour": "red"}, "colour"),
])
def test_bad_input_is_a_422_naming_the_field(client: TestClient, body: dict[str, Any],
                                             field: str,
                                             sessions: sessionmaker[Session]) -> None:
    answer = client.post(CODES, json=body)
    assert answer.status_code == 422, answer.text
    assert field in str(answer.json()["details"])
    with sessions() as s:
        assert s.scalars(select(ReferralCode)).all() == []


def test_a_taken_state_is_a_422_naming_state(client: TestClient) -> None:
    assert client.post(CODES, json={"name": "一", "channel": "campaign",
                                    "state": "spring"}).status_code == 201
    again = client.post(CODES, json={"name": "二", "channel": "campaign", "state": "spring"})
    assert again.status_code == 422 and again.json()["details"] == [
        {"field": "state", "reason": "taken"}]


def test_a_read_only_key_lists_but_may_not_create(client: TestClient,
                                                  sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        reader = {"Authorization": f"Bearer {create_api_key(s, 'r', scopes=['read']).key}"}
        s.commit()
    assert client.post(CODES, headers=reader,
                       json={"name": "门店", "channel": "store"}).status_code == 403
    assert client.get(CODES, headers=reader).status_code == 200
    assert client.post(CODES, headers={"Authorization": "Bearer nope"},
                       json={"name": "门店", "channel": "store"}).status_code == 401


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with serve(FakeWeCom(CORP, {SECRET})) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def wecom_client(database_url: str, engine: Engine, wecom: FakeWeCom,
                 sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, environment="test", wecom_corp_id=CORP,
                        wecom_api_base=wecom.url, wecom_corp_secret=SecretStr(SECRET))
    with sessions() as s:
        key = create_api_key(s, "ops").key
        s.commit()
    with TestClient(create_app(settings, engine=engine)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield client


def test_with_wecom_configured_the_code_gets_its_contact_me_qr_code(
        wecom_client: TestClient, wecom: FakeWeCom, sessions: sessionmaker[Session]) -> None:
    advisor = _advisor(sessions)
    # WeCom's 联系我 needs a member to receive the contacts.
    missing = wecom_client.post(CODES, json={"name": "新品试吃节", "channel": "campaign"})
    assert missing.status_code == 422 and missing.json()["details"] == [
        {"field": "advisor_user_id", "reason": "required"}]
    name = "新品试吃节 直播间活码，扫码添加顾问领取试吃装，每人限领一份，先到先得"
    made = wecom_client.post(CODES, json={"name": name, "channel": "campaign",
                                          "advisor_user_id": advisor,
                                          "state": "campaign-tasting"})
    assert made.status_code == 201, made.text
    assert (made.json()["wecom_config_id"], made.json()["wecom_qr_code"]) == (
        "cfg-1", "https://wework.qpic.cn/wwpic/qr-1/0")
    [call] = wecom.calls("/cgi-bin/externalcontact/add_contact_way")
    assert len(name) > 30 and call.body == {"type": 1, "scene": 2, "remark": name[:30],
                         "skip_verify": True, "state": "campaign-tasting",
                         "user": ["advisor_chen"]}
    # WeCom refuses: a 502 and nothing kept.
    wecom.then("/cgi-bin/externalcontact/add_contact_way",
               {"json": {"errcode": 40098, "errmsg": "user not realname"}})
    refused = wecom_client.post(CODES, json={"name": "门店", "channel": "store",
                                             "advisor_user_id": advisor, "state": "store-x"})
    assert refused.status_code == 502 and "40098" in refused.json()["message"]
    with sessions() as s:
        assert s.scalars(select(ReferralCode.state)).all() == ["campaign-tasting"]


def test_the_cli_creates_a_channel_code_of_a_kind_for_an_advisor(
        monkeypatch: pytest.MonkeyPatch, database_url: str,
        sessions: sessionmaker[Session]) -> None:
    import json

    from tests.cli_helpers import run_cli

    _advisor(sessions)
    result = run_cli(monkeypatch, database_url, "referrals", "channel-code", "create",
                     "顾问陈静 1V1 活码", "--kind", "advisor", "--advisor", "advisor_chen",
                     "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["channel"], out["advisor"], out["state"]) == (
        "advisor", "advisor_chen", f"advisor_{out['code'].lower()}")
    refused = run_cli(monkeypatch, database_url, "referrals", "channel-code", "create",
                      "顾问码", "--kind", "advisor")
    assert refused.exit_code == 2 and "顾问渠道码要选择顾问" in refused.output
