"""``GET /api/v1/groups`` and ``GET /api/v1/groups/{chat_id}``: the figures of ``siyu groups
list|show --json``, members' phone numbers and e-mail addresses masked for a read-scoped
key and shown (and audited) for a full key, a 404 in the API's error shape for an unknown
group, and ``customers.read`` required."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth import service as auth
from siyu.config import Settings
from siyu.customers.models import Customer, Identity
from siyu.privacy.models import AuditEntry
from tests.cli_helpers import run_cli
from tests.groups.conftest import member, store_group

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def seeded(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as s:
        store_group(s, settings, "wrOat01", "禾源良品·早餐打卡群", [
            member("advisor_chen", 1, NOW - dt.timedelta(days=20)),
            member("wmFan01", 2, NOW - dt.timedelta(days=20)),
            member("wmFan02", 2, NOW - dt.timedelta(days=3))])
        store_group(s, settings, "wrOat02", "燕麦新品试吃群", [
            member("advisor_chen", 1, NOW - dt.timedelta(days=5)),
            member("wmFan02", 2, NOW - dt.timedelta(days=1))])
        fan1 = s.scalar(select(Identity.customer_id).where(Identity.value == "wmFan01"))
        s.add(Identity(customer_id=fan1, kind="phone", value="+8613900139000"))
        fan2 = s.scalar(select(Identity.customer_id).where(Identity.value == "wmFan02"))
        customer = s.get(Customer, fan2)
        assert customer is not None
        customer.name = "fan02@example.com"  # a WeCom nickname that is an address
        s.commit()


@pytest.fixture
def make_key(sessions: sessionmaker[Session]) -> Callable[..., str]:
    def make(*scopes: str) -> str:
        with sessions() as s:
            key = auth.create_api_key(s, "k-" + "-".join(scopes or ("full",)),
                                      list(scopes) or None).key
            s.commit()
        return key

    return make


def _get(client: TestClient, key: str, path: str) -> tuple[int, object]:
    r = client.get(path, headers={"Authorization": f"Bearer {key}"})
    return r.status_code, r.json()


@pytest.mark.usefixtures("seeded")
def test_the_list_and_a_group_carry_the_clis_figures(
        app_client: TestClient, make_key: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    status, body = _get(app_client, make_key("read"), "/api/v1/groups")
    assert status == 200 and isinstance(body, dict)
    cli = json.loads(run_cli(monkeypatch, database_url, "groups", "list", "--json").output)
    assert body["items"] == cli
    first = {r["chat_id"]: r for r in body["items"]}["wrOat01"]
    assert (first["members"], first["employees"], first["joined_7d"], first["joined_30d"],
            first["mass_sends_30d"]) == (2, 1, 1, 2, {"created": 0, "sent": 0})

    status, group = _get(app_client, make_key("read"), "/api/v1/groups/wrOat01")
    assert status == 200
    shown = json.loads(run_cli(monkeypatch, database_url, "groups", "show", "wrOat01",
                               "--json").output)
    assert group == shown  # the CLI masks as a read-scoped key does
    assert [m["userid"] for m in group["member_list"]] == ["advisor_chen", "wmFan01",
                                                           "wmFan02"]
    assert {"chat_id", "name", "members", "joined_7d", "left_30d", "active"} <= set(group)


@pytest.mark.usefixtures("seeded")
def test_members_are_masked_for_a_read_key_and_shown_for_a_full_key(
        app_client: TestClient, make_key: Callable[..., str],
        sessions: sessionmaker[Session]) -> None:
    _status, masked = _get(app_client, make_key("read"), "/api/v1/groups/wrOat01")
    assert isinstance(masked, dict)
    people = {m["userid"]: m for m in masked["member_list"]}
    assert people["wmFan01"]["phone"] == "139****9000"
    assert people["wmFan02"]["name"] != "fan02@example.com"
    assert "fan02@example.com" not in json.dumps(masked, ensure_ascii=False)
    assert "13900139000" not in json.dumps(masked)
    with sessions() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "pii.read")) is None

    _status, full = _get(app_client, make_key(), "/api/v1/groups/wrOat01")
    assert isinstance(full, dict)
    people = {m["userid"]: m for m in full["member_list"]}
    assert "13900139000" in (people["wmFan01"]["phone"] or "").replace(" ", "")
    assert people["wmFan02"]["name"] == "fan02@example.com"
    with sessions() as s:
        targets = list(s.scalars(select(AuditEntry.target).where(AuditEntry.action == "pii.read")))
    assert targets == ["group:wrOat01"]


@pytest.mark.usefixtures("seeded")
def test_an_unknown_group_is_a_404_and_reading_needs_customers_read(
        app_client: TestClient, make_key: Callable[..., str]) -> None:
    status, body = _get(app_client, make_key("read"), "/api/v1/groups/wrNope")
    assert status == 404 and isinstance(body, dict)
    assert body["error"] == "not_found" and "wrNope" in body["message"]
    assert body["details"] == [{"field": "group", "reason": "not found"}]
    assert app_client.get("/api/v1/groups").status_code == 401
    status, _body = _get(app_client, make_key("ingest"), "/api/v1/groups")
    assert status == 403
