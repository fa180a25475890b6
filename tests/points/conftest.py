"""Fixtures of the points tests: the console's (staff users, login, a live server), and
points that expire at the end of the following year."""

from collections.abc import Iterator

import pytest

from siyu.points.config import get_points_settings
from tests.console.conftest import (  # noqa: F401  (the console fixtures, for console tests)
    live_server,
    login,
    make_user,
    staff,
)


@pytest.fixture
def one_year(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``SIYU_POINTS_EXPIRE_AFTER_YEARS=1`` for the test."""
    monkeypatch.setenv("SIYU_POINTS_EXPIRE_AFTER_YEARS", "1")
    get_points_settings.cache_clear()
    yield
    get_points_settings.cache_clear()
