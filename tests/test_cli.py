"""The CLI's shared contracts: --help everywhere, apikey/user/customers commands."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.main import get_command

from siyu.auth.service import check_api_key
from siyu.cli import app
from tests.cli_helpers import run_cli


def _all_command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(cmd: object, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*prefix, name])

    walk(get_command(app), [])
    return paths


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p) or "siyu")
def test_every_command_has_help(
    path: list[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    result = run_cli(monkeypatch, database_url, *path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_root_help_names_the_contract_commands(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    out = run_cli(monkeypatch, database_url, "--help").output
    for name in ("serve", "worker", "demo", "db", "import", "apikey", "user", "customers"):
        assert name in out


def test_apikey_create_prints_the_key_alone_on_the_last_line(
    monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: sessionmaker[Session]
) -> None:
    result = run_cli(monkeypatch, database_url, "apikey", "create", "crm-sync")
    assert result.exit_code == 0
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("sy_") and " " not in key
    with sessions() as s:
        assert check_api_key(s, key).name == "crm-sync"
    listed = json.loads(run_cli(monkeypatch, database_url, "apikey", "list", "--json").stdout)
    assert [k["name"] for k in listed] == ["crm-sync"]
    assert key not in json.dumps(listed)


def test_user_create_validates_role_and_password(
    monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: sessionmaker[Session]
) -> None:
    # (``sessions`` empties the database afterwards: the user created here must not be seen
    # by later tests on the same worker.)
    bad = run_cli(monkeypatch, database_url, "user", "create", "li.na", "--role", "boss",
                  "--password", "long-enough-pw")
    assert bad.exit_code == 2 and "role must be one of" in bad.output
    short = run_cli(monkeypatch, database_url, "user", "create", "li.na", "--password", "x")
    assert short.exit_code == 2 and "at least 8" in short.output
    ok = run_cli(monkeypatch, database_url, "user", "create", "li.na", "--role", "agent")
    assert ok.exit_code == 0 and "password:" in ok.output
    dup = run_cli(monkeypatch, database_url, "user", "create", "li.na", "--role", "agent")
    assert dup.exit_code == 2 and "already exists" in dup.output


def test_customers_show_by_phone(
    monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: sessionmaker[Session]
) -> None:
    from siyu.config import Settings
    from siyu.customers.service import upsert_customers

    with sessions() as s:
        upsert_customers(s, [{"id": "HY9", "name": "陈静",
                              "identities": [{"kind": "phone", "value": "13800138000"}]}],
                         settings=Settings(database_url=database_url))
        s.commit()
    out = run_cli(monkeypatch, database_url, "customers", "show", "phone:138-0013-8000",
                  "--json")
    assert out.exit_code == 0, out.output
    view = json.loads(out.stdout)
    assert view["external_id"] == "HY9" and view["profile"]["name"] == "陈静"
    missing = run_cli(monkeypatch, database_url, "customers", "show", "phone:13900000000")
    assert missing.exit_code == 2 and "no customer" in missing.output


def test_user_set_password_and_list(
    monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: sessionmaker[Session]
) -> None:
    from siyu.auth.service import authenticate

    run_cli(monkeypatch, database_url, "user", "create", "wang", "--password", "first-pass-1")
    r = run_cli(monkeypatch, database_url, "user", "set-password", "wang", "--password",
                "second-pass-2")
    assert r.exit_code == 0
    with sessions() as s:
        assert authenticate(s, "wang", "second-pass-2").username == "wang"
    missing = run_cli(monkeypatch, database_url, "user", "set-password", "nobody")
    assert missing.exit_code == 2 and "not found" in missing.output
    listed = json.loads(run_cli(monkeypatch, database_url, "user", "list", "--json").stdout)
    assert [(u["username"], u["role"]) for u in listed] == [("wang", "admin")]
