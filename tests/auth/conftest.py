"""Fixtures of the auth tests."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.service import create_user
from tests.console.conftest import PASSWORD


@pytest.fixture
def team(sessions: sessionmaker[Session]) -> None:
    """An admin ``boss`` and an operator ``wang``, with the shared test password."""
    with sessions() as session:
        create_user(session, "boss", PASSWORD, "admin")
        create_user(session, "wang", PASSWORD, "operator")
        session.commit()
