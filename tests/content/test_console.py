"""The 内容 page in a real browser: add an item through the form, then a recipient clicks
their link and the item's clicks move."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from siyu.content import service as content
from tests.console.conftest import (  # noqa: F401  (the console fixtures)
    LiveServer,
    live_server,
    make_user,
    sign_in_at,
    staff,
)
from tests.playbooks.conftest import make_customer


@pytest.mark.browser
@pytest.mark.usefixtures("staff")
def test_add_an_item_then_a_click_on_a_recipients_link_moves_its_clicks(
        page: Page, live_server: LiveServer,  # noqa: F811
        sessions: sessionmaker[Session]) -> None:
    sign_in_at(page, f"{live_server.url}/content", "operator")
    form = page.locator("#content-form")
    form.get_by_label("名称").fill("燕麦食用指南")
    form.get_by_label("类型").select_option("article")
    form.get_by_label("链接").fill("javascript:alert(1)")
    form.get_by_role("button", name="添加").click()
    expect(page.locator("#content-error")).to_contain_text("链接：须为 http(s) 网址")
    form.get_by_label("链接").fill(f"{live_server.url}/healthz")
    form.get_by_role("button", name="添加").click()
    row = page.locator('tr[data-content="燕麦食用指南"]')
    expect(row.locator(".c-clicks")).to_have_text("0")

    with sessions() as s:
        cid = make_customer(s, name="陈晨")
        link = content.link_for(s, "燕麦食用指南", customer_id=cid, delivery_key="test:1")
        s.commit()
    visitor = page.context.new_page()  # the customer opens the link from their message
    visitor.goto(f"{live_server.url}{link}")
    expect(visitor.locator("body")).to_contain_text("ok")  # redirected to the item
    visitor.close()

    page.reload()
    row = page.locator('tr[data-content="燕麦食用指南"]')
    expect(row.locator(".c-recipients")).to_have_text("1")
    expect(row.locator(".c-clicks")).to_have_text("1")
    expect(row.locator(".c-ctr")).to_have_text("100.0%")
