"""The ingest API: batches, partial acceptance, idempotency and bad input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.customers.models import Customer, CustomerTag, Identity
from siyu.events.models import Event, Order


def _events(n: int, bad_every: int | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        rec: dict[str, Any] = {
            "id": f"ev-{i}", "type": "view_product", "ts": "2026-05-01T10:00:00+08:00",
            "channel": "miniprogram",
            "identities": [{"kind": "wechat_openid", "value": f"o-{i % 2000}"}],
            "properties": {"sku": f"SKU{i % 50}"},
        }
        if bad_every and i % bad_every == 7:
            rec["ts"] = "not-a-time"
        out.append(rec)
    return out


def _count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_batch_of_10000_with_100_bad_partial_and_strict(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    batch = {"events": _events(10_000, bad_every=100)}

    strict = client.post("/api/v1/events", json=batch)
    assert strict.status_code == 422
    body = strict.json()
    assert len(body["details"]["rejected"]) == 100
    assert body["details"]["rejected"][0] == {
        "index": 7, "id": "ev-7",
        "errors": [{"field": "ts", "reason": body["details"]["rejected"][0]["errors"][0][
            "reason"]}]}
    assert _count(sessions, Event) == 0
    assert _count(sessions, Customer) == 0

    partial = client.post("/api/v1/events?partial=true", json=batch)
    assert partial.status_code == 200
    result = partial.json()
    assert result["accepted"] == 9_900
    assert len(result["rejected"]) == 100
    assert {r["id"] for r in result["rejected"]} == {f"ev-{i}" for i in range(7, 10_000, 100)}
    assert all(r["errors"][0]["field"] == "ts" for r in result["rejected"])
    assert _count(sessions, Event) == 9_900
    assert _count(sessions, Customer) == 1_980  # 20 openids occur only in bad records

    again = client.post("/api/v1/events?partial=true", json=batch)
    assert again.json()["accepted"] == 0
    assert again.json()["duplicates"] == 9_900
    assert _count(sessions, Event) == 9_900
    assert _count(sessions, Customer) == 1_980


def test_orders_and_customers_round_trip_through_360(client: TestClient) -> None:
    r = client.post("/api/v1/customers", json={"customers": [{
        "id": "HY001", "identities": [{"kind": "phone", "value": "+86 138 0013 8000"}],
        "attributes": {"name": "李娜", "city": "上海", "vegetarian": True},
        "tier": "金卡", "tags": ["素食"],
        "consents": [{"channel": "sms", "purpose": "marketing", "granted": True}]}]})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
    cid = r.json()["customer_ids"][0]
    r = client.post("/api/v1/orders", json={"orders": [
        {"id": "SO-1", "customer_id": "HY001", "ts": "2026-06-18T20:00:00+08:00", "amount": 199.0,
         "currency": "CNY", "status": "paid", "items": [{"sku": "OAT-30", "quantity": 2}]},
        {"id": "SO-2", "identities": [{"kind": "phone", "value": "13800138000"}],
         "ts": "2026-07-01T09:00:00+08:00", "amount": 88.5}]})
    assert r.status_code == 200 and r.json()["accepted"] == 2

    view = client.get(f"/api/v1/customers/{cid}").json()
    assert view["external_id"] == "HY001"
    assert view["profile"]["name"] == "李娜" and view["profile"]["tier"] == "金卡"
    assert view["attributes"] == {"vegetarian": True}
    assert view["orders"] == {"count": 2, "total_amount": 287.5,
                              "first_at": "2026-06-18T12:00:00+00:00",
                              "last_at": "2026-07-01T01:00:00+00:00"}
    assert [t["name"] for t in view["tags"]] == ["素食"]
    assert view["consents"][0]["granted"] is True
    assert view["last_activity_at"] == "2026-07-01T01:00:00+00:00"

    by_phone = client.get("/api/v1/customers", params={"identity": "phone:+8613800138000"})
    assert by_phone.status_code == 200 and by_phone.json()["id"] == cid
    by_phone2 = client.get("/api/v1/customers", params={"identity": "phone:138 0013 8000"})
    assert by_phone2.json()["id"] == cid
    assert client.get("/api/v1/customers",
                      params={"identity": "phone:13900000000"}).status_code == 404

    listing = client.get("/api/v1/customers", params={"tag": "素食"}).json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == cid
    listing = client.get("/api/v1/customers", params={"attr": "vegetarian=true"}).json()
    assert listing["total"] in (0, 1)
    assert client.get("/api/v1/customers", params={"tag": "无"}).json()["total"] == 0


def test_merge_is_visible_in_360_api(client: TestClient) -> None:
    client.post("/api/v1/orders", json={"orders": [
        {"id": "o1", "identities": [{"kind": "phone", "value": "13800138000"}],
         "ts": "2026-01-01T10:00:00", "amount": 10}]})
    client.post("/api/v1/events", json={"events": [
        {"id": "e1", "type": "add_wecom_contact", "ts": "2026-01-02T10:00:00",
         "identities": [{"kind": "wecom_external_userid", "value": "wm1"}]}]})
    r = client.post("/api/v1/events", json={"events": [
        {"id": "e2", "type": "bind", "ts": "2026-01-03T10:00:00",
         "identities": [{"kind": "wecom_external_userid", "value": "wm1"},
                        {"kind": "phone", "value": "13800138000"}]}]})
    assert len(r.json()["merges"]) == 1
    view = client.get("/api/v1/customers", params={"identity": "wecom_external_userid:wm1"}).json()
    assert view["orders"]["count"] == 1 and view["events"]["count"] == 2
    assert len(view["merges"]) == 1
    merge = view["merges"][0]
    assert merge["moved"]["events.customer_id"] == 1
    undo = client.post(f"/api/v1/merges/{merge['id']}/undo")
    assert undo.status_code == 200
    assert client.post(f"/api/v1/merges/{merge['id']}/undo").status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b'{"events": [', 400, "malformed JSON"),
        (b"\xff\xfe not utf-8", 400, "malformed JSON"),
        (b"", 400, "empty"),
        (b"[]", 422, "'events'"),
        (b'{"events": {}}', 422, "must be a list"),
        (b'{"events": [], "extra": 1}', 422, "unknown top-level"),
        (b'{"events": [{"type": "x", "ts": "2026-01-01", "customer_id": "c"}]}', 422, "id"),
        (b'{"events": [{"id": "1", "type": "x", "ts": 5, "customer_id": "c"}]}', 422, "ts"),
        (b'{"events": [{"id": "1", "type": "x", "ts": "2026-01-01"}]}', 422, "customer_id"),
        (b'{"events": [{"id": "1", "type": "x", "ts": "2026-01-01", '
         b'"identities": [{"kind": "qq", "value": "1"}]}]}', 422, "unknown identity kind"),
        (b'{"events": [{"id": "1", "type": "x", "ts": "2026-01-01", '
         b'"identities": [{"kind": "phone", "value": "12345"}]}]}', 422, "invalid phone"),
        (b'{"events": [{"id": "1", "type": "x", "ts": "2999-01-01", "customer_id": "c"}]}',
         422, "future"),
        (b'{"events": [{"id": "1", "type": "x", "ts": "2026-01-01", "customer_id": "c", '
         b'"properties": []}]}', 422, "properties"),
        (b'{"events": [{"id": "1", "type": "x", "ts": "2026-01-01", "customer_id": "c", '
         b'"bogus": 1}]}', 422, "bogus"),
    ],
)
def test_bad_event_input_gets_clear_error_and_writes_nothing(
    client: TestClient, sessions: sessionmaker[Session], body: bytes, status: int, needle: str
) -> None:
    r = client.post("/api/v1/events", content=body,
                    headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in r.text
    assert _count(sessions, Event) == 0
    assert _count(sessions, Identity) == 0


@pytest.mark.parametrize(
    ("order", "field"),
    [
        ({"amount": -1}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"currency": "rmb"}, "currency"),
        ({"status": "weird"}, "status"),
        ({"items": [{"quantity": -2}]}, "items.0.quantity"),
    ],
)
def test_bad_order_fields_are_named(
    client: TestClient, sessions: sessionmaker[Session], order: dict[str, Any], field: str
) -> None:
    rec = {"id": "o1", "customer_id": "c1", "ts": "2026-01-01T00:00:00", "amount": 1, **order}
    r = client.post("/api/v1/orders", json={"orders": [rec]})
    assert r.status_code == 422
    assert r.json()["details"]["rejected"][0]["errors"][0]["field"] == field
    assert _count(sessions, Order) == 0


def test_fifty_megabyte_body_is_refused(client: TestClient,
                                        sessions: sessionmaker[Session]) -> None:
    big = b'{"events": [' + b'{"id": "x"},' * (50 * 1024 * 1024 // 12) + b'{"id": "y"}]}'
    r = client.post("/api/v1/events", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "larger than" in r.json()["message"]
    assert _count(sessions, Event) == 0


def test_more_than_10000_records_is_refused(client: TestClient) -> None:
    r = client.post("/api/v1/events", content=orjson.dumps({"events": _events(10_001)}),
                    headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "at most 10000" in r.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/v1/events"), ("post", "/api/v1/orders"), ("post", "/api/v1/customers"),
     ("get", "/api/v1/customers"), ("get", "/api/v1/customers/1"),
     ("get", "/api/v1/customers/1/timeline"), ("get", "/api/v1/merge-conflicts"),
     ("post", "/api/v1/merges/1/undo"), ("post", "/api/v1/customers/1/tags/x")],
)
@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic abc"])
def test_every_api_route_requires_a_valid_key(
    app_client: TestClient, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = app_client.request(method, path, json={"events": []}, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] in ("unauthorized", "invalid_api_key")


def test_revoked_key_is_refused(client: TestClient, sessions: sessionmaker[Session]) -> None:
    from siyu.auth.models import ApiKey
    from siyu.auth.service import revoke_api_key

    assert client.get("/api/v1/customers").status_code == 200
    with sessions() as s:
        revoke_api_key(s, s.scalar(select(ApiKey.id)) or 0)
        s.commit()
    assert client.get("/api/v1/customers").status_code == 401


def test_openapi_documents_the_wire_shapes(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    assert "EventIn" in spec["components"]["schemas"]
    assert "/api/v1/events" in spec["paths"]
    assert app_client.get("/docs").status_code == 200


def test_a_failed_commit_is_reported_not_answered_200(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, sessions: sessionmaker[Session]
) -> None:
    from sqlalchemy.orm import Session as OrmSession

    cid = client.post("/api/v1/customers", json={"customers": [{"id": "C1"}]}).json()[
        "customer_ids"][0]

    def failing_commit(self: OrmSession) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(OrmSession, "commit", failing_commit)
    with TestClient(client.app, raise_server_exceptions=False) as raw:
        raw.headers.update(client.headers)
        r = raw.post(f"/api/v1/customers/{cid}/tags/VIP")
    monkeypatch.undo()
    assert r.status_code == 500
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CustomerTag)) == 0
