"""``siyu channels webchat-token``: mint a brand token from the shell."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from siyu.channels.config import get_channel_settings
from siyu.channels.webchat.tokens import verify_token
from siyu.cli import app

SECRET = "cli-webchat-secret-0123456789abcdef"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("SIYU_WEBCHAT_SECRET", SECRET)
    get_channel_settings.cache_clear()
    yield CliRunner()
    get_channel_settings.cache_clear()


def test_token_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["channels", "webchat-token", "--phone", "138 0013 8000",
                                 "--external-id", "C7", "--name", "林晓雯", "--ttl", "600",
                                 "--base-url", "https://kf.example.com/", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["identities"] == {"phone": "+8613800138000", "external_id": "C7"}
    assert out["expires_in"] == 600
    assert out["url"] == f"https://kf.example.com/chat?token={out['token']}"
    claims = verify_token(SECRET, out["token"], max_lifetime=600)
    assert [(r.kind, r.value) for r in claims.identities] == [
        ("phone", "+8613800138000"), ("external_id", "C7")]
    assert claims.name == "林晓雯"


@pytest.mark.parametrize(("args", "message"), [
    ([], "give at least one identity"),
    (["--phone", "12345"], "--phone: invalid phone number"),
    (["--phone", "13800138000", "--ttl", "10"], "--ttl must be between 60 and 604800 s"),
])
def test_invalid_input_is_a_clear_error(runner: CliRunner, args: list[str], message: str
                                        ) -> None:
    result = runner.invoke(app, ["channels", "webchat-token", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_missing_secret_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIYU_WEBCHAT_SECRET", raising=False)
    get_channel_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["channels", "webchat-token", "--phone", "13800138000"])
    finally:
        get_channel_settings.cache_clear()
    assert result.exit_code == 2
    assert "SIYU_WEBCHAT_SECRET is not set" in result.output
