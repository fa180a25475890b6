"""Run the ``siyu`` CLI in-process against the test database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from siyu.config import get_settings


def run_cli(monkeypatch: pytest.MonkeyPatch, database_url: str, *args: str) -> Result:
    monkeypatch.setenv("SIYU_DATABASE_URL", database_url)
    get_settings.cache_clear()
    from siyu.cli import app

    try:
        return CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        get_settings.cache_clear()
