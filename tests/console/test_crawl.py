"""The console crawl: a small ``siyu demo`` brand, every page each role's navigation reaches
and the first detail page of each kind linked from them, checked in Chromium for what a
newcomer would notice (see tests.console.crawl). The checker is first shown a deliberately
broken page and must report every kind of defect on it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.kit.cli import Env
from tests.console.conftest import LiveServer
from tests.console.crawl import Visit, defects, inspect_page

pytestmark = pytest.mark.browser

ROLES = {"admin": "admin", "operator": "operator", "agent": "advisor01",
         "analyst": "analyst"}
# Links that download or change something rather than show a page.
_NOT_PAGES = re.compile(r"export|\.csv$|/logout|/poll$|/api/")

BROKEN_PAGE = """<!doctype html><html lang="zh-CN"><body>
<p>来源 orders_demo_seed</p>
<p>最近消息 2026-11-22T14:02:00+00:00</p>
<p>执行 order status</p>
<p>第 3 个字符处:缺少右括号</p>
<p>确定删除这个人群?</p>
<code>tier = "gold" and lifecycle_stage = "growth"</code>
<div style="width:120px"><span style="white-space:nowrap">一段不会换行而且很长的说明</span>
</div>
<div style="position:relative;height:40px"><span>品牌客户号</span>
  <span style="position:absolute;left:0;top:0">HY000004</span></div>
<div style="width:3000px">很宽的表格</div>
<img src="/missing.png" alt="">
<script>throw new Error("boom")</script>
</body></html>"""


@pytest.fixture
def demo(sessions: sessionmaker[Session], engine: Engine, database_url: str,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``siyu demo``'s brand, small (100 customers, seed 42); yields the staff password."""
    from siyu.analytics.config import CONFIG_ENV
    from siyu.demo.cli import DEMO_SCORING_CONFIG, _seed

    # As `siyu demo` serves it (with its acquisition costs), without leaking to other tests.
    monkeypatch.setenv(CONFIG_ENV, str(DEMO_SCORING_CONFIG))

    settings = Settings(database_url=database_url, environment="test")
    result = _seed(Env(settings, engine, sessions), 100, 42, None)
    assert result.password
    yield result.password


def _visit(page: Any, url: str) -> tuple[Visit, dict[str, Any]]:
    visit = Visit(url=url, status=0)

    def on_response(response: Any) -> None:
        if response.status >= 400 and response.url != url:
            visit.failed_loads.append(f"{response.url} ({response.status})")

    def on_console(message: Any) -> None:
        if message.type == "error":
            visit.console_errors.append(message.text)

    def on_error(error: Any) -> None:
        visit.console_errors.append(str(error))

    page.on("response", on_response)
    page.on("console", on_console)
    page.on("pageerror", on_error)
    try:
        response = page.goto(url, wait_until="load")
        visit.status = response.status if response else 0
        page.wait_for_load_state("networkidle", timeout=5_000)
        seen = inspect_page(page)
    finally:
        page.remove_listener("response", on_response)
        page.remove_listener("console", on_console)
        page.remove_listener("pageerror", on_error)
    return visit, seen


def test_the_checker_reports_every_defect_of_a_broken_page(browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    page = context.new_page()

    def serve(route: Any) -> None:
        if route.request.url.endswith("/missing.png"):
            route.fulfill(status=404, body="")
        else:
            route.fulfill(status=500, content_type="text/html; charset=utf-8",
                          body=BROKEN_PAGE)

    page.route("http://broken.test/**", serve)
    try:
        visit, seen = _visit(page, "http://broken.test/page")
    finally:
        context.close()
    found = "\n".join(defects(visit, seen))
    for expected in ("HTTP 500", "failed to load http://broken.test/missing.png",
                     "console error: ", "internal identifier 'orders_demo_seed'",
                     "raw ISO timestamp", "English order, status", "half-width ':' after 处",
                     "half-width '?' after 群", "out of its box", "page is 30",
                     "text over text: '品牌客户号'"):
        assert expected in found, f"{expected!r} not reported:\n{found}"
    # Code is where code-like text belongs.
    assert "lifecycle_stage" not in found


def _sign_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r"/(customers|dashboard)"))


def _pages_to_visit(page: Any, base: str, nav_path: str) -> list[str]:
    """The first link of each kind under ``nav_path`` on the page shown (its detail pages)."""
    hrefs = page.locator("main a[href]").evaluate_all(
        "els => els.map(e => new URL(e.getAttribute('href'), location.href).href)")
    kinds: dict[str, str] = {}
    for href in hrefs:
        parts = urlsplit(href)
        if f"{parts.scheme}://{parts.netloc}" != base or _NOT_PAGES.search(parts.path):
            continue
        if not parts.path.startswith(nav_path.rstrip("/") + "/"):
            continue
        kind = re.sub(r"/[^/]*\d[^/]*", "/N", parts.path)
        kinds.setdefault(kind, parts.path)
    return list(kinds.values())


def test_every_console_page_as_every_role_has_no_visible_defect(
    browser: Any, live_server: LiveServer, demo: str
) -> None:
    base = live_server.url
    problems: list[str] = []
    visited = 0
    started = time.monotonic()
    for role, username in ROLES.items():
        context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            _sign_in(page, base, username, demo)
            nav = page.locator("nav.nav a").evaluate_all(
                "els => els.map(e => e.getAttribute('href'))")
            assert len(nav) >= 3, f"{role} sees only {nav}"
            done: set[str] = set()
            queue = [(path, path) for path in nav]
            while queue:
                path, nav_path = queue.pop(0)
                if path in done:
                    continue
                done.add(path)
                visit, seen = _visit(page, base + path)
                visited += 1
                problems += [f"{role} {path}: {d}" for d in defects(visit, seen)]
                if path == nav_path:
                    queue += [(p, nav_path) for p in _pages_to_visit(page, base, nav_path)]
        finally:
            context.close()
    assert not problems, (f"{len(problems)} defects on {visited} pages "
                          f"({time.monotonic() - started:.0f} s):\n" + "\n".join(problems))
