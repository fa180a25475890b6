"""The console's 用户管理 page: administrators list users and create, change the role of,
disable, enable, sign out, unlock and reset the second factor of them, through the service
functions the CLI uses (audited, CSRF-protected, the last active admin kept); everyone else
gets 403."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.auth import mfa, users
from siyu.auth import sessions as auth_sessions
from siyu.auth.errors import LastAdmin
from siyu.auth.models import User, UserSession
from siyu.auth.service import create_user
from siyu.config import Settings
from siyu.privacy.models import AuditEntry
from tests.console.conftest import PASSWORD, csrf_from


@pytest.fixture
def team(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        create_user(session, "boss", PASSWORD, "admin", display_name="老板")
        create_user(session, "wang", PASSWORD, "operator", display_name="王运营")
        create_user(session, "liu", PASSWORD, "agent", display_name="李客服")
        create_user(session, "zhao", PASSWORD, "analyst", display_name="赵分析")
        session.commit()


@pytest.fixture
def new_client(settings: Settings, engine: Engine, sessions: sessionmaker[Session]
               ) -> Iterator[Callable[[], TestClient]]:
    """Clients of one app, one per person (each its own cookies)."""
    app = create_app(settings, engine=engine)
    opened: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> None:
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password,
                                    "csrf_token": csrf_from(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] != "/login/code", r.text


def user_id(sessions: sessionmaker[Session], username: str) -> int:
    with sessions() as session:
        return users.by_name(session, username).id


def post(client: TestClient, path: str, **data: str) -> httpx.Response:
    token = csrf_from(client.get("/users").text)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def audit_actions(sessions: sessionmaker[Session]) -> list[tuple[str, str, str | None]]:
    with sessions() as session:
        return [(e.actor, e.action, e.target) for e in
                session.scalars(select(AuditEntry).where(AuditEntry.action.like("user.%"))
                                .order_by(AuditEntry.id))]


@pytest.mark.usefixtures("team")
@pytest.mark.parametrize("username", ["wang", "liu", "zhao"])
def test_non_admins_get_403_and_no_nav_entry(new_client: Callable[[], TestClient],
                                             sessions: sessionmaker[Session],
                                             username: str) -> None:
    client = new_client()
    sign_in(client, username)
    assert client.get("/users").status_code == 403
    boss = user_id(sessions, "boss")
    token = csrf_from(client.get("/customers").text)
    r = client.post(f"/users/{boss}/disable", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/users", data={"username": "mole", "password": PASSWORD,
                                    "role": "admin", "csrf_token": token})
    assert r.status_code == 403
    with sessions() as session:
        assert users.by_name(session, "boss").is_active
        assert session.scalar(select(User).where(User.username == "mole")) is None
    nav = client.get("/customers").text
    assert 'href="/users"' not in nav and 'href="/account"' in nav


@pytest.mark.usefixtures("team")
def test_the_page_lists_users_with_role_status_factor_last_sign_in_and_sessions(
        new_client: Callable[[], TestClient], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    sign_in(new_client(), "wang")
    sign_in(new_client(), "wang")
    with sessions() as session:
        liu = users.by_name(session, "liu")
        mfa.begin_enrolment(session, settings, liu)
        mfa.confirm_enrolment(session, settings, liu,
                              pyotp.TOTP(mfa.pending_secret(settings, liu) or "").now())
        users.disable(session, "cli:test", "zhao")
        session.commit()
    admin = new_client()
    sign_in(admin, "boss")
    page = admin.get("/users")
    assert page.status_code == 200 and 'href="/users"' in page.text
    rows = {m.group(1): m.group(2) for m in
            re.finditer(r'<tr data-testid="user-(\w+)">(.*?)</tr>', page.text, re.S)}
    assert set(rows) == {"boss", "wang", "liu", "zhao"}
    cells = {name: re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[:6]
             for name, row in rows.items()}
    assert "王运营" in cells["wang"][0] and "运营" in cells["wang"][1]
    assert "启用中" in cells["wang"][2] and "已停用" in cells["zhao"][2]
    assert cells["liu"][3] == "已开启" and cells["wang"][3] == "未开启"
    assert cells["wang"][5] == "2" and cells["boss"][5] == "1" and cells["liu"][5] == "0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", cells["wang"][4])
    assert cells["liu"][4] == "—"
    assert "重置 liu 的两步验证" in rows["liu"] and "重置 wang" not in rows["wang"]


@pytest.mark.usefixtures("team")
def test_an_admin_creates_a_user_who_can_sign_in(new_client: Callable[[], TestClient],
                                                 sessions: sessionmaker[Session]) -> None:
    admin = new_client()
    sign_in(admin, "boss")
    r = post(admin, "/users", username="chen", display_name="陈新人", role="agent",
             password="a-long-password")
    assert r.status_code == 303
    assert "已创建用户 chen" in admin.get("/users").text
    with sessions() as session:
        chen = users.by_name(session, "chen")
        assert (chen.role, chen.display_name, chen.is_active) == ("agent", "陈新人", True)
    sign_in(new_client(), "chen", "a-long-password")
    assert ("user:boss", "user.create", "user:chen") in audit_actions(sessions)


@pytest.mark.usefixtures("team")
@pytest.mark.parametrize(("form", "status", "message"), [
    ({"username": "x", "role": "agent", "password": PASSWORD}, 422, "用户名：需为 3-60 位"),
    ({"username": "陈新人", "role": "agent", "password": PASSWORD}, 422, "用户名："),
    ({"username": "chen", "role": "agent", "password": "short"}, 422, "密码：至少需要 8 个字符"),
    ({"username": "chen", "role": "boss", "password": PASSWORD}, 422, "角色：必须是"),
    ({"username": "chen", "display_name": "长" * 61, "role": "agent", "password": PASSWORD},
     422, "显示名称：最多 60 个字符"),
    ({"username": "wang", "role": "agent", "password": PASSWORD}, 409, "用户名：wang 已被使用"),
])
def test_invalid_new_users_are_refused_naming_the_field(
        new_client: Callable[[], TestClient], sessions: sessionmaker[Session],
        form: dict[str, str], status: int, message: str) -> None:
    admin = new_client()
    sign_in(admin, "boss")
    r = post(admin, "/users", **form)
    assert r.status_code == status
    error = re.search(r'id="users-error">(.*?)</div>', r.text)
    assert error and error.group(1).startswith(message), error
    assert "must" not in error.group(1)  # the console shows the Chinese, not the gloss
    # What was typed stays in the form (but never the password).
    assert f'value="{form["username"]}"' in r.text
    assert form["password"] not in r.text
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 4


@pytest.mark.usefixtures("team")
def test_forms_without_the_csrf_token_are_refused(new_client: Callable[[], TestClient],
                                                  sessions: sessionmaker[Session]) -> None:
    admin = new_client()
    sign_in(admin, "boss")
    wang = user_id(sessions, "wang")
    r = admin.post(f"/users/{wang}/disable", data={"csrf_token": "forged"})
    assert r.status_code == 403
    r = admin.post("/users", data={"username": "chen", "role": "admin", "password": PASSWORD})
    assert r.status_code == 403
    with sessions() as session:
        assert users.by_name(session, "wang").is_active
        assert session.scalar(select(User).where(User.username == "chen")) is None


@pytest.mark.usefixtures("team")
def test_disabling_refuses_the_users_open_session_at_once_and_enabling_lets_them_back(
        new_client: Callable[[], TestClient], sessions: sessionmaker[Session]) -> None:
    wang_client = new_client()
    sign_in(wang_client, "wang")
    assert wang_client.get("/customers").status_code == 200
    admin = new_client()
    sign_in(admin, "boss")
    wang = user_id(sessions, "wang")

    r = post(admin, f"/users/{wang}/disable")
    assert r.status_code == 303
    assert "已停用 wang" in admin.get("/users").text
    refused = wang_client.get("/customers", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    page = wang_client.get("/login")
    r = wang_client.post("/login", data={"username": "wang", "password": PASSWORD,
                                         "csrf_token": csrf_from(page.text)})
    assert r.status_code == 401

    assert post(admin, f"/users/{wang}/enable").status_code == 303
    sign_in(wang_client, "wang")
    assert [a[1] for a in audit_actions(sessions)] == ["user.disable", "user.enable"]
    assert all(a[0] == "user:boss" and a[2] == "user:wang" for a in audit_actions(sessions))


@pytest.mark.usefixtures("team")
def test_a_role_change_ends_the_users_sessions(new_client: Callable[[], TestClient],
                                               sessions: sessionmaker[Session]) -> None:
    wang_client = new_client()
    sign_in(wang_client, "wang")
    admin = new_client()
    sign_in(admin, "boss")
    wang = user_id(sessions, "wang")
    r = post(admin, f"/users/{wang}/role", role="analyst")
    assert r.status_code == 303
    assert "wang 的角色已改为分析师" in admin.get("/users").text
    assert wang_client.get("/customers", follow_redirects=False).status_code == 303
    with sessions() as session:
        assert users.by_name(session, "wang").role == "analyst"
    bad = post(admin, f"/users/{wang}/role", role="root")
    assert bad.status_code == 422 and "角色：必须是" in bad.text


@pytest.mark.usefixtures("team")
def test_the_last_active_admin_can_be_neither_disabled_nor_demoted(
        new_client: Callable[[], TestClient], sessions: sessionmaker[Session]) -> None:
    admin = new_client()
    sign_in(admin, "boss")
    boss = user_id(sessions, "boss")
    for path, data in ((f"/users/{boss}/disable", {}), (f"/users/{boss}/role",
                                                        {"role": "operator"})):
        r = post(admin, path, **data)
        assert r.status_code == 409
        assert "至少需要保留一位启用中的管理员" in r.text
    assert admin.get("/users").status_code == 200  # still signed in, still admin
    with sessions() as session:
        me = users.by_name(session, "boss")
        assert (me.role, me.is_active) == ("admin", True)
    # A second active admin makes it possible; a disabled admin does not count.
    wang = user_id(sessions, "wang")
    assert post(admin, f"/users/{wang}/role", role="admin").status_code == 303
    assert post(admin, f"/users/{wang}/disable").status_code == 303
    assert post(admin, f"/users/{boss}/role", role="operator").status_code == 409


def test_the_last_admin_rule_is_the_services(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        create_user(session, "boss", PASSWORD, "admin")
        create_user(session, "former", PASSWORD, "admin")
        users.disable(session, "cli:test", "former")
        with pytest.raises(LastAdmin):
            users.disable(session, "cli:test", "boss")
        with pytest.raises(LastAdmin):
            users.set_role(session, "cli:test", "boss", "agent")


@pytest.mark.usefixtures("team")
def test_revoking_sessions_signs_the_user_out_everywhere(
        new_client: Callable[[], TestClient], sessions: sessionmaker[Session]) -> None:
    first, second = new_client(), new_client()
    sign_in(first, "liu")
    sign_in(second, "liu")
    admin = new_client()
    sign_in(admin, "boss")
    liu = user_id(sessions, "liu")
    r = post(admin, f"/users/{liu}/revoke")
    assert r.status_code == 303
    assert "已结束 liu 的 2 个登录会话" in admin.get("/users").text
    for client in (first, second):
        assert client.get("/customers", follow_redirects=False).status_code == 303
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(UserSession)
                              .where(UserSession.user_id == liu)) == 0
    assert ("user:boss", "user.sessions.revoke", "user:liu") in audit_actions(sessions)


@pytest.mark.usefixtures("team")
def test_unlock_lets_a_locked_out_user_sign_in(new_client: Callable[[], TestClient],
                                               sessions: sessionmaker[Session],
                                               settings: Settings) -> None:
    locked = new_client()
    for _ in range(settings.login_lock_after + 1):
        page = locked.get("/login")
        locked.post("/login", data={"username": "liu", "password": "wrong-password",
                                    "csrf_token": csrf_from(page.text)})
    page = locked.get("/login")
    r = locked.post("/login", data={"username": "liu", "password": PASSWORD,
                                    "csrf_token": csrf_from(page.text)})
    assert r.status_code == 429
    admin = new_client()
    sign_in(admin, "boss")
    r = post(admin, f"/users/{user_id(sessions, 'liu')}/unlock")
    assert r.status_code == 303
    assert "已解除 liu 的登录锁定" in admin.get("/users").text
    # The address stays counted (the test client's address failed too): a fresh name works
    # from it, and liu signs in again.
    sign_in(locked, "liu")
    assert ("user:boss", "user.unlock", "user:liu") in audit_actions(sessions)


@pytest.mark.usefixtures("team")
def test_resetting_the_second_factor_removes_it_and_ends_sessions(
        new_client: Callable[[], TestClient], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    with sessions() as session:
        liu = users.by_name(session, "liu")
        mfa.begin_enrolment(session, settings, liu)
        mfa.confirm_enrolment(session, settings, liu,
                              pyotp.TOTP(mfa.pending_secret(settings, liu) or "").now())
        auth_sessions.start(session, settings, liu)
        session.commit()
    admin = new_client()
    sign_in(admin, "boss")
    r = post(admin, f"/users/{user_id(sessions, 'liu')}/mfa-reset")
    assert r.status_code == 303
    assert "已重置 liu 的两步验证" in admin.get("/users").text
    with sessions() as session:
        liu = users.by_name(session, "liu")
        assert liu.totp_secret is None and not mfa.enabled(liu)
        assert session.scalar(select(func.count()).select_from(UserSession)
                              .where(UserSession.user_id == liu.id)) == 0
    # Without a factor, liu signs in with the password alone again.
    sign_in(new_client(), "liu")
    assert ("user:boss", "user.mfa.reset", "user:liu") in audit_actions(sessions)


@pytest.mark.usefixtures("team")
def test_an_unknown_user_id_is_404(new_client: Callable[[], TestClient]) -> None:
    admin = new_client()
    sign_in(admin, "boss")
    r = post(admin, "/users/424242/disable")
    assert r.status_code == 404
    assert "没有编号为 424242 的用户" in r.text
