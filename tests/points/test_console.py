"""The 积分 console page: liability figures, the catalogue with stock (operators change it),
redeeming for a customer with a confirmation and clear Chinese errors, recent redemptions,
roles and masking, the 360 card; and a browser redeeming a reward (Debian's Chromium)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.service import upsert_customers
from siyu.points import service as points
from tests.console.conftest import LiveServer, Login, csrf_from, sign_in_at


def _seed(sessions: sessionmaker[Session], settings: Settings) -> int:
    with sessions() as s:
        cid = upsert_customers(s, [{"id": "P1", "name": "林晓雯", "identities": [
            {"kind": "phone", "value": "13800138000"}]}], settings=settings).customer_ids[0]
        points.add_entry(s, cid, 1000, source="order", key="SO-1",
                         at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3),
                         reason="购物积分")
        points.add_reward(s, "试用装", 300, stock=2)
        points.add_reward(s, "保温杯", 5000)
        s.commit()
    return cid


def _redeem_form(html: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="/points/redeem">(.*?)</form>', html, re.S)
    assert form, html
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(1)))


@pytest.mark.usefixtures("staff")
def test_the_page_redeems_once_per_confirmation_and_explains_refusals(
        login: Login, sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = _seed(sessions, settings)
    client = login("operator")
    page = client.get("/points")
    assert page.status_code == 200
    assert '<a href="/points" class="active" aria-current="page">积分</a>' in page.text
    assert 'id="outstanding">1000<' in page.text and "¥10.00" in page.text
    assert "style=" not in page.text

    with sessions() as s:
        rewards = {r["name"]: r["id"] for r in points.rewards(s)}
    confirm = client.get("/points", params={"customer": "13800138000",
                                            "reward_id": rewards["试用装"]})
    assert "兑换「试用装」：扣 300 积分，积分余额 <span id=\"confirm-balance\">1000</span> → 700" \
        in confirm.text
    assert "138****8000" in confirm.text and "13800138000</" not in confirm.text  # operator
    form = _redeem_form(confirm.text)
    done = client.post("/points/redeem", data=form, follow_redirects=False)
    assert done.status_code == 303
    again = client.post("/points/redeem", data=form)  # a second click
    assert "这次兑换已完成过，未重复扣分" in again.text
    with sessions() as s:
        assert points.balance(s, cid) == 700
        assert [r["stock"] for r in points.rewards(s) if r["name"] == "试用装"] == [1]
    after = client.get("/points").text
    assert "已为 林晓雯 兑换「试用装」" not in after  # the flash was shown once
    assert re.search(r'data-reward="试用装">.*?<td data-stock>1</td>', after, re.S)
    assert "<td>试用装</td><td>-300</td>" in after.replace("\n", "")

    short = client.get("/points", params={"customer": str(cid),
                                          "reward_id": rewards["保温杯"]}).text
    assert "不能兑换：积分不足：需要 5000 积分，当前只有 700 积分" in short
    assert 'id="confirm-redeem"' not in short
    nobody = client.get("/points", params={"customer": "13900000000",
                                           "reward_id": rewards["试用装"]}).text
    assert "没有找到客户「phone:13900000000」" in nobody
    # A confirmation whose reward ran out meanwhile: refused with the reason, nothing written
    with sessions() as s:
        points.update_reward(s, rewards["试用装"], stock=0)
        s.commit()
    late = client.post("/points/redeem", data={**form, "key": "console:other"})
    assert "未兑换：「试用装」已兑完，库存不足" in late.text
    with sessions() as s:
        assert points.balance(s, cid) == 700


@pytest.mark.usefixtures("staff")
def test_operators_change_the_catalogue_and_others_only_read(
        login: Login, sessions: sessionmaker[Session], settings: Settings) -> None:
    _seed(sessions, settings)
    operator = login("operator")
    token = csrf_from(operator.get("/points").text)
    added = operator.post("/points/rewards", data={"csrf_token": token, "name": "50 元优惠券",
                                                    "cost": "500", "stock": "10"})
    assert "已保存奖品「50 元优惠券」" in added.text
    bad = operator.post("/points/rewards", data={"csrf_token": token, "name": "券",
                                                  "cost": "零", "stock": ""})
    assert "未保存：所需积分：请填写 1 以上的整数" in bad.text
    with sessions() as s:
        rid = next(r["id"] for r in points.rewards(s) if r["name"] == "50 元优惠券")
    changed = operator.post(f"/points/rewards/{rid}", data={"csrf_token": token, "cost": "450",
                                                            "stock": "", "active": "1"})
    assert "已更新「50 元优惠券」：450 积分，库存 不限" in changed.text
    negative = operator.post(f"/points/rewards/{rid}", data={"csrf_token": token,
                                                             "cost": "450", "stock": "-3"})
    assert "未保存：库存：请填写不小于 0 的整数" in negative.text

    agent = login("agent")
    view = agent.get("/points")
    assert view.status_code == 200 and "奖品目录" in view.text
    assert 'id="redeem"' not in view.text and 'id="liability"' not in view.text
    assert agent.post("/points/rewards", data={"csrf_token": csrf_from(view.text),
                                               "name": "x", "cost": "1"}).status_code == 403
    analyst = login("analyst")
    seen = analyst.get("/points").text
    assert 'id="liability"' in seen and 'id="redeem"' not in seen


@pytest.mark.usefixtures("staff")
def test_the_360_shows_a_points_card(login: Login, sessions: sessionmaker[Session],
                                     settings: Settings) -> None:
    cid = _seed(sessions, settings)
    with sessions() as s:
        points.add_entry(s, cid, 50, source="manual", key="m1", reason="补偿，回电 13800138000")
        s.commit()
    html = login("admin").get(f"/customers/{cid}").text
    card = re.search(r'id="panel-points">(.*?)</section>', html, re.S)
    assert card, html
    text = card.group(1)
    assert "积分余额" in text and "1050 积分" in text
    assert "人工调整" in text and "购物积分" in text and "+50" in text
    assert "138****8000" in text and "13800138000" not in text
    assert "manual" not in text and "order" not in text


@pytest.mark.usefixtures("staff")
def test_a_browser_redeems_a_reward_and_sees_balance_and_stock_go_down(
        page: Page, live_server: LiveServer, sessions: sessionmaker[Session],
        settings: Settings) -> None:
    cid = _seed(sessions, settings)
    sign_in_at(page, f"{live_server.url}/points", "operator")
    stock = page.locator('tr[data-reward="试用装"] td[data-stock]')
    expect(stock).to_have_text("2")
    page.get_by_label("客户", exact=True).fill("13800138000")
    page.get_by_label("奖品", exact=True).select_option(label="试用装（300 积分，剩 2）")
    page.get_by_role("button", name="查看并确认").click()
    expect(page.locator("#redeem-confirm")).to_contain_text("兑换「试用装」：扣 300 积分")
    expect(page.locator("#confirm-balance")).to_have_text("1000")
    page.get_by_role("button", name="确认兑换").click()
    expect(page.locator(".flash")).to_contain_text(
        "已为 林晓雯 兑换「试用装」，扣 300 积分，积分余额 700")
    expect(stock).to_have_text("1")
    expect(page.locator("#recent")).to_contain_text("试用装")
    page.screenshot(path="/tmp/points-console.png", full_page=True)
    page.goto(f"{live_server.url}/customers/{cid}")
    expect(page.locator("#panel-points")).to_contain_text("700 积分")
    expect(page.locator("#panel-points")).to_contain_text("积分兑换")
    with sessions() as s:
        assert points.balance(s, cid) == 700
