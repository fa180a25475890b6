"""``siyu import``: CSV and JSON Lines, line-numbered rejects, file-level refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.customers.models import Customer, Identity, Tag
from siyu.events.models import Event, Order
from tests.cli_helpers import run_cli


def _count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_orders_csv_with_bad_rows_lands_good_ones_and_names_bad_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str,
    sessions: sessionmaker[Session],
) -> None:
    f = tmp_path / "orders.csv"
    f.write_text(
        "customer_id,order_id,ts,amount\n"
        "C1,o1,2026-01-01,10.5\n"
        "C1,o2,2026-01-05 12:00:00,20\n"
        "C2,o3,not-a-date,5\n"
        "C2,o4,2026-01-07,-3\n"
        ",o5,2026-01-07,3\n"
        "C3,o6,2026-02-01T08:00:00+08:00,99.9\n",
        encoding="utf-8",
    )
    result = run_cli(monkeypatch, database_url, "import", "orders", str(f), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["rows"] == 6
    assert summary["accepted"] == 3
    assert summary["rejected"] == 3
    rejects = (tmp_path / "orders.csv.rejects.csv").read_text(encoding="utf-8").splitlines()
    assert rejects[0] == "line,id,reason"
    assert [r.split(",")[0] for r in rejects[1:]] == ["4", "5", "6"]
    assert "ts" in rejects[1] and "amount" in rejects[2] and "customer_id" in rejects[3]
    assert _count(sessions, Order) == 3
    with sessions() as s:
        ids = set(s.scalars(select(Identity.value).where(Identity.kind == "external_id")))
    assert ids == {"C1", "C3"}
    # importing again stores nothing twice
    again = run_cli(monkeypatch, database_url, "import", "orders", str(f), "--json")
    assert json.loads(again.stdout[again.stdout.index("{"):])["duplicates"] == 3
    assert _count(sessions, Order) == 3


def test_non_utf8_csv_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str,
    sessions: sessionmaker[Session],
) -> None:
    f = tmp_path / "gbk.csv"
    f.write_bytes("customer_id,order_id,ts,amount\nC1,o1,2026-01-01,1\nC2,订单2,2026-01-01,2\n"
                  .encode("gbk"))
    result = run_cli(monkeypatch, database_url, "import", "orders", str(f))
    assert result.exit_code == 2
    assert "line 3: not UTF-8" in result.output and "Nothing was imported" in result.output
    assert _count(sessions, Order) == 0 and _count(sessions, Customer) == 0


def test_missing_required_column_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str,
    sessions: sessionmaker[Session],
) -> None:
    f = tmp_path / "orders.csv"
    f.write_text("customer_id,order_id,amount\nC1,o1,1\n", encoding="utf-8")
    result = run_cli(monkeypatch, database_url, "import", "orders", str(f))
    assert result.exit_code == 2
    assert "lacks a required column" in result.output and "ts" in result.output
    assert _count(sessions, Order) == 0


def test_customers_csv_with_identities_tags_and_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str,
    sessions: sessionmaker[Session],
) -> None:
    f = tmp_path / "customers.csv"
    f.write_text(
        "id,name,gender,city,phone,wechat_openid,tags,car_model\n"
        "HY1,王芳,女,杭州,138 0013 8000,o-1,素食|宝妈,Model Y\n"
        "HY2,张伟,男,北京,12345,o-2,,\n",
        encoding="utf-8",
    )
    result = run_cli(monkeypatch, database_url, "import", "customers", str(f))
    assert result.exit_code == 0, result.output
    assert "accepted: 1" in result.output and "rejected: 1" in result.output
    assert "line 3" in result.output and "invalid phone" in result.output
    with sessions() as s:
        c = s.scalars(select(Customer)).one()
        assert (c.name, c.gender, c.city) == ("王芳", "female", "杭州")
        assert c.attributes == {"car_model": "Model Y"}
        assert set(s.scalars(select(Tag.name))) == {"素食", "宝妈"}
        assert set(s.scalars(select(Identity.value))) == {"HY1", "+8613800138000", "o-1"}


def test_events_jsonl_with_a_malformed_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str,
    sessions: sessionmaker[Session],
) -> None:
    f = tmp_path / "events.jsonl"
    f.write_text(
        '{"id": "e1", "type": "view_product", "ts": "2026-01-01T10:00:00", '
        '"identities": [{"kind": "wechat_openid", "value": "o1"}]}\n'
        '{"id": "e2", "type": "view_product", "ts": \n'
        "\n"
        '{"id": "e3", "type": "coupon_used", "ts": "2026-01-02T10:00:00", "customer_id": "C9"}\n',
        encoding="utf-8",
    )
    result = run_cli(monkeypatch, database_url, "import", "events", str(f), "--json")
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert (summary["accepted"], summary["rejected"]) == (2, 1)
    rejects = Path(summary["rejects_file"]).read_text(encoding="utf-8")
    assert rejects.splitlines()[1].startswith("2,") and "malformed JSON" in rejects
    assert _count(sessions, Event) == 2


def test_import_unknown_kind_and_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    r = run_cli(monkeypatch, database_url, "import", "refunds", str(tmp_path / "x.csv"))
    assert r.exit_code == 2 and "events or products" in r.output
    r = run_cli(monkeypatch, database_url, "import", "orders", str(tmp_path / "nope.csv"))
    assert r.exit_code == 2 and "no such file" in r.output
