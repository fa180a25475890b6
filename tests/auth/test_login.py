"""Login answers: an unknown name, a disabled user and a wrong password are
indistinguishable, and each goes through the password hashing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from siyu.auth import service
from siyu.auth.errors import LoginFailed

PASSWORD = "correct-horse-9"


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stored hashes ``authenticate`` verified against, in order."""
    calls: list[str] = []
    real: Callable[[str, str], bool] = service.verify_password

    def counting(password: str, stored: str) -> bool:
        calls.append(stored)
        return real(password, stored)

    monkeypatch.setattr(service, "verify_password", counting)
    return calls


def _refusal(db: Session, username: str, password: str) -> str:
    with pytest.raises(LoginFailed) as caught:
        service.authenticate(db, username, password)
    return caught.value.message


def test_unknown_name_goes_through_the_same_hashing_and_answer(
    db: Session, hash_calls: list[str]
) -> None:
    user = service.create_user(db, "alice", PASSWORD, "agent")

    wrong = _refusal(db, "alice", "wrong-password-1")
    unknown = _refusal(db, "nobody-here", "wrong-password-1")

    assert wrong == unknown == "用户名或密码错误"
    assert len(hash_calls) == 2
    assert hash_calls[0] == user.password_hash
    # The unknown name was checked against a real scrypt hash (same parameters, same work).
    assert hash_calls[1].startswith("scrypt$") and hash_calls[1] != user.password_hash
    assert len(hash_calls[1]) == len(user.password_hash)


def test_disabled_user_is_refused_after_hashing_like_a_wrong_password(
    db: Session, hash_calls: list[str]
) -> None:
    user = service.create_user(db, "bob", PASSWORD, "agent")
    user.is_active = False
    db.flush()

    assert _refusal(db, "bob", PASSWORD) == "用户名或密码错误"
    assert hash_calls == [user.password_hash]
    assert user.last_login_at is None


def test_right_password_signs_in(db: Session, hash_calls: list[str]) -> None:
    service.create_user(db, "carol", PASSWORD, "admin")
    assert service.authenticate(db, "carol", PASSWORD).last_login_at is not None
    assert len(hash_calls) == 1
