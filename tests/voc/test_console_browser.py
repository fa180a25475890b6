"""The VOC console on the demo brand's story in a real browser (Debian chromium): the
dashboard puts the true drivers (物流, 口味) first; drilling from a category reaches its
subcategories and the verbatims with the naming clause highlighted by sentiment; the journey
map marks the darkest moment (配送); the survey builder previews the customer's page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.customers.models import Customer
from siyu.segments.models import Segment
from siyu.voc.demo import seed_demo_voc
from tests.console.conftest import LiveServer, live_server, sign_in_at  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_voc(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        s.add_all(Customer(name=f"演示客户{i}") for i in range(300))
        s.flush()
        # today, so that "last 30d" in the segment test sees the latest month
        seed_demo_voc(s, now=dt.datetime.now(dt.UTC), responses=900)
        s.commit()


def _background(locator: Any) -> str:
    return str(locator.evaluate("e => getComputedStyle(e).backgroundColor"))


@pytest.mark.usefixtures("staff", "demo_voc")
def test_dashboard_drill_down_and_darkest_moment(page: Any,
                                                live_server: LiveServer) -> None:  # noqa: F811
    sign_in_at(page, f"{live_server.url}/voc", "analyst")
    rows = page.locator("#drivers tr[data-factor]")
    assert {rows.nth(0).get_attribute("data-factor"),
            rows.nth(1).get_attribute("data-factor")} == {"物流", "口味"}
    assert page.locator("#drivers svg").first.is_visible()  # the driver chart is drawn
    assert page.locator("#quadrant svg").first.is_visible()

    darkest = page.locator("#darkest")
    assert darkest.is_visible() and darkest.inner_text() == "至暗时刻"
    row = page.locator("tr[data-step]", has=darkest)
    assert row.get_attribute("data-step") == "配送"
    assert "新仓配送流程上线" in page.locator("body").inner_text()

    page.locator("a.category-link", has_text="服务").click()
    page.wait_for_url(f"{live_server.url}/voc/factors/%E6%9C%8D%E5%8A%A1")
    subs = [t.strip() for t in page.locator("a.sub-link").all_inner_texts()]
    assert "物流" in subs and "客服" in subs
    page.locator("a.sub-link", has_text="物流").click()
    page.wait_for_url(f"{live_server.url}/voc/factors/%E7%89%A9%E6%B5%81")
    assert page.locator(".verbatim mark").count() >= 1  # newest verbatims, highlighted
    page.get_by_role("link", name="负面").click()
    page.wait_for_url(f"{live_server.url}/voc/factors/%E7%89%A9%E6%B5%81?sentiment=negative")
    negative = page.locator(".verbatim[data-sentiment=negative] mark.hl-negative")
    assert negative.count() >= 5 and page.locator("mark.hl-positive").count() == 0
    assert negative.first.is_visible()
    red = _background(negative.first)
    page.get_by_role("link", name="正面").click()
    page.wait_for_url(f"{live_server.url}/voc/factors/%E7%89%A9%E6%B5%81?sentiment=positive")
    positive = page.locator(".verbatim[data-sentiment=positive] mark.hl-positive")
    assert positive.count() >= 1 and page.locator("mark.hl-negative").count() == 0
    green = _background(positive.first)
    assert red != green and "rgba(0, 0, 0, 0)" not in (red, green)


@pytest.mark.usefixtures("staff", "demo_voc")
def test_survey_builder_previews_the_survey_page(page: Any,
                                                 live_server: LiveServer) -> None:  # noqa: F811
    sign_in_at(page, f"{live_server.url}/voc/surveys", "operator")
    assert page.locator("td code", has_text="after_delivery").is_visible()
    page.locator("#builder-form input[name=name]").fill("after_return_v2")
    page.locator("#builder-form input[name=title]").fill("退货体验回访")
    page.locator("#preview-btn").click()
    page.wait_for_url(f"{live_server.url}/voc/surveys/preview")
    body = page.locator("body").inner_text()
    assert "退货体验回访" in body
    assert "您对本次购物满意吗？" in body and "物流速度" in body


@pytest.mark.usefixtures("staff", "demo_voc")
def test_the_customers_behind_the_darkest_moment_become_a_segment(
        page: Any, live_server: LiveServer, sessions: sessionmaker[Session]) -> None:  # noqa: F811
    sign_in_at(page, f"{live_server.url}/voc", "operator")
    page.locator("#darkest-segment").click()
    page.wait_for_url(f"{live_server.url}/segments/new?**")
    assert page.locator("#rule").input_value() == 'voc_low("配送", last 30d)'
    assert page.locator("#segment-name").input_value() == "配送不满客户"
    page.locator("#save").click()
    page.wait_for_url(f"{live_server.url}/segments")
    assert "已保存人群「配送不满客户」" in page.locator("body").inner_text()
    with sessions() as s:
        segment = s.scalars(select(Segment)).one()
        assert segment.name == "配送不满客户"
        assert segment.size > 0
