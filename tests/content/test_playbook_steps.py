"""Tracked content per playbook step: a send step links to an item, a recipient clicks and
then orders, and the step's figures move on the playbook's page (内容效果), in
``GET /api/v1/playbooks/{name}/stats`` and in ``siyu playbooks stats --json`` (the
``content`` key). The step is named by its path in the file, for the version the run
started on."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.content import service as content
from siyu.content.models import ContentLink
from siyu.customers import service as customers
from siyu.events.service import ingest
from siyu.playbooks import service
from siyu.playbooks.models import Playbook
from tests.cli_helpers import run_cli
from tests.console.conftest import (  # noqa: F401  (the console fixtures)
    Login,
    MakeUser,
    login,
    make_user,
    staff,
)
from tests.playbooks.conftest import Clock, apply, fire, make_customer, outbox_rows, tick

NAME = "新品推荐"
PLAYBOOK = """\
name: 新品推荐
status: active
trigger: {event: signup}
holdout: 0
steps:
  - branch:
      if: 'tag("VIP")'
      then:
        - send: {channel: email, subject: 会员专享, template: "先看：{{ content('春季燕麦新品') }}"}
      else:
        - send: {channel: email, subject: 新品, template: "来看看：{{ content('春季燕麦新品') }}"}
"""
V2_STEPS = """\
steps:
  - tag: {add: 新客}
  - tag: {add: 新品关注}
  - branch:
      if: 'tag("VIP")'
      then: exit
      else:
        - send: {channel: email, subject: 新品, template: "来看看：{{ content('春季燕麦新品') }}"}
