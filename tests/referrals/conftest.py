"""Fixtures of the referrals tests: the console's (staff users, login)."""

from tests.console.conftest import (  # noqa: F401  (the console fixtures, for console tests)
    login,
    make_user,
    staff,
)
