"""用户管理 in a real browser: an administrator disables a user, whose open session in
another browser is refused at once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console.conftest import LiveServer, sign_in_at

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("staff")]


def test_an_admin_disables_a_user_whose_open_session_ends_at_once(
        browser: Any, page: Any, live_server: LiveServer) -> None:
    # The operator works in a browser of their own.
    other = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    operator = other.new_page()
    operator.set_default_timeout(10_000)
    try:
        sign_in_at(operator, f"{live_server.url}/customers", "operator")
        expect(operator.locator(".who")).to_contain_text("operator 同学")

        sign_in_at(page, f"{live_server.url}/users", "admin")
        row = page.get_by_test_id("user-operator")
        expect(row).to_contain_text("启用中")
        expect(row.locator("td").nth(5)).to_have_text("1")
        row.get_by_role("button", name="停用 operator").click()
        expect(page.locator(".flash-ok")).to_contain_text("已停用 operator，其登录会话已全部结束")
        row = page.get_by_test_id("user-operator")
        expect(row).to_contain_text("已停用")
        expect(row.locator("td").nth(5)).to_have_text("0")

        # The operator's next click finds the session gone: back to the login page.
        operator.reload()
        operator.wait_for_url(re.compile(r"/login\?next="))
        operator.get_by_label("用户名").fill("operator")
        operator.get_by_label("密码").fill("correct-horse-9")
        operator.get_by_role("button", name="登录").click()
        expect(operator.get_by_role("alert")).to_have_text("用户名或密码错误")
    finally:
        other.close()
