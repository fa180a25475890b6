"""The install's own secret: generated on first start and kept beside the data, separate
keys per purpose, rotation of the session key alone, and no secret in any error."""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path

import itsdangerous
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from siyu.app import create_app
from siyu.auth import secrets
from siyu.auth.service import create_user
from siyu.channels.webchat.tokens import ChatSession, issue_session
from siyu.config import Settings
from siyu.customers.identity import IdentityRef

OLD_DEFAULT = "dev-secret-key-change-me"
PASSWORD = "correct-horse-9"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    secrets.forget_cached()


def sqlite_settings(tmp_path: Path, name: str = "siyu.db", **extra: object) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / name}", environment="test",
                    **extra)  # type: ignore[arg-type]


def cookie_for(key: str | bytes, data: dict[str, object]) -> str:
    secret = key.hex() if isinstance(key, bytes) else key
    payload = base64.b64encode(json.dumps(data).encode())
    return itsdangerous.TimestampSigner(secret).sign(payload).decode()


def test_first_start_generates_a_key_file_with_mode_0600_and_two_installs_differ(
        tmp_path: Path) -> None:
    one = sqlite_settings(tmp_path / "a")
    two = sqlite_settings(tmp_path / "b")
    key_one = secrets.purpose_key(one, "session")
    key_two = secrets.purpose_key(two, "session")
    assert key_one != key_two and len(key_one) == 32
    path = tmp_path / "a" / "siyu.db.secret"
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
    # The same install reads the same key again (a restart, another process).
    secrets.forget_cached()
    assert secrets.purpose_key(one, "session") == key_one
    # The master is random and long; what the file holds is not the derived key.
    stored = json.loads(path.read_text())
    assert len(base64.urlsafe_b64decode(stored["master"])) == 32
    assert key_one.hex() not in path.read_text()


