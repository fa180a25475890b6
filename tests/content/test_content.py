"""Tracked content: a playbook template links to an item with ``content("名称")``; each
recipient gets a link of their own; a click names them (and the step) and leads to the
item; click-through and conversion per item and per playbook step."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.content import service as content
from siyu.content.models import ContentClick, ContentLink
from siyu.errors import InvalidInput
from siyu.events.models import Event
from siyu.events.service import ingest
from siyu.playbooks.errors import InvalidPlaybook
from tests.playbooks.conftest import Clock, apply, fire, make_customer, outbox_rows, runs, tick

PLAYBOOK = """\
name: 新品推荐
status: active
trigger: {event: signup}
steps:
  - send:
      channel: email
      subject: 新品
      template: "{{ customer.name }}，来看看：{{ content('春季燕麦新品') }}"
"""
LINK = re.compile(r"/c/([2-9a-z]{12})")


@pytest.fixture
def clock() -> Iterator[Clock]:
    from siyu.playbooks import clock as pb_clock

    c = Clock()
    pb_clock.use_clock(c)
    yield c
    pb_clock.use_clock(None)


def test_items_are_validated_naming_the_field(db: Session) -> None:
    content.create_item(db, "春季燕麦新品", "product", "https://shop.example/oat")
    for args, field in ((("春季燕麦新品", "article", "https://x.example"), "name"),
                        (("新文章", "video", "https://x.example"), "kind"),
                        (("新文章", "article", "javascript:alert(1)"), "url"),
                        (("新文章", "article", "//evil.example/x"), "url"),
                        (("", "article", "https://x.example"), "name")):
        with pytest.raises(InvalidInput) as exc:
            content.create_item(db, *args)
        assert exc.value.details[0]["field"] == field
    assert content.names(db) == {"春季燕麦新品"}


def test_a_playbook_naming_an_unknown_item_is_refused_at_apply(db: Session) -> None:
    with pytest.raises(InvalidPlaybook) as exc:
        apply(db, PLAYBOOK)
    assert exc.value.details[0]["step"] == "steps[0].template"
    assert "春季燕麦新品" in exc.value.details[0]["reason"]


def test_each_recipient_gets_a_link_and_a_click_names_them_and_converts(
        db: Session, sessions: sessionmaker[Session], settings: Settings, clock: Clock,
        app_client: TestClient) -> None:
    content.create_item(db, "春季燕麦新品", "product", "https://shop.example/oat")
    apply(db, PLAYBOOK)
    a = make_customer(db, name="李娜", email="ln@example.com", external="LN")
    b = make_customer(db, name="王芳", email="wf@example.com", external="WF")
    fire(db, settings, a, "signup", clock())
    fire(db, settings, b, "signup", clock())
    tick(db, clock)
    texts = {row.customer_id: row.content["text"] for row in outbox_rows(db)}
    tokens = {cid: LINK.search(text).group(1) for cid, text in texts.items()}  # type: ignore[union-attr]
    assert set(tokens) == {a, b} and tokens[a] != tokens[b]
    # The same step rendered again (a retried send) reuses the recipient's link.
    again = content.link_for(db, "春季燕麦新品", customer_id=a,
                             delivery_key=f"pb:{runs(db)[0].id}:0")
    assert again.endswith(f"/c/{tokens[a]}")
    db.commit()

    answer = app_client.get(f"/c/{tokens[a]}", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == "https://shop.example/oat"
    app_client.get(f"/c/{tokens[a]}", follow_redirects=False)  # a second click by the same
    assert app_client.get("/c/aaaaaaaaaaaa", follow_redirects=False).status_code == 404
    [item] = content.item_stats(db)
    anon = app_client.get(item.anonymous_link, follow_redirects=False)
    assert anon.status_code == 302

    with sessions() as s:
        clicks = list(s.scalars(select(ContentClick).order_by(ContentClick.id)))
        assert [c.customer_id for c in clicks] == [a, a, None]
        events = list(s.scalars(select(Event).where(Event.customer_id == a,
                                                    Event.type == "content_clicked")))
        assert len(events) == 2 and events[0].properties["content"] == "春季燕麦新品"
        # 李娜 buys after her click: a conversion; 王芳 never clicked.
        ingest(s, "orders", [{"id": "O-1", "identities": [{"kind": "external_id",
                                                           "value": "LN"}],
                              "ts": dt.datetime.now(dt.UTC).isoformat(), "amount": 89.0,
                              "status": "paid"}],
               settings=settings)
        s.commit()
        [stats] = content.item_stats(s)
        assert (stats.recipients, stats.clickers, stats.clicks, stats.anonymous_clicks,
                stats.converted, stats.click_through, stats.conversion) == (
            2, 1, 2, 1, 1, 0.5, 1.0)
        playbook_id = s.scalar(select(ContentLink.playbook_id))
        assert content.step_stats(s, int(playbook_id or 0)) == [
            {"step": "0", "content": "春季燕麦新品", "links": 2, "recipients": 2,
             "clicks": 2, "clickers": 1, "converted": 1, "click_through": 0.5,
             "conversion": 1.0}]
