"""The console in a real browser: Debian's Chromium driven by Playwright against a live
uvicorn server on the test database."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import PASSWORD, LiveServer, Sample

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("staff")]

SCREENSHOT = "/tmp/console-360.png"


def sign_in(page: Page, server: LiveServer, username: str,
            password: str = PASSWORD) -> None:
    page.goto(f"{server.url}/customers")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def test_agent_finds_customer_by_phone_and_sees_masked_360(
    page: Page, live_server: LiveServer, sample: Sample
) -> None:
    sign_in(page, live_server, "agent")
    page.wait_for_url("**/customers")
    expect(page.locator(".who")).to_contain_text("agent 同学")

    page.get_by_label("搜索客户").fill("138 0013 8000")
    page.get_by_role("button", name="搜索").click()
    page.wait_for_url("**/customers?q=*")
    rows = page.locator("#customer-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("138****8000")

    page.get_by_role("link", name="张伟").click()
    page.wait_for_url(f"**/customers/{sample.customer_id}")
    expect(page.locator(".identities")).to_contain_text("138****8000")
    expect(page.locator("body")).not_to_contain_text("13800138000")
    timeline = page.locator("#timeline li")
    expect(timeline).to_have_count(2)
    expect(timeline.first).to_contain_text("订单 O-1001")
    # Entries sit under their local day; each shows its time.
    expect(page.locator("#timeline .tl-day").first).to_contain_text("2026-11-22")
    expect(timeline.first).to_contain_text("14:02")
    expect(page.locator(".stats")).to_contain_text("¥299.50")

    page.screenshot(path=SCREENSHOT, full_page=True)


def test_admin_sees_full_phone_and_adds_a_tag(
    page: Page, live_server: LiveServer, sample: Sample
) -> None:
    sign_in(page, live_server, "admin")
    page.wait_for_url("**/customers")
    expect(page.locator("#customer-table")).to_contain_text("13800138000")

    page.goto(f"{live_server.url}/customers/{sample.customer_id}")
    expect(page.locator(".identities")).to_contain_text("13800138000")
    page.get_by_label("新标签").fill("周末活跃")
    page.get_by_role("button", name="添加标签").click()
    expect(page.locator(".flash-ok")).to_contain_text("已添加标签「周末活跃」")
    expect(page.locator(".tags")).to_contain_text("周末活跃")


def test_wrong_password_shows_error(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, "agent", "not-the-password")

    expect(page.get_by_role("alert")).to_have_text("用户名或密码错误")
    assert "/login" in page.url


def test_logout_returns_to_login(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, "analyst")
    page.wait_for_url("**/customers")

    page.get_by_role("button", name="退出").click()

    page.wait_for_url("**/login")
    page.goto(f"{live_server.url}/customers")
    page.wait_for_url(re.compile(r"/login\?next="))


def test_pages_run_under_the_content_security_policy(
    page: Page, live_server: LiveServer, sample: Sample
) -> None:
    # A script the policy blocks shows as a console error and a securitypolicyviolation
    # event; the pages with their own inline scripts (nonce'd) are among those visited.
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "console.error('CSP violation: ' + e.violatedDirective))")
    sign_in(page, live_server, "admin")
    page.wait_for_url("**/customers")
    for path in ("/customers", f"/customers/{sample.customer_id}", "/segments/new",
                 "/service", "/chat"):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None
        assert "nonce-" in (response.headers.get("content-security-policy") or "")
        page.wait_for_load_state("load")
    assert errors == [], errors
    # An injected inline script without the nonce is refused: the policy is in force.
    page.goto(f"{live_server.url}/customers")
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__injected = 1'; document.head.appendChild(s); }""")
    assert page.evaluate("window.__injected") is None
    expect(page.locator("body")).to_be_visible()
    assert any("script-src" in e for e in errors), errors
