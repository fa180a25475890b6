"""The bot runs with the environment's settings (``get_settings()``), as in production where
the app's are the same: the calendar links it signs must verify in the app, so the tests
point the environment at the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from siyu.config import get_settings
from tests.console.conftest import (  # noqa: F401  (the console fixtures)
    live_server,
    login,
    make_user,
)


@pytest.fixture
def environment_settings(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("SIYU_DATABASE_URL", database_url)
    monkeypatch.setenv("SIYU_ENVIRONMENT", "test")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
