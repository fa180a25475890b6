"""Privacy fixtures: the console's staff, login and sample customer fixtures."""

from tests.console.conftest import csrf_from, login, make_user, sample, staff

__all__ = ["csrf_from", "login", "make_user", "sample", "staff"]
