"""The segments REST API: counts, CRUD, members, changes, export, errors and auth."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.segments.models import Segment, SegmentChange
from tests.segments.conftest import Population

# Rules over profile, tags and identities only, so the answers do not depend on the clock.
VIP_RULE = 'tier = "VIP" and tag("VIP")'

ROUTES = [
    ("post", "/api/v1/segments/count", {"rule": "orders >= 1"}),
    ("get", "/api/v1/segments", None),
    ("post", "/api/v1/segments", {"name": "x", "rule": "orders >= 1"}),
    ("get", "/api/v1/segments/1", None),
    ("patch", "/api/v1/segments/1", {"name": "y"}),
    ("delete", "/api/v1/segments/1", None),
    ("post", "/api/v1/segments/1/refresh", None),
    ("get", "/api/v1/segments/1/members", None),
    ("get", "/api/v1/segments/1/changes", None),
    ("get", "/api/v1/segments/1/export.csv", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_route_needs_a_key(app_client: TestClient, sessions: sessionmaker[Session],
                                 method: str, path: str, body: dict[str, str] | None) -> None:
    kwargs = {"json": body} if body is not None else {}
    response = app_client.request(method.upper(), path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 401
    bad = app_client.request(method.upper(), path, headers={"Authorization": "Bearer nope"},
                             **kwargs)  # type: ignore[arg-type]
    assert bad.status_code == 401
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 0


def test_count_by_text_and_json(client: TestClient, population: Population) -> None:
    response = client.post("/api/v1/segments/count", json={"rule": VIP_RULE})
    assert response.status_code == 200
    assert response.json() == {
        "count": 2, "text": 'tier = "VIP" and tag("VIP")',
        "rule": {"op": "and", "args": [{"field": "tier", "cmp": "=", "value": "VIP"},
                                       {"field": "tag", "value": "VIP"}]},
        "description_zh": "会员等级为「VIP」 且 标签「VIP」",
    }
    by_json = client.post("/api/v1/segments/count", json={"rule_json": {
        "field": "has_identity", "value": "wecom_external_userid"}})
    assert by_json.json()["count"] == 2
    assert by_json.json()["text"] == "has(wecom_external_userid)"


@pytest.mark.parametrize(("body", "position", "path"), [
    ({"rule": "orderz >= 3"}, 0, None),
    ({"rule": 'tier in ("VIP") and city = 5'}, 27, None),
    ({"rule": 'tag("VIP") and (orders >= 1'}, 15, None),  # the unclosed "("
    ({"rule": "city = \"x\" OR 1=1 --"}, 14, None),  # "1" where a field must be
    ({"rule_json": {"field": "orders", "cmp": ">=", "value": "3"}}, None, "$.value"),
])
def test_bad_rules_are_422_with_position(client: TestClient, population: Population,
                                         body: dict[str, object], position: int | None,
                                         path: str | None) -> None:
    response = client.post("/api/v1/segments/count", json=body)
    assert response.status_code == 422
    data = response.json()
    assert data["error"] == "invalid_rule"
    assert data["position"] == position and data["path"] == path
    assert data["message"] and data["message_zh"]
    if position is not None:
        assert data["message_zh"].startswith(f"第 {position + 1} 个字符处")


def test_count_needs_exactly_one_rule(client: TestClient) -> None:
    for body in ({}, {"rule": "orders >= 1", "rule_json": {"field": "tag", "value": "x"}}):
        response = client.post("/api/v1/segments/count", json=body)
        assert response.status_code == 422
        assert response.json()["details"]["field"] == "rule"
    response = client.post("/api/v1/segments/count", json={"rule": "orders >= 1", "x": 1})
    assert response.status_code == 422


def test_crud_members_changes_and_export(client: TestClient, population: Population,
                                         sessions: sessionmaker[Session]) -> None:
    created = client.post("/api/v1/segments", json={"name": "VIP 标签", "rule": VIP_RULE})
    assert created.status_code == 201, created.text
    seg = created.json()
    assert (seg["name"], seg["size"], seg["created_by"]) == ("VIP 标签", 2, "tests")
    sid = seg["id"]

    dup = client.post("/api/v1/segments", json={"name": "VIP 标签", "rule": "orders >= 1"})
    assert dup.status_code == 409
    bad = client.post("/api/v1/segments", json={"name": "坏", "rule": "tier = VIP"})
    assert bad.status_code == 422 and bad.json()["position"] == 7
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 1

    listed = client.get("/api/v1/segments").json()["items"]
    assert [(s["name"], s["size"], len(s["history"])) for s in listed] == [("VIP 标签", 2, 1)]

    page = client.get(f"/api/v1/segments/{sid}/members", params={"per_page": 1}).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert page["items"][0]["id"] == population.ids["A"]
    assert page["items"][0]["phone"] == "13800138001"  # an API key may see PII

    changes = client.get(f"/api/v1/segments/{sid}/changes").json()
    assert [(c["customer_id"], c["kind"]) for c in changes["items"]] == [
        (population.ids["A"], "entered"), (population.ids["D"], "entered")]
    later = client.get(f"/api/v1/segments/{sid}/changes",
                       params={"after_id": changes["next_after_id"]}).json()
    assert later["items"] == []

    export = client.get(f"/api/v1/segments/{sid}/export.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    # A byte-order mark first, so that Excel on a Chinese Windows reads UTF-8, not GBK.
    assert export.content.startswith("\ufeff客户编号".encode())
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows == [["客户编号", "品牌客户号", "姓名", "手机号"],
                    [str(population.ids["A"]), "EXT-A", "客户A", "138****8001"],
                    [str(population.ids["D"]), "", "客户D", ""]]

    patched = client.patch(f"/api/v1/segments/{sid}", json={"rule": 'tier = "VIP"'})
    assert patched.status_code == 200 and patched.json()["size"] == 3
    left_and_entered = client.get(f"/api/v1/segments/{sid}/changes",
                                  params={"after_id": changes["next_after_id"]}).json()
    assert [(c["customer_id"], c["kind"]) for c in left_and_entered["items"]] == [
        (population.ids["F"], "entered")]

    refreshed = client.post(f"/api/v1/segments/{sid}/refresh").json()
    assert (refreshed["size"], refreshed["entered"], refreshed["left"]) == (3, 0, 0)

    assert client.delete(f"/api/v1/segments/{sid}").status_code == 204
    assert client.get(f"/api/v1/segments/{sid}").status_code == 404
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(SegmentChange)) == 0


def test_members_of_unknown_segment_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/segments/999/members").status_code == 404
    assert client.get("/api/v1/segments/999/changes").status_code == 404
    assert client.get("/api/v1/segments/999/export.csv").status_code == 404
