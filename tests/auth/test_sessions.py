"""Server-side console sessions: logout, a password change, a role change and disabling
end a user's sessions at once, on every server process; idle and absolute timeouts."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from siyu.app import create_app
from siyu.auth import sessions as auth_sessions
from siyu.auth import users
from siyu.auth.models import User, UserSession
from siyu.auth.service import create_user
from siyu.config import Settings
from siyu.db import make_engine, utcnow
from tests.console.conftest import PASSWORD, csrf_from


@pytest.fixture
def other_process(settings: Settings, database_url: str) -> Iterator[TestClient]:
    """A second app on the same database through its own engine and connection pool, as
    another server process would be."""
    engine = make_engine(database_url)
    with TestClient(create_app(settings, engine=engine)) as client:
        yield client
    engine.dispose()


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password,
                                    "csrf_token": csrf_from(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return client.cookies["siyu_session"]


def page_status(client: TestClient, cookie: str, path: str = "/customers") -> int:
    client.cookies.clear()
    client.cookies.set("siyu_session", cookie)
    return client.get(path, follow_redirects=False).status_code


def test_the_cookie_holds_a_random_session_id_and_the_table_only_its_hash(
        app_client: TestClient, team: None, sessions: sessionmaker[Session]) -> None:
    cookie = sign_in(app_client, "wang")
    assert page_status(app_client, cookie) == 200
    with sessions() as session:
        row = session.scalars(select(UserSession)).one()
        assert row.ip == "testclient" and len(row.token_hash) == 64
        assert row.token_hash not in cookie


@pytest.mark.parametrize("how", ["logout", "password", "role", "disable", "revoke"])
def test_an_ended_session_is_refused_at_once_by_every_process(
        how: str, app_client: TestClient, other_process: TestClient, team: None,
        sessions: sessionmaker[Session]) -> None:
    cookie = sign_in(app_client, "wang")
    assert page_status(app_client, cookie) == 200
    assert page_status(other_process, cookie) == 200
    if how == "logout":
        app_client.cookies.set("siyu_session", cookie)
        token = csrf_from(app_client.get("/customers").text)
        assert app_client.post("/logout", data={"csrf_token": token},
                               follow_redirects=False).status_code == 303
    else:
        with sessions() as session:
            if how == "password":
                users.change_password(session, "cli:test", "wang", "another-pass-9")
            elif how == "role":
                users.set_role(session, "cli:test", "wang", "agent")
            elif how == "disable":
                users.disable(session, "cli:test", "wang")
            else:
                assert users.revoke(session, "cli:test", "wang") == 1
            session.commit()
    # The very next request, on either process, is sent to the login page.
    assert page_status(other_process, cookie) == 303
    assert page_status(app_client, cookie) == 303
    with sessions() as session:
        assert session.scalars(select(UserSession)).all() == []


def test_other_users_sessions_survive_a_users_revocation(
        app_client: TestClient, team: None, sessions: sessionmaker[Session]) -> None:
    boss = sign_in(app_client, "boss")
    app_client.cookies.clear()
    wang = sign_in(app_client, "wang")
    with sessions() as session:
        users.disable(session, "cli:test", "wang")
        session.commit()
    assert page_status(app_client, wang) == 303
    assert page_status(app_client, boss) == 200


def test_idle_and_absolute_timeouts(sessions: sessionmaker[Session], settings: Settings
                                    ) -> None:
    configured = settings.model_copy(update={"session_idle_minutes": 30,
                                             "session_max_hours": 2})
    start = utcnow()
    with sessions() as session:
        user = create_user(session, "liu", PASSWORD, "agent")
        token = auth_sessions.start(session, configured, user, now=start)
        session.commit()
        at = start
        # Active every 20 minutes: alive until the absolute limit of 2 hours.
        for _ in range(5):
            at += dt.timedelta(minutes=20)
            assert auth_sessions.resolve(session, configured, token, now=at) is not None
        session.commit()
        assert auth_sessions.resolve(session, configured, token,
                                     now=start + dt.timedelta(hours=2)) is None
        idle = auth_sessions.start(session, configured, user, now=start)
        assert auth_sessions.resolve(session, configured, idle,
                                     now=start + dt.timedelta(minutes=29)) is not None
        assert auth_sessions.resolve(session, configured, idle,
                                     now=start + dt.timedelta(minutes=59)) is None
        assert session.scalars(select(UserSession)).all() == []


def test_last_seen_is_written_at_most_once_a_minute(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    start = utcnow()
    with sessions() as session:
        user = create_user(session, "zhao", PASSWORD, "agent")
        token = auth_sessions.start(session, settings, user, now=start)
        auth_sessions.resolve(session, settings, token, now=start + dt.timedelta(seconds=30))
        row = session.scalars(select(UserSession)).one()
        assert row.last_seen_at == start
        auth_sessions.resolve(session, settings, token, now=start + dt.timedelta(seconds=61))
        assert row.last_seen_at == start + dt.timedelta(seconds=61)


def test_the_last_active_admin_cannot_be_disabled_or_demoted(
        sessions: sessionmaker[Session], team: None) -> None:
    from siyu.auth.errors import LastAdmin

    with sessions() as session:
        with pytest.raises(LastAdmin):
            users.disable(session, "cli:test", "boss")
        with pytest.raises(LastAdmin):
            users.set_role(session, "cli:test", "boss", "operator")
        users.set_role(session, "cli:test", "wang", "admin")
        users.disable(session, "cli:test", "boss")
        assert session.scalar(select(User.is_active).where(User.username == "boss")) is False


def test_user_commands(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from siyu.cli import app
    from siyu.config import get_settings

    monkeypatch.setenv("SIYU_DATABASE_URL", f"sqlite:///{tmp_path}/users.db")  # type: ignore[str-bytes-safe]
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        def run(*args: str) -> str:
            result = runner.invoke(app, list(args))
            assert result.exit_code == 0, result.output
            return result.output

        run("user", "create", "boss", "--password", PASSWORD)
        run("user", "create", "wang", "--role", "operator", "--password", PASSWORD)
        settings = get_settings()
        engine: Engine = make_engine(settings.database_url)
        with sessionmaker(bind=engine)() as session:
            wang = session.scalar(select(User).where(User.username == "wang"))
            assert wang is not None
            auth_sessions.start(session, settings, wang, ip="10.0.0.8")
            session.commit()
        listed = json.loads(run("user", "sessions", "wang", "--json"))
        assert [s["ip"] for s in listed] == ["10.0.0.8"]
        assert json.loads(run("user", "list", "--json"))[1]["sessions"] == 1
        assert "1 session(s)" in run("user", "revoke", "wang")
        assert json.loads(run("user", "sessions", "wang", "--json")) == []
        run("user", "set-role", "wang", "agent")
        run("user", "disable", "wang")
        rows = {r["username"]: r for r in json.loads(run("user", "list", "--json"))}
        assert rows["wang"]["role"] == "agent" and rows["wang"]["active"] is False
        run("user", "enable", "wang")
        refused = runner.invoke(app, ["user", "disable", "boss"])
        assert refused.exit_code == 2 and "至少需要保留一位" in refused.output
        run("user", "unlock", "boss")
        audit = json.loads(run("audit", "--json"))
        actions = {a["action"] for a in audit}
        assert {"user.create", "user.role", "user.disable", "user.enable",
                "user.sessions.revoke", "user.unlock"} <= actions
        engine.dispose()
    finally:
        get_settings.cache_clear()
