"""``siyu segments``: count, explain, create, list, refresh, export and refused rules."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.segments.models import Segment
from tests.cli_helpers import run_cli
from tests.segments.conftest import NOW, Population

VIP_RULE = 'tier = "VIP" and tag("VIP")'


def test_count_prints_the_count_last(monkeypatch: pytest.MonkeyPatch, database_url: str,
                                     population: Population) -> None:
    result = run_cli(monkeypatch, database_url, "segments", "count", VIP_RULE)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "2"
    assert "会员等级为「VIP」 且 标签「VIP」" in result.stdout
    # Windows are relative to --now.
    result = run_cli(monkeypatch, database_url, "segments", "count",
                     "orders(last 30d) >= 1", "--now", NOW.isoformat())
    assert result.stdout.strip().splitlines()[-1] == "2"
    result = run_cli(monkeypatch, database_url, "segments", "count", "--json", VIP_RULE)
    data = json.loads(result.stdout)
    assert data["count"] == 2 and data["text"] == VIP_RULE


def test_bad_rule_exits_2_with_caret_and_runs_nothing(
        monkeypatch: pytest.MonkeyPatch, database_url: str, population: Population,
        sessions: sessionmaker[Session]) -> None:
    result = run_cli(monkeypatch, database_url, "segments", "create", "坏",
                     'tier in ("VIP") and citi = "上海"')
    assert result.exit_code == 2
    assert "invalid rule at character 21" in result.stderr
    assert "tier in (\"VIP\") and citi = \"上海\"\n                    ^" in result.stderr
    assert "第 21 个字符处" in result.stderr
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 0
    result = run_cli(monkeypatch, database_url, "segments", "count", "orders >=")
    assert result.exit_code == 2 and result.stdout == ""


def test_explain_shows_text_json_description_and_sql(
        monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    result = run_cli(monkeypatch, database_url, "segments", "explain", "--json",
                     "TAG('VIP') AND orders(LAST 2w) > 1")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["text"] == 'tag("VIP") and orders(last 2w) > 1'
    assert info["description_zh"] == "标签「VIP」 且 近2周下单>1次"
    assert "VIP" not in info["sql"] and "VIP" in info["params"].values()
    plain = run_cli(monkeypatch, database_url, "segments", "explain", 'city = "上海"')
    assert "SELECT customers.id" in plain.stdout and "城市为「上海」" in plain.stdout


def test_create_list_refresh_export(monkeypatch: pytest.MonkeyPatch, database_url: str,
                                    population: Population, tmp_path: Path) -> None:
    result = run_cli(monkeypatch, database_url, "segments", "create", "VIP 标签", VIP_RULE)
    assert result.exit_code == 0, result.output
    assert "2 members" in result.stdout
    listed = run_cli(monkeypatch, database_url, "segments", "list", "--json")
    assert [(s["name"], s["size"]) for s in json.loads(listed.stdout)] == [("VIP 标签", 2)]
    refreshed = run_cli(monkeypatch, database_url, "segments", "refresh", "--json")
    assert json.loads(refreshed.stdout)[0]["entered"] == 0
    target = tmp_path / "vip.csv"
    exported = run_cli(monkeypatch, database_url, "segments", "export", "VIP 标签",
                       str(target))
    assert exported.exit_code == 0, exported.output
    assert "wrote 2 customers" in exported.stdout
    assert target.read_bytes().startswith("\ufeff客户编号".encode())  # for Excel
    with target.open(encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["客户编号", "品牌客户号", "姓名", "手机号"],
                    [str(population.ids["A"]), "EXT-A", "客户A", "138****8001"],
                    [str(population.ids["D"]), "", "客户D", ""]]
    missing = run_cli(monkeypatch, database_url, "segments", "export", "没有", str(target))
    assert missing.exit_code == 2 and "not found" in missing.stderr
    assert not (tmp_path / "vip.csv.part").exists()
