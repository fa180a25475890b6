"""The customer 360 page's timeline: grouped by local day, filtered by group (orders /
service / marketing / system) and paginated, so a loyal customer's page stays short."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.timeline import timeline_page
from tests.console.conftest import (  # noqa: F401  (console fixtures)
    Login,
    login,
    make_user,
    staff,
)
from tests.customers.builders import loyal_customer


def test_timeline_pages_count_each_group_and_cut_the_union_in_order(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = loyal_customer(sessions, settings, days=12)
    with sessions() as s:
        first = timeline_page(s, cid, page=1, per_page=10)
        assert first.counts == {"orders": 12, "service": 2, "marketing": 12, "system": 12,
                                "all": 38}
        assert (first.total, first.pages) == (38, 4)
        pages = [timeline_page(s, cid, page=n, per_page=10).entries for n in range(1, 5)]
        everything = [e for p in pages for e in p]
        assert len(everything) == 38 and len({(e["kind"], e["id"]) for e in everything}) == 38
        stamps = [e["at"] for e in everything]
        assert stamps == sorted(stamps, reverse=True)
        service = timeline_page(s, cid, category="service", per_page=10)
        assert [e["title"] for e in service.entries] == ["售后申请", "售后申请"]
        orders = timeline_page(s, cid, category="orders", page=99, per_page=5)
        assert orders.page == 3 and [e["id"] for e in orders.entries] == ["O001", "O000"]


@pytest.mark.usefixtures("staff")
def test_the_360_timeline_is_grouped_by_day_filtered_and_paginated(
        login: Login, sessions: sessionmaker[Session], settings: Settings) -> None:  # noqa: F811
    cid = loyal_customer(sessions, settings)
    client = login("agent")
    html = client.get(f"/customers/{cid}").text
    days = re.findall(r'<h3 class="tl-day">([^<]+)</h3>', html)
    # 15 entries a page, three per day: the newest five days, each named once.
    assert days == ["2026-07-10 星期五", "2026-07-09 星期四", "2026-07-08 星期三",
                    "2026-07-07 星期二", "2026-07-06 星期一"], days
    assert html.count('<li class="tl-') == 15
    assert "第 1 / 9 页" in html
    assert re.search(r'data-tl="service">服务 <span class="tab-count">4</span>', html)

    orders = client.get(f"/customers/{cid}", params={"tl": "orders", "page": 2}).text
    assert orders.count('<li class="tl-order tl-cat-orders">') == 15
    assert '<li class="tl-event' not in orders
    assert "第 2 / 3 页" in orders and "订单 O024" in orders
    service = client.get(f"/customers/{cid}", params={"tl": "service"}).text
    assert service.count("售后申请") == 4 and "订单 O" not in service.split('id="timeline"')[1]
    # A page past the end shows the last page; an unknown group shows everything.
    last = client.get(f"/customers/{cid}", params={"tl": "orders", "page": 999}).text
    assert "第 3 / 3 页" in last
    assert "第 1 / 9 页" in client.get(f"/customers/{cid}", params={"tl": "x"}).text
