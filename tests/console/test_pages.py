"""Console pages through the TestClient: login, redirects, CSRF, masking, tags, merges."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.models import User
from siyu.config import Settings
from siyu.console.nav import register_nav, unregister_nav
from siyu.customers import service as customers
from siyu.customers.models import Customer, MergeConflict
from siyu.customers.service import upsert_customers
from tests.console.conftest import PASSWORD, Login, Sample, csrf_from

pytestmark = pytest.mark.usefixtures("staff")


# -- login, logout, redirects ----------------------------------------------------------------


def test_login_succeeds_and_shows_name_and_role(app_client: TestClient,
                                                sessions: sessionmaker[Session]) -> None:
    page = app_client.get("/login")
    assert page.status_code == 200
    assert "登录" in page.text

    response = app_client.post(
        "/login",
        data={"username": "agent", "password": PASSWORD, "csrf_token": csrf_from(page.text),
              "next": "/customers?q=abc"},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/customers?q=abc"
    home = app_client.get("/customers")
    assert home.status_code == 200
    assert "agent 同学" in home.text
    assert "客服" in home.text
    assert "退出" in home.text
    with sessions() as session:
        user = session.scalars(select(User).where(User.username == "agent")).one()
        assert user.last_login_at is not None


@pytest.mark.parametrize("username,password", [("agent", "wrong-password"),
                                               ("nobody", PASSWORD)])
def test_login_fails_with_chinese_message(app_client: TestClient, username: str,
                                          password: str) -> None:
    page = app_client.get("/login")

    response = app_client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )

    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert app_client.get("/customers", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("path", ["/customers", "/customers/1", "/merges/conflicts"])
def test_logged_out_pages_redirect_to_login_with_next(app_client: TestClient, path: str) -> None:
    response = app_client.get(path, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


def test_login_returns_to_the_page_asked_for_with_its_query(app_client: TestClient) -> None:
    asked = app_client.get("/customers?q=张&page=2", follow_redirects=False)
    assert asked.headers["location"] == "/login?next=/customers%3Fq%3D%25E5%25BC%25A0%26page%3D2"
    page = app_client.get(asked.headers["location"])

    response = app_client.post(
        "/login",
        data={"username": "agent", "password": PASSWORD, "csrf_token": csrf_from(page.text),
              "next": "/customers?q=%E5%BC%A0&page=2"},
        follow_redirects=False,
    )

    assert 'name="next" value="/customers?q=%E5%BC%A0&amp;page=2"' in page.text
    assert response.headers["location"] == "/customers?q=%E5%BC%A0&page=2"


def test_root_redirects_to_customers(login: Login) -> None:
    client = login("agent")

    response = client.get("/", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/customers"


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "http:/evil.example",
    "javascript:alert(1)", "/\r\nSet-Cookie: x=1", "\t//evil.example", "evil.example",
    "/login", "",
])
def test_login_refuses_open_redirect(app_client: TestClient, target: str) -> None:
    page = app_client.get("/login", params={"next": target})
    assert 'name="next" value="/customers"' in page.text

    response = app_client.post(
        "/login",
        data={"username": "agent", "password": PASSWORD, "csrf_token": csrf_from(page.text),
              "next": target},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/customers"


def test_login_follows_a_relative_next(app_client: TestClient) -> None:
    page = app_client.get("/login")

    response = app_client.post(
        "/login",
        data={"username": "agent", "password": PASSWORD, "csrf_token": csrf_from(page.text),
              "next": "/customers/42"},
        follow_redirects=False,
    )

    assert response.headers["location"] == "/customers/42"


def test_logout_ends_the_session(login: Login) -> None:
    client = login("agent")
    page = client.get("/customers")

    response = client.post("/logout", data={"csrf_token": csrf_from(page.text)},
                           follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/customers", follow_redirects=False).status_code == 303


# -- CSRF ------------------------------------------------------------------------------------


def test_login_without_csrf_token_is_refused(app_client: TestClient) -> None:
    app_client.get("/login")

    response = app_client.post("/login", data={"username": "agent", "password": PASSWORD},
                               follow_redirects=False)

    assert response.status_code == 403
    assert "刷新页面" in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert app_client.get("/customers", follow_redirects=False).status_code == 303


def test_tag_post_with_wrong_csrf_token_changes_nothing(
    login: Login, sample: Sample, sessions: sessionmaker[Session]
) -> None:
    client = login("operator")

    response = client.post(f"/customers/{sample.customer_id}/tags",
                           data={"tag": "被伪造", "csrf_token": "forged"})

    assert response.status_code == 403
    with sessions() as session:
        names = [t["name"] for t in customers.customer_tags(session, sample.customer_id)]
    assert names == ["高价值"]


def test_logout_without_csrf_token_is_refused(login: Login) -> None:
    client = login("agent")

    response = client.post("/logout", data={}, follow_redirects=False)

    assert response.status_code == 403
    assert client.get("/customers").status_code == 200


# -- customer list and 360: masking by role --------------------------------------------------


def test_agent_sees_masked_phone_in_list_and_360(login: Login, sample: Sample) -> None:
    client = login("agent")

    listing = client.get("/customers")
    detail = client.get(f"/customers/{sample.customer_id}")

    for page in (listing, detail):
        assert page.status_code == 200
        assert "138****8000" in page.text
        assert "13800138000" not in page.text
    assert "张伟" in listing.text
    assert "共 1 位客户" in listing.text


def test_admin_sees_full_phone(login: Login, sample: Sample) -> None:
    client = login("admin")

    listing = client.get("/customers")
    detail = client.get(f"/customers/{sample.customer_id}")

    for page in (listing, detail):
        assert "13800138000" in page.text
        assert "138****8000" not in page.text


@pytest.mark.parametrize("q", ["138 0013 8000", "+86 138-0013-8000", "张", "C001"])
def test_search_finds_customer(login: Login, sample: Sample, q: str) -> None:
    client = login("agent")

    page = client.get("/customers", params={"q": q})

    assert f'href="/customers/{sample.customer_id}"' in page.text
    assert "共 1 位客户" in page.text


def test_filters_and_pagination(login: Login, sessions: sessionmaker[Session],
                                settings: Settings) -> None:
    with sessions() as session:
        upsert_customers(session, [
            {"id": f"P{i:03d}", "name": f"客户{i:03d}", "city": "杭州" if i % 2 else "北京",
             "tier": "银卡", "tags": ["活跃"] if i < 5 else []}
            for i in range(45)
        ], settings=settings)
        session.commit()
    client = login("agent")

    first = client.get("/customers")
    third = client.get("/customers", params={"page": 3})
    hangzhou = client.get("/customers", params={"city": "杭州", "tier": "银卡"})
    tagged = client.get("/customers", params={"tag": "活跃"})

    assert "共 45 位客户，第 1–20 位" in first.text
    assert first.text.count('class="customer-name"') == 20
    assert "第 1 / 3 页" in first.text
    assert "/customers?page=2" in first.text
    assert third.text.count('class="customer-name"') == 5
    assert "共 22 位客户" in hangzhou.text
    assert "city=%E6%9D%AD%E5%B7%9E" in hangzhou.text
    assert "共 5 位客户" in tagged.text


def test_a_page_past_the_end_is_shown_empty_not_as_rows_that_do_not_exist(
        login: Login, sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        upsert_customers(session, [{"id": f"P{i:03d}", "name": f"客户{i:03d}"}
                                   for i in range(45)], settings=settings)
        session.commit()
    client = login("agent")

    page = client.get("/customers", params={"page": 99999})

    assert page.status_code == 200
    assert "共 45 位客户" in page.text and "第 1999981" not in page.text
    assert "第 99999 / 3 页" not in page.text
    assert "第 99999 页超出范围：共 3 页" in page.text
    assert page.text.count('class="customer-name"') == 0
    assert "/customers?page=3" in page.text  # a way back to the last page


def test_bad_page_number_renders_error_page(login: Login) -> None:
    client = login("agent")

    response = client.get("/customers", params={"page": "abc"})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "输入有误" in response.text


def test_360_shows_profile_consents_counts_and_timeline(login: Login, sample: Sample) -> None:
    client = login("agent")

    page = client.get(f"/customers/{sample.customer_id}").text

    assert "张伟" in page and "上海" in page and "金卡" in page
    assert "高价值" in page
    assert "短信 · 营销" in page and "已同意" in page
    assert "¥299.50" in page
    assert "订单 O-1001" in page
    assert "2026-11-22 14:02" in page
    assert "添加企业微信" in page and "已支付" in page
    # newest first: the order (22nd) comes before the event (20th)
    assert page.index("订单 O-1001") < page.index("添加企业微信")
    # an agent may not edit tags
    assert "添加标签" not in page


def test_unknown_customer_renders_404_page(login: Login) -> None:
    client = login("agent")

    for path in ("/customers/999999", "/customers/abc"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "找不到页面" in response.text
        assert "返回客户列表" in response.text


def test_api_errors_stay_json(client: TestClient) -> None:
    response = client.get("/api/v1/customers/999999")

    assert response.status_code == 404
    assert response.json()["error"] == "customer_not_found"


# -- tags ------------------------------------------------------------------------------------


def test_operator_adds_and_removes_tag(login: Login, sample: Sample,
                                       sessions: sessionmaker[Session]) -> None:
    client = login("operator")
    detail = client.get(f"/customers/{sample.customer_id}")
    token = csrf_from(detail.text)

    added = client.post(f"/customers/{sample.customer_id}/tags",
                        data={"tag": "复购", "csrf_token": token})

    assert added.status_code == 200
    assert "已添加标签「复购」" in added.text
    with sessions() as session:
        names = [t["name"] for t in customers.customer_tags(session, sample.customer_id)]
    assert names == ["复购", "高价值"]

    removed = client.post(f"/customers/{sample.customer_id}/tags/remove",
                          data={"tag": "高价值", "csrf_token": token})

    assert "已移除标签「高价值」" in removed.text
    with sessions() as session:
        names = [t["name"] for t in customers.customer_tags(session, sample.customer_id)]
    assert names == ["复购"]


@pytest.mark.parametrize("role", ["agent", "analyst"])
def test_read_only_roles_cannot_add_tags(login: Login, sample: Sample, role: str,
                                         sessions: sessionmaker[Session]) -> None:
    client = login(role)
    token = csrf_from(client.get(f"/customers/{sample.customer_id}").text)

    response = client.post(f"/customers/{sample.customer_id}/tags",
                           data={"tag": "越权", "csrf_token": token})

    assert response.status_code == 403
    assert "没有权限" in response.text
    with sessions() as session:
        names = [t["name"] for t in customers.customer_tags(session, sample.customer_id)]
    assert names == ["高价值"]


# -- merge conflicts and undo ----------------------------------------------------------------


def _conflict(sessions: sessionmaker[Session], settings: Settings) -> tuple[int, int, int]:
    """Two brand ids sharing one verified phone: queued for review, not merged."""
    with sessions() as session:
        upsert_customers(session, [{"id": "K1", "name": "李娜", "identities": [
            {"kind": "phone", "value": "13900139000", "verified": True}]}], settings=settings)
        result = upsert_customers(session, [{"id": "K2", "name": "李娜娜", "identities": [
            {"kind": "phone", "value": "13900139000", "verified": True}]}], settings=settings)
        session.commit()
        conflict = session.get(MergeConflict, result.conflicts[0])
        assert conflict is not None
        return conflict.id, conflict.customer_a_id, conflict.customer_b_id


def test_conflict_queue_shows_both_sides_masked_for_operator(
    login: Login, sessions: sessionmaker[Session], settings: Settings
) -> None:
    conflict_id, a, b = _conflict(sessions, settings)
    client = login("operator")

    page = client.get("/merges/conflicts")

    assert page.status_code == 200
    assert f'href="/customers/{a}"' in page.text and f'href="/customers/{b}"' in page.text
    assert "李娜" in page.text and "李娜娜" in page.text
    assert "139****9000" in page.text and "13900139000" not in page.text
    assert "K1" in page.text and "K2" in page.text
    assert f'action="/merges/conflicts/{conflict_id}"' in page.text


def test_merge_via_form_then_admin_undoes_it(
    login: Login, sessions: sessionmaker[Session], settings: Settings
) -> None:
    conflict_id, a, b = _conflict(sessions, settings)
    client = login("admin")
    token = csrf_from(client.get("/merges/conflicts").text)

    merged = client.post(f"/merges/conflicts/{conflict_id}",
                         data={"decision": "merge", "csrf_token": token})

    assert merged.status_code == 200
    assert "已合并这两位客户" in merged.text
    assert "没有待审核的合并冲突" in merged.text
    with sessions() as session:
        assert session.get(Customer, b).status == "merged"  # type: ignore[union-attr]

    survivor = client.get(f"/customers/{b}")
    assert f"客户 #{b} 已合并到 #{a}" in survivor.text
    assert "撤销合并" in survivor.text
    with sessions() as session:
        merge_id = customers.get_customer_360(session, a)["merges"][0]["id"]

    undone = client.post(f"/merges/{merge_id}/undo", data={"csrf_token": token})

    assert undone.status_code == 200
    assert f"客户 #{b} 已恢复为独立客户" in undone.text
    with sessions() as session:
        assert session.get(Customer, b).status == "active"  # type: ignore[union-attr]


def test_keep_apart_via_form(login: Login, sessions: sessionmaker[Session],
                             settings: Settings) -> None:
    conflict_id, _, b = _conflict(sessions, settings)
    client = login("operator")
    token = csrf_from(client.get("/merges/conflicts").text)

    response = client.post(f"/merges/conflicts/{conflict_id}",
                           data={"decision": "keep_apart", "csrf_token": token})

    assert "已标记为两位不同的客户" in response.text
    with sessions() as session:
        conflict = session.get(MergeConflict, conflict_id)
        assert conflict is not None and conflict.status == "kept_apart"
        assert conflict.resolved_by == "operator"
        assert session.get(Customer, b).status == "active"  # type: ignore[union-attr]


def test_resolving_twice_is_a_409_page(login: Login, sessions: sessionmaker[Session],
                                       settings: Settings) -> None:
    conflict_id, _, _ = _conflict(sessions, settings)
    client = login("operator")
    token = csrf_from(client.get("/merges/conflicts").text)
    client.post(f"/merges/conflicts/{conflict_id}",
                data={"decision": "keep_apart", "csrf_token": token})

    again = client.post(f"/merges/conflicts/{conflict_id}",
                        data={"decision": "merge", "csrf_token": token})

    assert again.status_code == 409
    assert "操作冲突" in again.text


@pytest.mark.parametrize("role", ["agent", "analyst"])
def test_read_only_roles_cannot_resolve_conflicts(
    login: Login, sessions: sessionmaker[Session], settings: Settings, role: str
) -> None:
    conflict_id, _, b = _conflict(sessions, settings)
    client = login(role)
    token = csrf_from(client.get("/customers").text)

    queue = client.get("/merges/conflicts")
    response = client.post(f"/merges/conflicts/{conflict_id}",
                           data={"decision": "merge", "csrf_token": token})

    assert queue.status_code == 403
    assert response.status_code == 403
    assert "合并审核" not in client.get("/customers").text
    with sessions() as session:
        conflict = session.get(MergeConflict, conflict_id)
        assert conflict is not None and conflict.status == "open"
        assert session.get(Customer, b).status == "active"  # type: ignore[union-attr]


def test_operator_cannot_undo_a_merge(login: Login, sessions: sessionmaker[Session],
                                      settings: Settings) -> None:
    conflict_id, a, b = _conflict(sessions, settings)
    client = login("operator")
    token = csrf_from(client.get("/merges/conflicts").text)
    client.post(f"/merges/conflicts/{conflict_id}", data={"decision": "merge", "csrf_token": token})
    with sessions() as session:
        merge_id = customers.get_customer_360(session, a)["merges"][0]["id"]

    page = client.get(f"/customers/{a}")
    response = client.post(f"/merges/{merge_id}/undo", data={"csrf_token": token})

    assert "撤销合并" not in page.text
    assert response.status_code == 403
    with sessions() as session:
        assert session.get(Customer, b).status == "merged"  # type: ignore[union-attr]


@pytest.mark.parametrize("role,shows_review", [("admin", True), ("operator", True),
                                               ("agent", False), ("analyst", False)])
def test_navigation_depends_on_role(login: Login, role: str, shows_review: bool) -> None:
    client = login(role)

    page = client.get("/customers").text

    assert '<a href="/customers" class="active" aria-current="page">客户</a>' in page
    assert ('<a href="/merges/conflicts">合并审核</a>' in page) is shows_review


def test_registered_nav_entries_appear_for_permitted_roles(login: Login) -> None:
    register_nav("仪表盘", "/dashboard-test", "analytics.read", order=5)
    try:
        analyst = login("analyst").get("/customers").text
        assert analyst.index("仪表盘") < analyst.index(">客户<")
        assert "仪表盘" not in login("agent").get("/customers").text
    finally:
        unregister_nav("/dashboard-test")


def test_merge_reasons_do_not_leak_phone_numbers_to_agents(
    login: Login, sessions: sessionmaker[Session], settings: Settings
) -> None:
    with sessions() as session:
        upsert_customers(session, [
            {"name": "王芳", "identities": [{"kind": "phone", "value": "13700137000"}]},
            {"name": "王芳", "identities": [{"kind": "email", "value": "fang@example.com"}]},
            {"identities": [{"kind": "phone", "value": "13700137000"},
                            {"kind": "email", "value": "fang@example.com"}]},
        ], settings=settings)
        session.commit()
        survivor = customers.list_customers(session, q="王芳").items[0]["id"]
        reason = customers.get_customer_360(session, survivor)["merges"][0]["reason"]
    # the recorded reason names the identity kind, never its value
    assert "13700137000" not in reason and "fang@example.com" not in reason
    assert "phone" in reason or "email" in reason

    agent_page = login("agent").get(f"/customers/{survivor}").text

    assert "13700137000" not in agent_page
    assert "fang@example.com" not in agent_page
    assert "合并客户" in agent_page
