from tests.console.conftest import login, make_user, staff  # noqa: F401  (console fixtures)
