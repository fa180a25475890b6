"""API keys: scopes, expiry, revocation, last use, and the CLI around them (issue 11, item 4)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth import service
from siyu.auth.errors import InvalidUser
from siyu.auth.models import ApiKey
from siyu.db import utcnow
from siyu.privacy.models import AuditEntry
from tests.cli_helpers import run_cli

PHONE = "13800138000"


@pytest.fixture
def customer_id(client: TestClient) -> int:
    r = client.post("/api/v1/customers", json={"customers": [{
        "id": "K-1", "identities": [{"kind": "phone", "value": PHONE}],
        "attributes": {"name": "王芳"}}]})
    assert r.status_code == 200, r.text
    cid: int = r.json()["customer_ids"][0]
    return cid


@pytest.fixture
def make_key(sessions: sessionmaker[Session]) -> Callable[..., str]:
    def make(*scopes: str, expires_at: dt.datetime | None = None) -> str:
        with sessions() as s:
            key = service.create_api_key(s, "k-" + "-".join(scopes or ("full",)),
                                         scopes or None, expires_at).key
            s.commit()
        return key

    return make


def _call(app_client: TestClient, key: str, method: str, path: str,
          body: Any = None) -> Any:
    return app_client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})


# (method, path, body, scopes allowed) on representative routes of each kind
ROUTES: list[tuple[str, str, Any, set[str]]] = [
    ("post", "/api/v1/events", {"events": []}, {"ingest", "admin"}),
    ("post", "/api/v1/orders", {"orders": []}, {"ingest", "admin"}),
    ("get", "/api/v1/customers", None, {"read", "admin"}),
    ("get", "/api/v1/customers/{cid}", None, {"read", "admin"}),
    ("get", "/api/v1/analytics/summary", None, {"read", "admin"}),
    ("get", "/api/v1/segments", None, {"read", "admin"}),
    ("get", "/api/v1/conversations?customer_id={cid}", None, {"read", "service", "admin"}),
    ("get", "/api/v1/service/queue", None, {"service", "admin"}),
    ("post", "/api/v1/customers/{cid}/tags/vip", None, {"admin"}),
    ("post", "/api/v1/segments", {"name": "x", "rule": "tier == '金卡'"}, {"admin"}),
    ("get", "/api/v1/customers/{cid}/export", None, {"admin"}),
]


@pytest.mark.parametrize("scope", ["ingest", "read", "service", "admin"])
@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES,
                         ids=[f"{m} {p.split('?')[0]}" for m, p, _, _ in ROUTES])
def test_each_scope_is_allowed_or_refused_by_name(
    app_client: TestClient, make_key: Callable[..., str], customer_id: int, scope: str,
    method: str, path: str, body: Any, allowed: set[str]
) -> None:
    r = _call(app_client, make_key(scope), method, path.format(cid=customer_id), body)
    if scope in allowed:
        assert r.status_code not in (401, 403), r.text
        assert r.status_code < 500, r.text
    else:
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "scope_forbidden"
        needed = r.json()["details"]["needed"]
        assert set(needed) <= allowed and needed
        assert f"scope '{needed[0]}'" in r.json()["message"]


def test_a_key_without_scopes_keeps_full_access(
    app_client: TestClient, make_key: Callable[..., str], customer_id: int
) -> None:
    key = make_key()
    for method, path, body, _ in ROUTES:
        r = _call(app_client, key, method, path.format(cid=customer_id), body)
        assert r.status_code not in (401, 403) and r.status_code < 500, (path, r.text)
    assert PHONE[-4:] in json.dumps(_call(app_client, key, "get",
                                          f"/api/v1/customers/{customer_id}").json())


def test_read_scope_masks_personal_data_like_an_analyst(
    app_client: TestClient, make_key: Callable[..., str], customer_id: int
) -> None:
    read, admin = make_key("read"), make_key("admin")
    masked = json.dumps(_call(app_client, read, "get", f"/api/v1/customers/{customer_id}").json(),
                        ensure_ascii=False)
    listed = json.dumps(_call(app_client, read, "get", "/api/v1/customers").json(),
                        ensure_ascii=False)
    assert PHONE not in masked and PHONE not in listed
    assert "138****8000" in masked
    full = json.dumps(_call(app_client, admin, "get", f"/api/v1/customers/{customer_id}").json())
    assert PHONE in full
    # several scopes together: read + ingest reads masked and writes
    both = make_key("ingest", "read")
    assert _call(app_client, both, "post", "/api/v1/events", {"events": []}).status_code == 200
    assert PHONE not in json.dumps(
        _call(app_client, both, "get", f"/api/v1/customers/{customer_id}").json())


def test_expired_key_is_refused(app_client: TestClient, make_key: Callable[..., str],
                                sessions: sessionmaker[Session]) -> None:
    key = make_key("read", expires_at=utcnow() + dt.timedelta(hours=1))
    assert _call(app_client, key, "get", "/api/v1/customers").status_code == 200
    with sessions() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.name == "k-read"))
        assert row is not None
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
        s.commit()
    r = _call(app_client, key, "get", "/api/v1/customers")
    assert r.status_code == 401 and "expired" in r.json()["message"]


def test_revoked_key_is_refused_at_once(
    app_client: TestClient, make_key: Callable[..., str], monkeypatch: pytest.MonkeyPatch,
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    key = make_key("admin")
    assert _call(app_client, key, "get", "/api/v1/customers").status_code == 200
    with sessions() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "k-admin"))
    result = run_cli(monkeypatch, database_url, "apikey", "revoke", str(key_id))
    assert result.exit_code == 0, result.output
    assert _call(app_client, key, "get", "/api/v1/customers").status_code == 401
    with sessions() as s:
        actions = [(e.action, e.target) for e in s.scalars(select(AuditEntry))]
    assert ("apikey.revoke", f"api_key:{key_id}") in actions


def test_last_used_is_written_at_most_once_a_minute(
    app_client: TestClient, sessions: sessionmaker[Session], make_key: Callable[..., str]
) -> None:
    key = make_key("read")
    with sessions() as s:
        key_id = service.check_api_key(s, key).id
    t0 = utcnow()
    with sessions() as s:
        assert service.note_api_key_use(s, key_id, now=t0)
        assert not service.note_api_key_use(s, key_id, now=t0 + dt.timedelta(seconds=59))
        assert service.note_api_key_use(s, key_id, now=t0 + dt.timedelta(seconds=61))
        s.rollback()
    assert _call(app_client, key, "get", "/api/v1/customers").status_code == 200
    with sessions() as s:
        first = s.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))
    assert first is not None and utcnow() - first < dt.timedelta(seconds=30)
    assert _call(app_client, key, "get", "/api/v1/customers").status_code == 200
    with sessions() as s:
        assert s.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id)) == first


def test_cli_create_with_scopes_and_expiry_lists_and_audits(
    monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: sessionmaker[Session]
) -> None:
    result = run_cli(monkeypatch, database_url, "apikey", "create", "etl", "--scope", "ingest",
                     "--scope", "read", "--expires", "90d")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("sy_") and " " not in key
    assert "full access" not in result.stderr
    with sessions() as s:
        row = service.check_api_key(s, key)
        assert row.scope_list == ("ingest", "read")
        assert row.expires_at is not None
        assert dt.timedelta(days=89) < row.expires_at - utcnow() <= dt.timedelta(days=90)
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "apikey.create"))
        assert entry is not None and entry.target == f"api_key:{row.id}"
        assert key not in json.dumps(entry.detail) and entry.actor.startswith("cli:")
        s.commit()
    listed = json.loads(run_cli(monkeypatch, database_url, "apikey", "list", "--json").stdout)
    assert listed[0]["scopes"] == ["ingest", "read"] and listed[0]["state"] == "active"
    assert listed[0]["last_used_at"] is None  # checked, never used on a route
    assert key not in json.dumps(listed)


def test_cli_create_without_scope_says_full_access_on_stderr(
    monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: sessionmaker[Session]
) -> None:
    result = run_cli(monkeypatch, database_url, "apikey", "create", "legacy")
    assert result.exit_code == 0
    assert "full access" in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("sy_")


@pytest.mark.parametrize(("args", "field"), [
    (["--scope", "write"], "scope"), (["--expires", "yesterday"], "expires"),
    (["--expires", "2001-01-01"], "expires"), (["--expires", "0d"], "expires")])
def test_cli_refuses_bad_scope_or_expiry(monkeypatch: pytest.MonkeyPatch, database_url: str,
                                         sessions: sessionmaker[Session], args: list[str],
                                         field: str) -> None:
    result = run_cli(monkeypatch, database_url, "apikey", "create", "bad", *args)
    assert result.exit_code != 0
    assert field in result.stderr
    with sessions() as s:
        assert s.scalar(select(ApiKey.id).where(ApiKey.name == "bad")) is None


def test_parse_expiry_forms() -> None:
    now = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
    assert service.parse_expiry("90d", now) == now + dt.timedelta(days=90)
    assert service.parse_expiry("12h", now) == now + dt.timedelta(hours=12)
    assert service.parse_expiry("2w", now) == now + dt.timedelta(days=14)
    assert service.parse_expiry("2027-03-01", now) == dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
    with pytest.raises(InvalidUser):
        service.parse_expiry("2026-12-01", now)
