"""Fixtures of the points tests: the console's (staff users, login, a live server)."""

from tests.console.conftest import (  # noqa: F401  (the console fixtures, for console tests)
    live_server,
    login,
    make_user,
    staff,
)