"""
LINK = re.compile(r"/c/([2-9a-z]{12})")


@pytest.fixture
def clock() -> Iterator[Clock]:
    from siyu.playbooks import clock as pb_clock

    c = Clock()
    pb_clock.use_clock(c)
    yield c
    pb_clock.use_clock(None)


def _order(s: Session, settings: Settings, external: str, oid: str, at: dt.datetime) -> None:
    ingest(s, "orders", [{"id": oid, "identities": [{"kind": "external_id", "value": external}],
                          "ts": at.isoformat(), "amount": 89.0, "status": "paid"}],
           settings=settings)


def _row(rows: list[dict[str, object]], step: str) -> dict[str, object]:
    [row] = [r for r in rows if r["step"] == step]
    return row


@pytest.mark.usefixtures("staff")
def test_a_click_then_an_order_moves_the_steps_figures_on_page_api_and_cli(
        sessions: sessionmaker[Session], settings: Settings, clock: Clock,
        login: Login,  # noqa: F811
        api_key: str, monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    with sessions() as s:
        content.create_item(s, "春季燕麦新品", "product", "https://shop.example/oat")
        apply(s, PLAYBOOK)
        vip = make_customer(s, name="李娜", email="ln@example.com", external="LN")
        customers.add_tag(s, vip, "VIP")
        other = make_customer(s, name="王芳", email="wf@example.com", external="WF")
        late = make_customer(s, name="张伟", email="zw@example.com", external="ZW")
        for cid in (vip, other, late):
            fire(s, settings, cid, "signup", clock())
        tick(s, clock)
        tokens = {row.customer_id: LINK.search(row.content["text"]).group(1)  # type: ignore[union-attr]
                  for row in outbox_rows(s)}
        s.commit()
    assert set(tokens) == {vip, other, late}
    client = login("operator")
    headers = {"Authorization": f"Bearer {api_key}"}

    before = client.get(f"/api/v1/playbooks/{NAME}/stats", headers=headers).json()
    assert before["content"] == [
        {"step": "0.then.0", "content": "春季燕麦新品", "links": 1, "recipients": 1,
         "clicks": 0, "clickers": 0, "converted": 0, "click_through": 0.0,
         "conversion": None},
        {"step": "0.else.0", "content": "春季燕麦新品", "links": 2, "recipients": 2,
         "clicks": 0, "clickers": 0, "converted": 0, "click_through": 0.0,
         "conversion": None}]
    assert {"entered", "holdout", "sent", "steps", "uplift"} <= set(before)  # unchanged keys
    page = client.get(f"/playbooks/{NAME}").text
    assert "内容效果" in page and 'id="content-steps"' in page

    # 李娜 (VIP) clicks twice, then buys; 王芳 clicked ten days before she buys (outside the
    # window); 张伟 buys without a click.
    for token in (tokens[vip], tokens[vip]):
        assert client.get(f"/c/{token}", follow_redirects=False).status_code == 302
    now = dt.datetime.now(dt.UTC)
    with sessions() as s:
        content.click(s, tokens[other], now=now - dt.timedelta(days=10))
        _order(s, settings, "LN", "O-1", now)
        _order(s, settings, "WF", "O-2", now)
        _order(s, settings, "ZW", "O-3", now)
        s.commit()

    after = client.get(f"/api/v1/playbooks/{NAME}/stats", headers=headers).json()["content"]
    assert _row(after, "0.then.0") == {
        "step": "0.then.0", "content": "春季燕麦新品", "links": 1, "recipients": 1,
        "clicks": 2, "clickers": 1, "converted": 1, "click_through": 1.0, "conversion": 1.0}
    assert _row(after, "0.else.0") == {
        "step": "0.else.0", "content": "春季燕麦新品", "links": 2, "recipients": 2,
        "clicks": 1, "clickers": 1, "converted": 0, "click_through": 0.5, "conversion": 0.0}

    page = client.get(f"/playbooks/{NAME}").text
    table = re.search(r'<table class="table" id="content-steps">.*?</table>', page, re.S)
    assert table is not None
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(\d+)</td>\s*<td>(.*?)</td>\s*"
                      r"<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td></tr>", table.group(0))
    assert rows == [("0→满足→0", "春季燕麦新品", "1", "2 次（1 人）", "100.0%", "1 人", "100.0%"),
                    ("0→不满足→0", "春季燕麦新品", "2", "1 次（1 人）", "50.0%", "0 人", "0.0%")]
    assert "style=" not in table.group(0)

    result = run_cli(monkeypatch, database_url, "playbooks", "stats", NAME, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["content"] == after
    text = run_cli(monkeypatch, database_url, "playbooks", "stats", NAME)
    assert "content 0.then.0" in text.stdout


def test_a_newer_version_names_its_own_steps(
        db: Session, settings: Settings, clock: Clock) -> None:
    content.create_item(db, "春季燕麦新品", "product", "https://shop.example/oat")
    apply(db, PLAYBOOK)
    first = make_customer(db, name="王芳", email="wf@example.com", external="WF")
    fire(db, settings, first, "signup", clock())
    tick(db, clock)
    # Version 2: the same program index (3) is another step now (2.else.0, not 0.else.0).
    apply(db, PLAYBOOK.split("steps:")[0] + V2_STEPS)
    second = make_customer(db, name="张伟", email="zw@example.com", external="ZW")
    fire(db, settings, second, "signup", clock.advance(minutes=1))
    tick(db, clock)
    pid = db.scalar(select(Playbook.id).where(Playbook.name == NAME))
    assert {link.step for link in db.scalars(select(ContentLink))} == {3}
    assert [(r["step"], r["links"]) for r in content.step_stats(db, int(pid or 0))] == [
        ("0.else.0", 1), ("2.else.0", 1)]
    assert service.stats(db, NAME)["content"] == content.step_stats(db, int(pid or 0))


def test_the_page_says_when_a_playbook_with_content_sent_nothing_yet(
        sessions: sessionmaker[Session], login: Login,  # noqa: F811
        make_user: MakeUser) -> None:  # noqa: F811
    with sessions() as s:
        content.create_item(s, "春季燕麦新品", "product", "https://shop.example/oat")
        apply(s, PLAYBOOK)
        apply(s, PLAYBOOK.replace(NAME, "无内容").replace("{{ content('春季燕麦新品') }}", ""))
        s.commit()
    make_user("operator", "operator")
    client = login("operator")
    assert "还没有发出内容链接" in client.get(f"/playbooks/{NAME}").text
    assert "内容效果" not in client.get("/playbooks/无内容").text
