"""The 客户群 console pages: the list with members, customers linked and joins / leaves over
7 and 30 days; a group's page with its members (phones masked by role) and a chart of its
members over time; no inline styles; 404 for an unknown group."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.models import Customer, Identity
from siyu.groups.models import CustomerGroup
from tests.console.conftest import LiveServer, Login, sign_in_at
from tests.groups.conftest import member, store_group

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)


def _seed(sessions: sessionmaker[Session], settings: Settings) -> int:
    with sessions() as s:
        store_group(s, settings, "wrBreakfast", "禾源良品·早餐打卡群", [
            member("advisor_chen", 1, NOW - 40 * DAY), member("wmFan01", 2, NOW - 40 * DAY),
            member("wmFan02", 2, NOW - 20 * DAY), member("wmFan03", 2, NOW - 2 * DAY)],
            now=NOW - DAY)
        store_group(s, settings, "wrBreakfast", "禾源良品·早餐打卡群", [
            member("advisor_chen", 1, NOW - 40 * DAY), member("wmFan01", 2, NOW - 40 * DAY),
            member("wmFan03", 2, NOW - 2 * DAY)], now=NOW - dt.timedelta(hours=2))
        store_group(s, settings, "wrMoms", "宝妈营养交流群", [
            member("advisor_li", 1, NOW - 5 * DAY), member("wmMom01", 2, NOW - 5 * DAY)],
            owner="advisor_li")
        cid = s.scalar(select(Identity.customer_id).where(Identity.value == "wmFan01"))
        s.add(Identity(customer_id=cid, kind="phone", value="+8613700137000"))
        customer = s.get(Customer, cid)
        assert customer is not None
        customer.name = "周晓岚"
        gid = s.scalars(select(CustomerGroup.id).where(
            CustomerGroup.chat_id == "wrBreakfast")).one()
        s.commit()
    return int(gid)


@pytest.mark.usefixtures("staff")
def test_the_list_and_a_group(login: Login, sessions: sessionmaker[Session],
                              settings: Settings) -> None:
    gid = _seed(sessions, settings)
    client = login("analyst")
    page = client.get("/groups")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/groups" class="active" aria-current="page">客户群</a>' in html
    assert "style=" not in html
    row = re.search(r'<tr data-group="wrBreakfast">(.*?)</tr>', html, re.S)
    assert row, html
    cells = row.group(1)
    assert f'<a href="/groups/{gid}">禾源良品·早餐打卡群</a>' in cells
    assert '<td class="c-external">2</td>' in cells and '<td class="c-linked">2</td>' in cells
    assert '<td class="c-7d">1 / 1</td>' in cells and '<td class="c-30d">2 / 1</td>' in cells
    assert 'id="total-customers">3<' in html and 'id="groups-chart"' in html

    detail = client.get(f"/groups/{gid}")
    assert detail.status_code == 200
    text = detail.text
    assert "style=" not in text
    assert "客户群「禾源良品·早餐打卡群」" in text
    assert re.search(r'<tr data-member="wmFan01">.*?周晓岚.*?137\*\*\*\*7000', text, re.S)
    assert "13700137000" not in text  # the analyst sees masked phones
    assert 'id="members-chart"' in text and "近 30 天群内客户数" in text
    # the chart's last point: two customers now; 40 days ago none (before the window)
    points = re.findall(r"群内客户 [\d-]+: (\d+)</title>", text)
    assert len(points) == 30 and points[-1] == "2" and max(points) == "3"
    assert 'id="former-members"' in text and 'data-member="wmFan02"' in text

    client.get("/logout")
    admin = login("admin")
    assert "13700137000" in admin.get(f"/groups/{gid}").text
    assert admin.get("/groups/999999").status_code == 404


@pytest.mark.browser
@pytest.mark.usefixtures("staff")
def test_a_browser_opens_a_group_from_the_list(page: Page, live_server: LiveServer,
                                               sessions: sessionmaker[Session],
                                               settings: Settings) -> None:
    gid = _seed(sessions, settings)
    sign_in_at(page, f"{live_server.url}/groups", "agent")
    row = page.locator('tr[data-group="wrBreakfast"]')
    expect(row.locator("td.c-external")).to_have_text("2")
    row.get_by_role("link", name="禾源良品·早餐打卡群").click()
    page.wait_for_url(f"{live_server.url}/groups/{gid}")
    expect(page.locator("#g-7d")).to_have_text("1 / 1")
    expect(page.locator('tr[data-member="wmFan01"] td.c-phone')).to_have_text("137****7000")
    chart = page.locator("#members-chart svg")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 300  # type: ignore[index]
    page.screenshot(path="/tmp/groups-console.png", full_page=True)
