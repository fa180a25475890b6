"""The append-only audit log: recording, reading, the database refusing edits, the purge,
the CLI and the admin page; and the merge-conflicts API masking identities by role."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.service import upsert_customers
from siyu.privacy import service as privacy
from siyu.privacy.errors import InvalidAuditEntry, InvalidAuditFilter
from siyu.privacy.models import AuditEntry
from tests.cli_helpers import run_cli
from tests.console.conftest import Login


def test_record_and_filter(db: Session) -> None:
    privacy.record_audit(db, actor="user:alice", action="login.success", ip="10.0.0.7")
    privacy.record_audit(db, actor="user:bob", action="login.failure", ip="10.0.0.8")
    privacy.record_audit(db, actor="user:alice", action="customer.export", target="customer:7",
                         detail={"tables": 9})
    assert [e.action for e in privacy.list_audit(db, action="login")] == [
        "login.failure", "login.success"]
    assert [e.action for e in privacy.list_audit(db, actor="alice")] == [
        "customer.export", "login.success"]
    # "login" must not match an action that merely starts with the same letters
    privacy.record_audit(db, actor="cli:root", action="loginx")
    assert len(privacy.list_audit(db, action="login")) == 2
    exported = privacy.list_audit(db, action="customer.export")[0]
    assert (exported.target, exported.detail, exported.ip) == ("customer:7", {"tables": 9}, None)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert privacy.list_audit(db, since=future) == []


def test_personal_values_never_reach_an_entry(db: Session) -> None:
    entry = privacy.record_audit(
        db, actor="user:alice", action="customer.merge", target="phone:+8613800138000",
        detail={"reason": "shared phone 13800138000 and a@example.com", "n": 2})
    stored = db.execute(select(AuditEntry.target, AuditEntry.detail)
                        .where(AuditEntry.id == entry.id)).one()
    assert "13800138000" not in json.dumps(stored.detail) + stored.target
    assert "a@example.com" not in json.dumps(stored.detail, ensure_ascii=False)
    assert stored.detail["n"] == 2


@pytest.mark.parametrize("kwargs, field", [
    ({"actor": "", "action": "x"}, "actor"),
    ({"actor": "u", "action": "Login Success"}, "action"),
    ({"actor": "u", "action": "x", "target": "t" * 121}, "target"),
])
def test_bad_entries_name_the_field(db: Session, kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidAuditEntry) as info:
        privacy.record_audit(db, **kwargs)
    assert info.value.details["field"] == field
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_database_refuses_update_and_delete(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        privacy.record_audit(session, actor="user:alice", action="login.success")
        session.commit()
    for stmt in (update(AuditEntry).values(actor="user:mallory"), delete(AuditEntry),
                 text("DELETE FROM audit_log")):
        with sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                session.execute(stmt)
            session.rollback()
    with sessions() as session:
        assert session.scalars(select(AuditEntry.actor)).all() == ["user:alice"]


def test_retention_purge_is_the_only_delete_and_is_audited(
    sessions: sessionmaker[Session],
) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    with sessions() as session:
        privacy.record_audit(session, actor="user:alice", action="login.success")
        session.commit()
    with sessions() as session:
        # an old entry, as if written a year ago (inserted directly: entries cannot be edited)
        session.add(AuditEntry(at=old, actor="user:bob", action="login.success"))
        session.commit()
    with sessions() as session:
        deleted = privacy.purge_audit(session, before=old + dt.timedelta(days=1))
        session.commit()
    assert deleted == 1
    with sessions() as session:
        rows = session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.detail)
                               .order_by(AuditEntry.id)).all()
        assert [(r.actor, r.action) for r in rows] == [
            ("user:alice", "login.success"), ("system:retention", "audit.purge")]
        assert rows[1].detail["deleted"] == 1
        # the permit was temporary: deletes are refused again
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(delete(AuditEntry))


def test_parse_since() -> None:
    now = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)
    assert privacy.parse_since("7d", now=now) == now - dt.timedelta(days=7)
    assert privacy.parse_since("2026-12-01", now=now) == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with pytest.raises(InvalidAuditFilter):
        privacy.parse_since("last week", now=now)


def test_audit_cli(monkeypatch: pytest.MonkeyPatch, database_url: str,
                   sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        privacy.record_audit(session, actor="user:alice", action="login.success", ip="10.1.1.1")
        privacy.record_audit(session, actor="user:bob", action="customer.erase",
                             target="customer:3")
        session.commit()
    result = run_cli(monkeypatch, database_url, "audit", "--action", "customer", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [
        ("user:bob", "customer.erase", "customer:3")]
    result = run_cli(monkeypatch, database_url, "audit", "--since", "1d", "--actor", "alice")
    assert result.exit_code == 0 and "login.success" in result.output
    assert "customer.erase" not in result.output
    result = run_cli(monkeypatch, database_url, "audit", "--since", "yesterday")
    assert result.exit_code == 2 and "since" in result.output


def test_audit_page_for_admins_only(staff: None, login: Login,
                                    sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        privacy.record_audit(session, actor="user:bob", action="customer.erase",
                             target="customer:3", ip="10.9.9.9")
        session.commit()
    client = login("agent")
    assert client.get("/audit").status_code == 403
    client = login("admin")
    page = client.get("/audit?action=customer")
    assert page.status_code == 200
    assert "customer:3" in page.text and "10.9.9.9" in page.text
    assert "审计日志" in page.text
    assert "customer:3" not in client.get("/audit?action=login").text


def _conflict(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        upsert_customers(session, [{"id": "HY1", "identities": [
            {"kind": "phone", "value": "13800138000"}]}], settings=settings)
        upsert_customers(session, [{"id": "HY2", "identities": [
            {"kind": "phone", "value": "13800138000"}]}], settings=settings)
        session.commit()


@pytest.mark.parametrize("role, masked", [("agent", True), ("analyst", True),
                                          ("operator", True), ("admin", False)])
def test_merge_conflicts_api_masks_by_role(
    staff: None, login: Login, sessions: sessionmaker[Session], settings: Settings,
    role: str, masked: bool,
) -> None:
    _conflict(sessions, settings)
    client = login(role)
    response = client.get("/api/v1/merge-conflicts", headers={"X-Siyu-Console": "1"})
    assert response.status_code == 200
    (conflict,) = response.json()
    assert ("13800138000" in response.text) is not masked
    if masked:
        assert conflict["shared"] == "phone:138****8000"


def test_merge_conflicts_api_full_for_a_full_access_key(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    _conflict(sessions, settings)
    assert client.get("/api/v1/merge-conflicts").json()[0]["shared"] == "phone:+8613800138000"


class _Key:
    kind = "api_key"
    name = "bi"
    role = "admin"

    def __init__(self, scopes: list[str] | None):
        self.scopes = scopes

    def can(self, permission: str) -> bool:
        return True


def test_sees_pii_by_principal() -> None:
    assert privacy.sees_pii("admin") and not privacy.sees_pii("analyst")
    assert not privacy.sees_pii(None)
    assert privacy.sees_pii(_Key(None))  # a key with full access (no scopes)
    assert not privacy.sees_pii(_Key(["read"]))  # a read key masks like an analyst
    assert privacy.sees_pii(_Key(["read", "admin"]))
    m = privacy.masker("agent")
    assert m.identity("phone", "+8613800138000") == "138****8000"
    assert m.text("电话 13800138000") == "电话 138****8000"
    assert privacy.masker("admin").identity("phone", "+8613800138000") == "13800138000"


def test_conflict_decisions_are_audited(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings
) -> None:
    _conflict(sessions, settings)
    conflict_id = client.get("/api/v1/merge-conflicts").json()[0]["id"]
    assert client.post(f"/api/v1/merge-conflicts/{conflict_id}/keep_apart").status_code == 200
    with sessions() as session:
        (entry,) = privacy.list_audit(session, action="merge")
        assert (entry.action, entry.target, entry.actor) == (
            "merge.conflict.keep_apart", f"merge_conflict:{conflict_id}", "api_key:tests")
