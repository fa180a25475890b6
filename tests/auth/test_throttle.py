"""Sign-in throttling counted in the database: 20 wrong passwords lock the name (429 in
Chinese, even with the right password) until the lock expires; the same for a name that
does not exist; audited; ``siyu user unlock`` clears it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth import login, users
from siyu.auth.models import LoginThrottle
from siyu.auth.service import create_user
from siyu.config import Settings
from siyu.db import utcnow
from siyu.privacy.models import AuditEntry
from tests.console.conftest import PASSWORD, csrf_from


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(login, "utcnow", clock)
    return clock


def attempt(client: TestClient, username: str, password: str) -> tuple[int, str]:
    client.cookies.clear()
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password,
                                    "csrf_token": csrf_from(page.text)},
                    follow_redirects=False)
    return r.status_code, r.text


@pytest.mark.parametrize("username", ["boss", "no-such-user"])
def test_twenty_wrong_passwords_lock_the_name_even_for_the_right_password(
        username: str, app_client: TestClient, sessions: sessionmaker[Session],
        clock: Clock) -> None:
    with sessions() as session:
        create_user(session, "boss", PASSWORD, "admin")
        session.commit()
    statuses = [attempt(app_client, username, f"wrong-{i}")[0] for i in range(20)]
    assert statuses[:5] == [401] * 5
    assert statuses[-1] == 429 and set(statuses) <= {401, 429}
    status, page = attempt(app_client, username, PASSWORD)
    assert status == 429
    assert "登录失败次数过多" in page and "分钟后再试" in page
    # Still locked a little before the 15 minutes are up, from another address too.
    clock.now += dt.timedelta(minutes=14)
    assert attempt(app_client, username, PASSWORD)[0] == 429
    clock.now += dt.timedelta(minutes=16)
    status, _ = attempt(app_client, username, PASSWORD)
    assert status == (303 if username == "boss" else 401)


def test_the_answers_for_an_unknown_name_and_a_known_one_are_the_same(
        app_client: TestClient, sessions: sessionmaker[Session], clock: Clock) -> None:
    with sessions() as session:
        create_user(session, "boss", PASSWORD, "admin")
        session.commit()
    known = [attempt(app_client, "boss", f"wrong-{i}") for i in range(12)]
    clock.now += dt.timedelta(hours=1)  # the address's count lapses too
    unknown = [attempt(app_client, "nobody", f"wrong-{i}") for i in range(12)]
    assert [s for s, _ in known] == [s for s, _ in unknown]
    def text(page: str, name: str) -> str:
        return re.sub(r'name="csrf_token" value="[^"]+"', "", page).replace(name, "")

    assert text(known[-1][1], "boss") == text(unknown[-1][1], "nobody")


def test_failures_are_counted_per_address_across_names(
        app_client: TestClient, settings: Settings, clock: Clock) -> None:
    statuses = [attempt(app_client, f"name-{i}", "wrong")[0]
                for i in range(settings.login_address_delay_after + 1)]
    assert statuses[-1] == 429 and statuses[0] == 401


def test_unlock_from_the_cli_service_clears_the_lock_and_success_is_audited(
        app_client: TestClient, sessions: sessionmaker[Session], settings: Settings,
        clock: Clock) -> None:
    with sessions() as session:
        create_user(session, "boss", PASSWORD, "admin")
        session.commit()
    for i in range(12):
        attempt(app_client, "boss", f"wrong-{i}")
    assert attempt(app_client, "boss", PASSWORD)[0] == 429
    with sessions() as session:
        assert users.unlock(session, settings, "cli:root", "boss",
                            address="testclient") == 2
        session.commit()
    assert attempt(app_client, "boss", PASSWORD)[0] == 303
    with sessions() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        actions = [e.action for e in entries]
        assert actions.count("login.failure") == 5  # then the delays refuse unchecked
        assert "login.throttled" in actions and "user.unlock" in actions
        assert actions[-1] == "login.success"
        success = entries[-1]
        assert success.actor == "user:boss" and success.ip == "testclient"
        failure = next(e for e in entries if e.action == "login.failure")
        assert failure.detail == {"reason": "wrong_password"}
        for e in entries:  # never a password
            assert "wrong-" not in str(e.detail) and PASSWORD not in str(e.detail)
        # Names and addresses are kept as keyed hashes only.
        keys = session.scalars(select(LoginThrottle.key_hash)).all()
        assert all(len(k) == 64 and "boss" not in k for k in keys)


def test_an_unknown_name_is_audited_without_the_name_typed(
        app_client: TestClient, sessions: sessionmaker[Session]) -> None:
    attempt(app_client, "my-secret-password", "x")
    with sessions() as session:
        entry = session.scalars(select(AuditEntry)).one()
        assert entry.action == "login.failure" and entry.actor == "anonymous"
        assert "my-secret-password" not in f"{entry.actor}{entry.target}{entry.detail}"
