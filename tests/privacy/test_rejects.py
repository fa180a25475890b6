"""Import reject files never hold personal values: they leave the system as files."""

from __future__ import annotations

from pathlib import Path

import pytest

from siyu.kit.masking import redact
from tests.cli_helpers import run_cli


def test_reject_file_names_line_field_and_reason_without_the_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str,
) -> None:
    f = tmp_path / "customers.csv"
    f.write_text(
        "id,name,phone,email,birthday\n"
        "K1,张三,13800138000,zs@example.com,1990-01-01\n"
        "K2,李四,139001,ls@example.com,1991-02-02\n"
        "K3,王五,13700137000,wangwu-at-example.com,1992-03-03\n"
        "K4,赵六,13600136000,zl@example.com,MARKBDAY7Q\n",
        encoding="utf-8",
    )
    result = run_cli(monkeypatch, database_url, "import", "customers", str(f))
    assert result.exit_code == 0, result.output
    rejects = (tmp_path / "customers.csv.rejects.csv").read_text(encoding="utf-8")
    lines = rejects.splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["3", "4", "5"]
    assert "phone" in lines[1] and "e-mail" in lines[2]
    for value in ("139001", "wangwu-at-example.com", "MARKBDAY7Q", "13700137000",
                  "13600136000", "李四", "王五"):
        assert value not in rejects, value


def test_redact() -> None:
    assert redact("invalid phone number '138x'") == "invalid phone number '…'"
    assert redact('bad value "张三" for 13800138000') == "bad value '…' for 138****8000"
