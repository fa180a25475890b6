"""The TOTP second factor (siyu.auth.mfa): enrolment, the /login/code step, codes accepted
once, SIYU_REQUIRE_MFA, the 账户安全 page, ``siyu user mfa-reset``, and a session key
rotation leaving stored factors working. Codes are computed with pyotp as an
authenticator app would."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from siyu.app import create_app
from siyu.auth import mfa, users
from siyu.auth import secrets as auth_secrets
from siyu.auth import sessions as auth_sessions
from siyu.auth.errors import InvalidTotp
from siyu.auth.models import User, UserSession
from siyu.config import Settings
from siyu.db import make_engine, utcnow
from siyu.privacy.models import AuditEntry
from tests.cli_helpers import run_cli
from tests.console.conftest import PASSWORD, csrf_from

MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(settings: Settings, engine: Engine, sessions: sessionmaker[Session]
                ) -> Iterator[MakeClient]:
    """A client of an app with these settings (``require_mfa=...`` to change it)."""
    opened: list[TestClient] = []

    def make(**changes: object) -> TestClient:
        app = create_app(settings.model_copy(update=changes), engine=engine)
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def enrol(session: Session, settings: Settings, user: User) -> pyotp.TOTP:
    """Enrol ``user`` as the service does; returns their authenticator."""
    mfa.begin_enrolment(session, settings, user)
    totp = pyotp.TOTP(mfa.pending_secret(settings, user) or "")
    # The first code confirms the factor; it is used up, so later codes come from the next
    # time step (an app shows a new one every 30 s).
    mfa.confirm_enrolment(session, settings, user, totp.at(utcnow() - dt.timedelta(seconds=30)))
    return totp


def password_step(client: TestClient, username: str, password: str = PASSWORD) -> str:
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password,
                                    "csrf_token": csrf_from(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def code_step(client: TestClient, code: str) -> object:
    page = client.get("/login/code")
    assert page.status_code == 200
    return client.post("/login/code", data={"code": code, "csrf_token": csrf_from(page.text)},
                       follow_redirects=False)


def live_sessions(sessions: sessionmaker[Session], username: str) -> int:
    with sessions() as session:
        user = users.by_name(session, username)
        return int(session.scalar(select(func.count()).select_from(UserSession)
                                  .where(UserSession.user_id == user.id)) or 0)


def actions(sessions: sessionmaker[Session], action: str) -> list[str]:
    with sessions() as session:
        return [e.actor for e in session.scalars(select(AuditEntry)
                                                 .where(AuditEntry.action == action))]


# -- the service ------------------------------------------------------------------------------


@pytest.mark.usefixtures("team")
def test_enrolment_gives_an_otpauth_link_and_a_first_code_confirms_it(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        wang = users.by_name(session, "wang")
        uri = mfa.begin_enrolment(session, settings, wang)
        parts = urlsplit(uri)
        assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
        assert unquote(parts.path) == f"/{mfa.ISSUER}:wang"
        query = parse_qs(parts.query)
        assert query["issuer"] == [mfa.ISSUER]
        secret = query["secret"][0]
        assert secret == mfa.pending_secret(settings, wang) and len(secret) >= 32
        # Stored sealed, never as the key the app is given.
        assert wang.totp_secret and secret not in wang.totp_secret
        assert not mfa.enabled(wang)

        totp = pyotp.TOTP(secret)
        wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
        with pytest.raises(InvalidTotp, match="验证码不正确"):
            mfa.confirm_enrolment(session, settings, wang, wrong)
        assert not mfa.enabled(wang)
        mfa.confirm_enrolment(session, settings, wang, totp.now())
        assert mfa.enabled(wang) and mfa.pending_secret(settings, wang) is None
        with pytest.raises(InvalidTotp, match="已开启两步验证"):
            mfa.begin_enrolment(session, settings, wang)


@pytest.mark.usefixtures("team")
def test_a_code_is_accepted_once_and_only_within_a_step_of_now(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    now = utcnow()
    with sessions() as session:
        wang = users.by_name(session, "wang")
        mfa.begin_enrolment(session, settings, wang)
        totp = pyotp.TOTP(mfa.pending_secret(settings, wang) or "")
        mfa.confirm_enrolment(session, settings, wang, totp.at(now - dt.timedelta(seconds=60)),
                              now=now - dt.timedelta(seconds=60))
        code = totp.at(now)
        assert mfa.verify(session, settings, wang, code, now=now)
        # The same time step a second time: a replayed code (seen over a shoulder, or typed
        # into a phishing page) is refused, even moments later.
        assert not mfa.verify(session, settings, wang, code, now=now)
        assert not mfa.verify(session, settings, wang, code, now=now + dt.timedelta(seconds=5))
        # An earlier step than the last one used is refused too, however close.
        assert not mfa.verify(session, settings, wang, totp.at(now - dt.timedelta(seconds=30)),
                              now=now)
        # Too far from now (two steps) is refused; the next step is accepted.
        later = now + dt.timedelta(seconds=30)
        assert not mfa.verify(session, settings, wang, totp.at(later + dt.timedelta(minutes=2)),
                              now=later)
        assert mfa.verify(session, settings, wang, totp.at(later), now=later)
        for junk in ("", "12345", "1234567", "abcdef"):
            assert not mfa.verify(session, settings, wang, junk, now=later)


# -- signing in -------------------------------------------------------------------------------


@pytest.mark.usefixtures("team")
def test_sign_in_asks_for_the_code_before_any_session_exists(
        make_client: MakeClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        totp = enrol(session, settings, users.by_name(session, "wang"))
        session.commit()
    client = make_client()
    assert password_step(client, "wang") == "/login/code"
    assert live_sessions(sessions, "wang") == 0
    # The right password alone opens nothing.
    blocked = client.get("/customers", follow_redirects=False)
    assert blocked.status_code == 303 and blocked.headers["location"].startswith("/login")
    page = client.get("/login/code")
    assert "请输入验证器 App 中显示的 6 位验证码" in page.text
    assert 'data-testid="totp-secret"' not in page.text  # the key is not shown again

    code = totp.now()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    refused = code_step(client, wrong)
    assert refused.status_code == 401  # type: ignore[attr-defined]
    assert "验证码不正确或已使用" in refused.text  # type: ignore[attr-defined]
    assert live_sessions(sessions, "wang") == 0

    done = code_step(client, code)
    assert done.status_code == 303  # type: ignore[attr-defined]
    assert done.headers["location"] == "/customers"  # type: ignore[attr-defined]
    assert client.get("/customers").status_code == 200
    assert live_sessions(sessions, "wang") == 1

    # The same code again, in another sign-in: refused (the time step is used up).
    again = make_client()
    assert password_step(again, "wang") == "/login/code"
    assert code_step(again, code).status_code == 401  # type: ignore[attr-defined]
    assert live_sessions(sessions, "wang") == 1
    assert len(actions(sessions, "login.success")) == 1
    with sessions() as session:
        reasons = [e.detail for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "login.failure"))]
    assert reasons == [{"reason": "wrong_code"}, {"reason": "wrong_code"}]


@pytest.mark.usefixtures("team")
def test_the_code_step_cannot_be_reached_without_the_password(
        make_client: MakeClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        totp = enrol(session, settings, users.by_name(session, "wang"))
        session.commit()
    client = make_client()
    assert client.get("/login/code", follow_redirects=False).headers["location"] == "/login"
    page = client.get("/login")
    r = client.post("/login/code", data={"code": totp.now(),
                                         "csrf_token": csrf_from(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert live_sessions(sessions, "wang") == 0


@pytest.mark.usefixtures("team")
def test_require_mfa_admin_enrols_an_admin_before_the_console(
        make_client: MakeClient, sessions: sessionmaker[Session]) -> None:
    client = make_client(require_mfa="admin")
    assert password_step(client, "boss") == "/login/code"
    assert client.get("/customers", follow_redirects=False).status_code == 303
    page = client.get("/login/code")
    assert "您的账号需要开启两步验证" in page.text
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret
    assert live_sessions(sessions, "boss") == 0
    done = code_step(client, pyotp.TOTP(secret.group(1)).now())
    assert done.status_code == 303  # type: ignore[attr-defined]
    assert client.get("/users").status_code == 200
    with sessions() as session:
        assert mfa.enabled(users.by_name(session, "boss"))
    assert actions(sessions, "user.mfa.enrol") == ["user:boss"]
    # The rule is for administrators: an operator signs in with the password alone.
    assert password_step(make_client(require_mfa="admin"), "wang") == "/customers"


@pytest.mark.usefixtures("team")
def test_require_mfa_admin_sends_an_admins_open_session_to_enrol_first(
        make_client: MakeClient, sessions: sessionmaker[Session]) -> None:
    before = make_client()
    password_step(before, "boss")  # signed in while the rule was off
    client = make_client(require_mfa="admin")
    client.cookies.update(before.cookies)

    for path in ("/customers", "/users"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/account#mfa", path
    page = client.get("/account")
    assert page.status_code == 200 and "您的角色必须开启两步验证" in page.text
    start = client.post("/account/mfa/start", data={"csrf_token": csrf_from(page.text)},
                        follow_redirects=False)
    assert start.status_code == 303
    page = client.get("/account")
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page.text)
    uri = re.search(r'data-testid="totp-uri">([^<]+)<', page.text)
    assert secret and uri and f"secret={secret.group(1)}" in uri.group(1)
    totp = pyotp.TOTP(secret.group(1))
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    bad = client.post("/account/mfa/confirm",
                      data={"code": wrong, "csrf_token": csrf_from(page.text)})
    assert bad.status_code == 422 and "验证码不正确" in bad.text
    assert client.get("/customers", follow_redirects=False).status_code == 303
    ok = client.post("/account/mfa/confirm",
                     data={"code": totp.now(), "csrf_token": csrf_from(page.text)},
                     follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/account"
    assert "两步验证已开启" in client.get("/account").text
    assert client.get("/customers").status_code == 200
    assert actions(sessions, "user.mfa.enrol") == ["user:boss"]
    # An operator is not held up.
    other = make_client(require_mfa="admin")
    password_step(other, "wang")
    assert other.get("/customers").status_code == 200


@pytest.mark.usefixtures("team")
def test_any_user_may_enrol_from_the_account_page_and_turn_it_off_with_a_code(
        make_client: MakeClient, sessions: sessionmaker[Session]) -> None:
    client = make_client()
    password_step(client, "wang")
    page = client.get("/customers")
    assert 'href="/account"' in page.text and "账户安全" in page.text
    page = client.get("/account")
    assert "未开启（可选）" in page.text
    client.post("/account/mfa/start", data={"csrf_token": csrf_from(page.text)})
    page = client.get("/account")
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret
    totp = pyotp.TOTP(secret.group(1))
    first = totp.at(utcnow() - dt.timedelta(seconds=30))
    r = client.post("/account/mfa/confirm", data={"code": first,
                                                  "csrf_token": csrf_from(page.text)})
    assert r.status_code == 200 and "两步验证已开启" in r.text

    # From now on signing in takes the code.
    fresh = make_client()
    assert password_step(fresh, "wang") == "/login/code"
    assert code_step(fresh, totp.now()).status_code == 303  # type: ignore[attr-defined]

    page = client.get("/account")
    used = client.post("/account/mfa/remove", data={"code": totp.now(),
                                                    "csrf_token": csrf_from(page.text)})
    assert used.status_code == 422 and "不正确或已使用" in used.text
    later = totp.at(utcnow() + dt.timedelta(seconds=30))
    off = client.post("/account/mfa/remove", data={"code": later,
                                                   "csrf_token": csrf_from(page.text)})
    assert off.status_code == 200 and "两步验证已关闭" in off.text
    assert password_step(make_client(), "wang") == "/customers"
    assert actions(sessions, "user.mfa.remove") == ["user:wang"]


@pytest.mark.usefixtures("team")
def test_a_required_factor_cannot_be_turned_off_by_its_user(
        make_client: MakeClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        totp = enrol(session, settings, users.by_name(session, "boss"))
        session.commit()
    client = make_client(require_mfa="admin")
    password_step(client, "boss")
    code_step(client, totp.now())
    page = client.get("/account")
    assert "关闭两步验证" not in page.text and "请联系管理员" in page.text
    r = client.post("/account/mfa/remove",
                    data={"code": totp.at(utcnow() + dt.timedelta(seconds=30)),
                          "csrf_token": csrf_from(page.text)})
    assert r.status_code == 422 and "不能关闭" in r.text
    with sessions() as session:
        assert mfa.enabled(users.by_name(session, "boss"))


# -- the CLI ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("team")
def test_user_mfa_reset_removes_the_factor_and_ends_sessions(
        monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: sessionmaker[Session],
        settings: Settings, make_client: MakeClient) -> None:
    with sessions() as session:
        wang = users.by_name(session, "wang")
        enrol(session, settings, wang)
        auth_sessions.start(session, settings, wang)
        session.commit()
    result = run_cli(monkeypatch, database_url, "user", "mfa-reset", "wang")
    assert result.exit_code == 0, result.output
    assert "second factor of 'wang' removed" in result.output
    with sessions() as session:
        wang = users.by_name(session, "wang")
        assert wang.totp_secret is None and wang.totp_last_step is None
    assert live_sessions(sessions, "wang") == 0
    assert actions(sessions, "user.mfa.reset")[0].startswith("cli:")
    # The password alone signs in again; a second reset says there was nothing.
    assert password_step(make_client(), "wang") == "/customers"
    again = run_cli(monkeypatch, database_url, "user", "mfa-reset", "wang")
    assert again.exit_code == 0 and "was not set" in again.output
    unknown = run_cli(monkeypatch, database_url, "user", "mfa-reset", "nobody")
    assert unknown.exit_code != 0 and "没有用户" in unknown.output


def test_rotating_the_session_key_keeps_stored_factors_working(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An install of its own (rotation changes the install's keys)."""
    from siyu.cli import app as cli
    from siyu.config import get_settings

    url = f"sqlite:///{tmp_path / 'rotate.db'}"
    monkeypatch.setenv("SIYU_DATABASE_URL", url)
    get_settings.cache_clear()
    auth_secrets.forget_cached()
    runner = CliRunner()
    engine = make_engine(url)
    try:
        made = runner.invoke(cli, ["user", "create", "boss", "--password", PASSWORD])
        assert made.exit_code == 0, made.output
        settings = Settings(database_url=url, environment="test")
        with sessionmaker(bind=engine)() as session:
            totp = enrol(session, settings, users.by_name(session, "boss"))
            sealed = users.by_name(session, "boss").totp_secret
            session.commit()
        with TestClient(create_app(settings, engine=engine)) as client:
            password_step(client, "boss")
            code_step(client, totp.now())
            old_cookie = client.cookies["siyu_session"]
            assert client.get("/customers").status_code == 200

            rotated = runner.invoke(cli, ["secret", "rotate"])
            assert rotated.exit_code == 0 and "generation 1" in rotated.output, rotated.output
            auth_secrets.forget_cached()  # as the server does within REFRESH_SECONDS
            # Everyone is signed out ...
            client.cookies.clear()
            client.cookies.set("siyu_session", old_cookie)
            assert client.get("/customers", follow_redirects=False).status_code == 303
            # ... and the stored factor is still readable and still accepts the app's codes.
            with sessionmaker(bind=engine)() as session:
                boss = users.by_name(session, "boss")
                assert boss.totp_secret == sealed and mfa.enabled(boss)
                assert mfa.pending_secret(settings, boss) is None
                assert mfa.provisioning_uri(settings, boss).startswith("otpauth://")
            client.cookies.clear()
            assert password_step(client, "boss") == "/login/code"
            later = totp.at(utcnow() + dt.timedelta(seconds=30))
            assert code_step(client, later).status_code == 303  # type: ignore[attr-defined]
            assert client.get("/customers").status_code == 200
    finally:
        engine.dispose()
        get_settings.cache_clear()
        auth_secrets.forget_cached()
