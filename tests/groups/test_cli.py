"""``siyu groups list|show|sync``: JSON and tables, masked phones, a full sync against the
fake WeCom server through the durable jobs, and a clear refusal when WeCom is not set up."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels import tasks as channel_tasks
from siyu.config import Settings
from siyu.customers.models import Identity
from siyu.groups.models import CustomerGroup
from siyu.kit import cli as cli_kit
from tests.channels.conftest import CORP_SECRET
from tests.channels.fakes import FakeWeCom
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
        cid = s.scalar(select(Identity.customer_id).where(Identity.value == "wmFan01"))
        s.add(Identity(customer_id=cid, kind="phone", value="+8613900139000"))
        s.commit()


@pytest.fixture
def fresh_adapters() -> Iterator[None]:
    channel_tasks.use_adapters(None)
    yield
    channel_tasks.use_adapters(None)


def test_list_and_show(monkeypatch: pytest.MonkeyPatch, database_url: str,
                       seeded: None) -> None:
    result = run_cli(monkeypatch, database_url, "groups", "list", "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert (row["chat_id"], row["members"], row["employees"], row["joined_7d"],
            row["joined_30d"], row["mass_sends_30d"]) == ("wrOat01", 2, 1, 1, 2,
                                                          {"created": 0, "sent": 0})
    monkeypatch.setattr(cli_kit.console, "width", 200)  # one line per row
    table = run_cli(monkeypatch, database_url, "groups", "list")
    assert "禾源良品·早餐打卡群" in table.output and "+1 / -0" in table.output

    for ref in ("wrOat01", "禾源良品·早餐打卡群"):
        shown = run_cli(monkeypatch, database_url, "groups", "show", ref, "--json")
        assert shown.exit_code == 0, shown.output
        data = json.loads(shown.output)
        phones = {m["userid"]: m["phone"] for m in data["member_list"]}
        assert phones["wmFan01"] == "139****9000"
    text = run_cli(monkeypatch, database_url, "groups", "show", "wrOat01").output
    assert "139****9000" in text and "13900139000" not in text and "员工" in text

    missing = run_cli(monkeypatch, database_url, "groups", "show", "nope")
    assert missing.exit_code == 2 and "no customer group" in missing.output


def test_sync_without_wecom_says_what_to_set(monkeypatch: pytest.MonkeyPatch,
                                             database_url: str, fresh_adapters: None,
                                             sessions: sessionmaker[Session]) -> None:
    monkeypatch.delenv("SIYU_WECOM_CORP_ID", raising=False)
    monkeypatch.delenv("SIYU_WECOM_CORP_SECRET", raising=False)
    result = run_cli(monkeypatch, database_url, "groups", "sync")
    assert result.exit_code == 2
    assert "WeCom is not configured: set SIYU_WECOM_CORP_ID and SIYU_WECOM_CORP_SECRET" \
        in result.output


def test_sync_reads_every_group_through_the_jobs(
        monkeypatch: pytest.MonkeyPatch, database_url: str, wecom_api: FakeWeCom,
        vector: dict[str, Any], fresh_adapters: None,
        sessions: sessionmaker[Session]) -> None:
    for n in range(1, 4):
        wecom_api.groups[f"wrChat0{n}"] = {
            "chat_id": f"wrChat0{n}", "name": f"会员福利 {n} 群", "owner": "advisor_chen",
            "member_list": [member(f"wmMember{n}", 2, NOW - dt.timedelta(hours=n))]}
    monkeypatch.setenv("SIYU_WECOM_CORP_ID", vector["corp_id"])
    monkeypatch.setenv("SIYU_WECOM_CORP_SECRET", CORP_SECRET)
    monkeypatch.setenv("SIYU_WECOM_API_BASE", wecom_api.url)
    result = run_cli(monkeypatch, database_url, "groups", "sync", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["groups"], out["done"], out["failed"], out["error"]) == (3, 4, 0, None)
    with sessions() as s:
        assert sorted(g.name or "" for g in s.scalars(select(CustomerGroup))) == [
            "会员福利 1 群", "会员福利 2 群", "会员福利 3 群"]
    assert len(wecom_api.calls("/cgi-bin/externalcontact/groupchat/list")) == 2

    queued = run_cli(monkeypatch, database_url, "groups", "sync", "--no-wait")
    assert queued.exit_code == 0 and "已排队" in queued.output


def test_sync_reports_a_wecom_refusal(monkeypatch: pytest.MonkeyPatch, database_url: str,
                                      wecom_api: FakeWeCom, vector: dict[str, Any],
                                      fresh_adapters: None,
                                      sessions: sessionmaker[Session]) -> None:
    monkeypatch.setenv("SIYU_WECOM_CORP_ID", vector["corp_id"])
    monkeypatch.setenv("SIYU_WECOM_CORP_SECRET", "not-the-secret")
    monkeypatch.setenv("SIYU_WECOM_API_BASE", wecom_api.url)
    result = run_cli(monkeypatch, database_url, "groups", "sync")
    assert result.exit_code == 1
    assert "任务 0 个完成，1 个待重试" in result.output and "invalid credential" in result.output