def test_processes_starting_at_once_agree_on_one_master(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    keys: list[bytes] = []

    def start() -> None:
        keys.append(secrets.load_keyring(settings).key("session"))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1


def test_purposes_have_separate_keys(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    purposes = ["session", "chat-session", "chat-code", "dnc-hash", "totp", "survey-link"]
    assert len({secrets.purpose_key(settings, p) for p in purposes}) == len(purposes)


def test_an_explicit_secret_key_is_used_and_no_file_is_written(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path, secret_key=SecretStr("k" * 40))
    other = sqlite_settings(tmp_path / "x", secret_key=SecretStr("k" * 40))
    assert secrets.purpose_key(settings, "session") == secrets.purpose_key(other, "session")
    assert not (tmp_path / "siyu.db.secret").exists()


def test_rotating_the_session_key_keeps_every_stable_key(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    stable = ["chat-code", "dnc-hash", "totp", "survey-link", "signed-link"]
    before = {p: secrets.purpose_key(settings, p) for p in [*stable, "session"]}
    assert secrets.rotate(settings, "session") == 1
    after = {p: secrets.purpose_key(settings, p) for p in [*stable, "session"]}
    assert after["session"] != before["session"]
    assert {p: after[p] for p in stable} == {p: before[p] for p in stable}
    with pytest.raises(Exception, match="cannot be rotated"):
        secrets.rotate(settings, "dnc-hash")
    assert secrets.purpose_key(settings, "dnc-hash") == before["dnc-hash"]


def test_the_cli_rotates_and_reports_without_showing_a_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from siyu.cli import app
    from siyu.config import get_settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SIYU_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        status = runner.invoke(app, ["secret", "status", "--json"])
        assert status.exit_code == 0, status.output
        assert json.loads(status.output)["generations"] == {"session": 0, "chat-session": 0}
        before = secrets.purpose_key(get_settings(), "session")
        rotated = runner.invoke(app, ["secret", "rotate"])
        assert rotated.exit_code == 0 and "generation 1" in rotated.output
        assert secrets.purpose_key(get_settings(), "session") != before
        refused = runner.invoke(app, ["secret", "rotate", "totp"])
        assert refused.exit_code == 2 and "cannot be rotated" in refused.output
        master = json.loads((tmp_path / "cli.db.secret").read_text())["master"]
        for output in (status.output, rotated.output, refused.output):
            assert master[:8] not in output and before.hex()[:8] not in output
    finally:
        get_settings.cache_clear()


# -- forged sessions are refused ---------------------------------------------------------


@pytest.fixture
def admin_id(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        user = create_user(session, "boss", PASSWORD, "admin")
        session.commit()
        return user.id


def test_a_console_cookie_signed_with_any_key_but_the_installs_own_is_refused(
        app_client: TestClient, settings: Settings, admin_id: int, tmp_path: Path,
        sessions: sessionmaker[Session]) -> None:
    foreign = secrets.purpose_key(sqlite_settings(tmp_path / "other"), "session")
    for key in (OLD_DEFAULT, foreign, secrets.purpose_key(settings, "chat-session")):
        app_client.cookies.set("siyu_session", cookie_for(key, {"uid": admin_id}))
        r = app_client.get("/customers", follow_redirects=False)
        assert r.status_code in (302, 303, 307) and r.headers["location"].startswith("/login")
    # The install's own key signs a cookie the console accepts (the test can fail).
    own = secrets.purpose_key(settings, "session")
    with sessions() as session:
        from siyu.auth import sessions as auth_sessions
        from siyu.auth.models import User

        token = auth_sessions.start(session, settings, session.get(User, admin_id))
        session.commit()
    for key in (OLD_DEFAULT, foreign):
        app_client.cookies.set("siyu_session", cookie_for(key, {"sid": token}))
        r = app_client.get("/customers", follow_redirects=False)
        assert r.status_code in (302, 303, 307)
    app_client.cookies.set("siyu_session", cookie_for(own, {"sid": token}))
    assert app_client.get("/customers", follow_redirects=False).status_code == 200
    # A cookie naming a user rather than a server-side session is no longer accepted.
    app_client.cookies.clear()
    app_client.cookies.set("siyu_session", cookie_for(own, {"uid": admin_id}))
    assert app_client.get("/customers", follow_redirects=False).status_code in (302, 303, 307)


def test_a_rotated_session_key_signs_everyone_out(
        app_client: TestClient, settings: Settings, admin_id: int) -> None:
    page = app_client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = app_client.post("/login", data={"username": "boss", "password": PASSWORD,
                                        "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert app_client.get("/customers", follow_redirects=False).status_code == 200
    secrets.rotate(settings, "session")
    r = app_client.get("/customers", follow_redirects=False)
    assert r.status_code in (302, 303, 307)


def test_a_web_chat_session_signed_with_another_key_is_refused(
        app_client: TestClient, settings: Settings, sessions: sessionmaker[Session],
        tmp_path: Path) -> None:
    from siyu.customers.service import upsert_customers

    with sessions() as session:
        customer_id = upsert_customers(session, [{
            "id": "C9", "name": "王芳",
            "identities": [{"kind": "phone", "value": "+8613900139000", "verified": True}],
        }], settings=settings).customer_ids[0]
        session.commit()
    chat = ChatSession(customer_id, (IdentityRef("phone", "+8613900139000", True),), "token",
                       "王芳")
    foreign = secrets.purpose_key(sqlite_settings(tmp_path / "other"), "chat-session")
    for key in (OLD_DEFAULT, foreign.hex(), secrets.purpose_key(settings, "session").hex()):
        r = app_client.get("/chat/api/messages", headers={"X-Siyu-Chat": issue_session(key,
                                                                                       chat)})
        assert r.status_code == 401, key
    own = secrets.purpose_key(settings, "chat-session").hex()
    r = app_client.get("/chat/api/messages", headers={"X-Siyu-Chat": issue_session(own, chat)})
    assert r.status_code == 200


# -- no secret in errors, logs or reprs ----------------------------------------------------

AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP = "cq-3f9a1c7e5b2d4f6a8c0e"
WEAK = "Wq7xKp3Zr9"


def pieces(value: str, size: int = 4) -> set[str]:
    return {value[i:i + size] for i in range(len(value) - size + 1)}


def test_production_start_up_with_a_weak_key_echoes_no_secret(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_ENVIRONMENT", "production")
    monkeypatch.setenv("SIYU_PASSWORD_SCRYPT_LOG2N", "17")
    monkeypatch.setenv("SIYU_SECRET_KEY", WEAK)
    monkeypatch.setenv("SIYU_WECOM_AES_KEY", AES)
    monkeypatch.setenv("SIYU_WECOM_CORP_SECRET", CORP)
    monkeypatch.setenv("SIYU_WECOM_TOKEN", "tok-0123456789abcdef")
    with pytest.raises(ValidationError) as info:
        Settings()
    errors = info.value.errors(include_input=False)
    text = str(info.value) + repr(info.value) + json.dumps(errors, default=str)
    assert "SIYU_SECRET_KEY" in text
    for secret in (WEAK, AES, CORP, "tok-0123456789abcdef"):
        leaked = [p for p in pieces(secret) if p in text]
        assert not leaked, f"error shows part of a secret: {leaked}"


@pytest.mark.parametrize("value", [OLD_DEFAULT, "changeme", "secret"])
def test_the_old_default_and_placeholders_are_refused_everywhere(value: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(secret_key=SecretStr(value), environment="development")


def test_settings_and_keyring_reprs_show_no_secret(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path, secret_key=SecretStr("s" * 10 + "Z9x8c7v6b5n4m3"),
                               wecom_aes_key=SecretStr(AES), wecom_corp_secret=SecretStr(CORP))
    ring = secrets.keyring(settings)
    text = repr(settings) + str(settings) + repr(ring) + str(ring)
    for secret in ("Z9x8c7v6b5n4m3", AES, CORP, ring.key("session").hex()):
        assert not [p for p in pieces(secret, 6) if p in text]


def test_a_generated_key_on_the_configured_store_survives_a_restart(
        settings: Settings, engine: Engine) -> None:
    """On PostgreSQL the key lives in the database; on SQLite in the file beside it."""
    first = secrets.load_keyring(settings, engine).key("session")
    again = secrets.load_keyring(settings, engine).key("session")
    assert first == again
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM install_secrets "
                                     "WHERE name = 'master'")).scalar() == 1
    else:
        assert secrets.secret_file(settings.database_url) is not None
        assert os.path.exists(str(secrets.secret_file(settings.database_url)))


def test_app_refuses_to_start_on_a_damaged_secret_file(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    (tmp_path / "siyu.db.secret").write_text('{"master": "dG9vLXNob3J0"}')
    with pytest.raises(secrets.SecretStoreError, match="damaged"):
        create_app(settings)


def test_re_reading_the_keyring_never_waits_on_the_callers_exhausted_pool(
        settings: Settings, database_url: str, engine: Engine) -> None:
    """A request holding the pool's only connection (the others taken by concurrent
    requests) re-reads the keyring without waiting for the pool: it used to wait the pool's
    whole timeout (30 s in production) while every request queued behind it failed."""
    import time

    from sqlalchemy import text

    from siyu.db import make_engine

    # (On SQLite the keys live in a file beside the database: the same must hold.)
    tight = make_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=2)
    try:
        before = secrets.purpose_key(settings, "session", engine=tight)
        with tight.connect() as held:  # the request's own connection, the pool's last
            held.execute(text("SELECT 1"))
            secrets.forget_cached()  # the cache is stale: the next call re-reads the store
            started = time.monotonic()
            again = secrets.purpose_key(settings, "session", engine=tight)
            waited = time.monotonic() - started
        assert again == before
        assert waited < 1.5, f"waited {waited:.1f} s on the caller's pool"
    finally:
        tight.dispose()
