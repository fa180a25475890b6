"""Scenario files are validated like segment rules (nothing changes on error); the API and
CLI show a customer's journey."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.journeys import service
from siyu.journeys.errors import InvalidScenarioFile
from siyu.journeys.models import Scenario
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.usefixtures("world")


def _rules(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as s:
        return {r.name: r.rule_text for r in s.scalars(select(Scenario))}


def test_intents_by_label_are_stored_as_codes(sessions: sessionmaker[Session]) -> None:
    rules = _rules(sessions)
    assert rules["退换货"].startswith('intent("return_request", last 14d)')
    assert rules["帮亲友购买"].startswith('intent("buy_for_family", last 14d)')


@pytest.mark.parametrize(("rule", "position", "reason"), [
    ('intent("退货", last 7d) and orders >', 34, "expected a value"),
    ('intent("不存在的意图")', 7, "unknown intent"),
    ('scenario("没有这个场景")', 9, "unknown scenario"),
])
def test_a_bad_rule_is_refused_with_position_and_caret_and_nothing_changes(
        sessions: sessionmaker[Session], rule: str, position: int, reason: str) -> None:
    before = _rules(sessions)
    content = ("scenarios:\n  - {name: 换购, stage: 售后, rule: 'orders >= 1'}\n"
               f"  - name: 新场景\n    stage: 售后\n    rule: '{rule}'\n")
    with sessions() as s, pytest.raises(InvalidScenarioFile) as refused:
        service.apply_scenarios(s, content, source="bad.yaml")
    details = refused.value.details
    assert details["file"] == "bad.yaml" and details["at"] == "scenario '新场景' rule"
    assert details["position"] == position and reason in refused.value.message
    assert details["caret"].splitlines()[-1].endswith("^")
    assert _rules(sessions) == before  # the valid first scenario was not applied either


def test_apply_creates_updates_and_reports_versions(sessions: sessionmaker[Session]) -> None:
    content = "- {name: 换购, stage: 售后, rule: 'intent(\"换购\", last 30d)'}\n"
    with sessions() as s:
        assert service.apply_scenarios(s, content, source="a.yaml") == [
            {"name": "换购", "version": 2, "changed": True}]
        assert service.apply_scenarios(s, content, source="a.yaml") == [
            {"name": "换购", "version": 2, "changed": False}]
        s.commit()


def test_journey_api(client: TestClient, sessions: sessionmaker[Session]) -> None:
    orders = [{"id": "O-API", "customer_id": "C-API", "amount": 59.0, "items": [
        {"sku": "OAT", "quantity": 1}], "ts": (dt.datetime.now(dt.UTC) - dt.timedelta(
            days=28)).isoformat()}]
    assert client.post("/api/v1/orders", json={"orders": orders}).status_code == 200
    with sessions() as s:
        service.recompute(s, now=dt.datetime.now(dt.UTC))
        s.commit()
    cid = client.get("/api/v1/customers", params={"identity": "external_id:C-API"}).json()["id"]
    body = client.get(f"/api/v1/customers/{cid}/journey").json()
    assert body["stage"] == "after_sales"
    assert body["repurchase"]["order_id"] == "O-API"
    assert [s["name"] for s in body["scenarios"]] == ["食用周期结束"]
    assert "O-API" in body["scenarios"][0]["why"]
    assert client.get("/api/v1/customers/999999/journey").status_code == 404
    funnel = {r["stage"]: r["customers"] for r in client.get("/api/v1/journeys/funnel").json()}
    assert funnel["after_sales"] == 1


def test_cli_list_apply_count_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       database_url: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: 坏\nstage: 售后\nrule: 'orders >= '\n", encoding="utf-8")
    refused = run_cli(monkeypatch, database_url, "scenarios", "apply", str(bad))
    assert refused.exit_code == 2 and "position 10" in refused.output and "^" in refused.output
    good = tmp_path / "good.json"
    good.write_text('{"name": "高价值", "stage": "转化", "rule": "spend >= 1000"}',
                    encoding="utf-8")
    applied = run_cli(monkeypatch, database_url, "scenarios", "apply", str(good), "--json")
    assert applied.exit_code == 0 and '"version": 1' in applied.output
    listed = run_cli(monkeypatch, database_url, "scenarios", "list")
    assert "高价值" in listed.output and "食用周期结束" in listed.output
    counted = run_cli(monkeypatch, database_url, "scenarios", "count", "高价值")
    assert counted.exit_code == 0 and counted.output.strip().splitlines()[-1] == "0"
    missing = run_cli(monkeypatch, database_url, "journeys", "show", "424242")
    assert missing.exit_code == 2
