"""The segments console pages: list, builder, save; and the builder in a real browser."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.segments import service
from siyu.segments.console import sparkline
from siyu.segments.models import Segment
from tests.console.conftest import LiveServer, Login, csrf_from, sign_in_at
from tests.segments.conftest import NOW, Population

SCREENSHOTS = "/tmp/segments-{}.png"


def test_sparkline_scales_sizes_into_the_box() -> None:
    assert sparkline([]) == {"points": "", "last": None, "width": 160, "height": 36}
    flat = sparkline([5])
    assert flat["points"] == "2.0,18.0 158.0,18.0"
    line = sparkline([0, 10, 5], width=104, height=26)
    assert line["points"] == "2.0,23.0 52.0,3.0 102.0,13.0"
    assert line["last"] == {"x": "102.0", "y": "13.0"}


@pytest.mark.usefixtures("staff")
def test_analysts_read_segments_from_their_navigation_but_only_editors_build_them(
        login: Login, population: Population) -> None:
    client = login("analyst")
    page = client.get("/segments")
    assert page.status_code == 200
    assert '<a href="/segments" class="active" aria-current="page">人群</a>' in page.text
    assert 'href="/segments/new"' not in page.text and "只读" in page.text
    assert client.get("/segments/new").status_code == 403
    assert client.post("/segments/new", data={"name": "x", "rule": "age > 1"}
                       ).status_code in (400, 403)
    agent = login("agent")
    assert agent.get("/segments").status_code == 403
    assert ">人群</a>" not in agent.get("/customers").text


@pytest.mark.usefixtures("staff")
def test_list_shows_sizes_and_save_refuses_bad_rules(
        login: Login, population: Population, sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        seg = service.create_segment(session, "VIP", 'tier = "VIP"', created_by="x", now=NOW)
        service.refresh_segment(session, seg.id, now=NOW)
        session.commit()
    client: TestClient = login("operator")
    page = client.get("/segments")
    assert page.status_code == 200
    assert "VIP" in page.text and "会员等级为「VIP」" in page.text
    assert "<polyline" in page.text and "2 次更新" in page.text
    builder = client.get("/segments/new")
    assert builder.status_code == 200 and ">距最近一次下单</button>" in builder.text
    assert ">距属性日期</button>" in builder.text
    assert 'attr_days(&#34;member_since&#34;) &gt; 365' in builder.text
    token = csrf_from(builder.text)
    bad = client.post("/segments/new", data={"name": "坏", "rule": "tier = VIP",
                                              "csrf_token": token})
    assert bad.status_code == 422
    assert "第 8 个字符处" in bad.text and "tier = VIP" in bad.text
    no_token = client.post("/segments/new", data={"name": "好", "rule": "orders >= 1"})
    assert no_token.status_code == 403
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 1
    ok = client.post("/segments/new", data={"name": "好", "rule": "orders >= 1",
                                             "csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/segments"
    assert "已保存人群「好」，当前 4 人" in client.get("/segments").text


@pytest.mark.browser
@pytest.mark.usefixtures("staff")
def test_builder_live_count_error_position_and_save(
        page: Page, live_server: LiveServer, population: Population) -> None:
    sign_in_at(page, f"{live_server.url}/segments/new", "operator")

    editor = page.get_by_label("圈选规则")
    editor.fill('tier in ("VIP", "会员") and not tag("投诉中")')
    expect(page.locator("#live-count")).to_have_text("3")
    expect(page.locator("#description")).to_have_text(
        "会员等级属于「VIP」、「会员」 且 非标签「投诉中」")

    # A chip appends its snippet with "and"; the count follows.
    page.get_by_role("button", name="已绑定").click()
    expect(editor).to_have_value(
        'tier in ("VIP", "会员") and not tag("投诉中") and has(wecom_external_userid)')
    expect(page.locator("#live-count")).to_have_text("2")

    # A typo: the error names the position and marks that character.
    editor.fill('tier in ("VIP", "会员") and not tagg("投诉中")')
    expect(page.locator("#rule-error")).to_be_visible()
    expect(page.locator("#rule-error-message")).to_contain_text("第 31 个字符处")
    expect(page.locator("#rule-error-text mark")).to_have_text("t")
    expect(page.locator("#rule-error-text")).to_have_attribute("data-position", "30")
    expect(page.locator("#live-count")).to_have_text("—")
    page.screenshot(path=SCREENSHOTS.format("builder-error"), full_page=True)

    editor.fill('tier in ("VIP", "会员") and not tag("投诉中")')
    expect(page.locator("#live-count")).to_have_text("3")
    expect(page.locator("#rule-error")).to_be_hidden()
    page.screenshot(path=SCREENSHOTS.format("builder"), full_page=True)
    page.get_by_label("人群名称").fill("非投诉会员")
    page.get_by_role("button", name="保存人群").click()
    page.wait_for_url("**/segments")
    expect(page.locator(".flash")).to_have_text("已保存人群「非投诉会员」，当前 3 人")
    row = page.locator("#segment-table tbody tr", has_text="非投诉会员")
    expect(row.locator(".segment-size")).to_have_text("3")
    expect(row.locator("svg.spark polyline")).to_have_count(1)
    expect(page.locator(".nav a.active")).to_have_text("人群")
    page.screenshot(path=SCREENSHOTS.format("list"), full_page=True)
