"""Password hashing at OWASP parameters, re-hashed transparently at the next sign-in."""

from __future__ import annotations

import hashlib
import secrets

import pytest
from sqlalchemy.orm import Session

from siyu.auth import service
from siyu.config import Settings


def test_production_defaults_are_owasps_scrypt_parameters(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.delenv("SIYU_PASSWORD_SCRYPT_LOG2N", raising=False)
    assert Settings().password_scrypt_log2n == 17
    params = service.ScryptParams(17)
    assert (2 ** params.log2n, params.r, params.p) == (2 ** 17, 8, 1)
    # 128 MiB of work memory: above OpenSSL's default limit, so maxmem must be given.
    assert params.maxmem >= 128 * 8 * 2 ** 17
    stored = service.hash_password("correct-horse-9", params)
    assert stored.startswith("scrypt$ln=17,r=8,p=1$")
    assert service.verify_password("correct-horse-9", stored)
    assert not service.verify_password("correct-horse-8", stored)
    with pytest.raises(ValueError, match="at least 17 in production"):
        Settings(environment="production", password_scrypt_log2n=14)


def test_an_old_hash_is_rehashed_at_the_next_sign_in(db: Session) -> None:
    user = service.create_user(db, "old-timer", "correct-horse-9", "agent")
    salt = secrets.token_bytes(16)
    legacy = hashlib.scrypt(b"correct-horse-9", salt=salt, n=2 ** 14, r=8, p=1)
    user.password_hash = f"scrypt${salt.hex()}${legacy.hex()}"  # before parameters were kept
    db.flush()
    assert service.needs_rehash(user.password_hash)
    with pytest.raises(service.LoginFailed):
        service.authenticate(db, "old-timer", "wrong-password")
    assert user.password_hash.count("$") == 2  # a wrong password changes nothing
    service.authenticate(db, "old-timer", "correct-horse-9")
    assert user.password_hash.startswith(f"scrypt${service.scrypt_params().encode()}$")
    assert not service.needs_rehash(user.password_hash)
    service.authenticate(db, "old-timer", "correct-horse-9")


def test_an_unknown_name_goes_through_the_same_hashing_at_sign_in(
        db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from siyu.auth import login

    seen: list[str] = []
    real = service.verify_password
    monkeypatch.setattr(service, "verify_password",
                        lambda password, stored: seen.append(stored) or real(password, stored))
    user = service.create_user(db, "alice", "correct-horse-9", "agent")
    for name in ("alice", "nobody"):
        with pytest.raises(service.LoginFailed):
            login.check_password(db, settings, name, "wrong-password", ip="10.1.1.1")
    assert seen[0] == user.password_hash
    assert seen[1] == service.dummy_hash() != user.password_hash
    assert seen[1].split("$")[1] == seen[0].split("$")[1]  # same scrypt parameters
