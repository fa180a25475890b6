"""The agent desk's look, measured in a real browser (Debian chromium): chat bubbles with the
customer on the left and the bot on the right, the customer sidebar as label/value rows,
a styled transfer list, and checkboxes beside their labels on /service and /kb."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from tests.console.conftest import (  # noqa: F401  (console fixtures)
    LiveServer,
    live_server,
    make_user,
    sign_in_at,
    staff,
)
from tests.service.test_desk import customer, kb, say  # noqa: F401  (fixture kb)

pytestmark = pytest.mark.browser


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box  # type: ignore[no-any-return]


def _checkbox_beside_its_label(page: Any, label_selector: str) -> None:
    label = page.locator(label_selector).first
    box = label.locator("input[type=checkbox]").bounding_box()
    text = label.evaluate("""l => { const r = document.createRange();
        const t = [...l.childNodes].find(n => n.nodeType === 3 && n.textContent.trim());
        r.selectNodeContents(t); const b = r.getBoundingClientRect();
        return {x: b.x, y: b.y, width: b.width, height: b.height}; }""")
    assert box is not None
    middle = box["y"] + box["height"] / 2
    assert text["y"] <= middle <= text["y"] + text["height"], (box, text)  # same line
    assert box["x"] + box["width"] <= text["x"] + 1, (box, text)  # to its left


@pytest.mark.usefixtures("staff", "kb")
def test_the_conversation_is_bubbles_beside_a_styled_customer_card(
        page: Any, live_server: LiveServer, sessions: sessionmaker[Session],  # noqa: F811
        settings: Settings) -> None:
    customer(sessions, settings, tier="金卡", city="上海")
    say(sessions, "你好", "w-1")
    result = say(sessions, "转人工", "w-2")
    sign_in_at(page, f"{live_server.url}/service/conversations/{result.conversation_id}",
               "agent")
    chat = _box(page, "#messages")
    mine = _box(page, ".msg.sender-customer .bubble")
    bot_bubble = _box(page, ".msg.sender-bot .bubble")
    # Customer on the left, the bot on the right, each a bubble narrower than the chat.
    assert mine["x"] - chat["x"] < 40 and mine["width"] < chat["width"] * 0.8
    right_gap = chat["x"] + chat["width"] - (bot_bubble["x"] + bot_bubble["width"])
    assert right_gap < 40 and bot_bubble["x"] > chat["x"] + chat["width"] * 0.2
    styles = page.locator(".msg.sender-bot .bubble").first.evaluate(
        "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).borderTopLeftRadius]")
    assert styles[0] not in ("rgba(0, 0, 0, 0)", "transparent") and styles[1] != "0px"

    # The sidebar's labels and values share a row.
    label = _box(page, "#customer-panel dt")
    value = _box(page, "#customer-tier")
    assert abs(label["y"] - value["y"]) < 4 and value["x"] > label["x"] + label["width"]
    # The transfer list is drawn by the console, not the browser's default control.
    look = page.locator("#transfer-to").evaluate(
        "e => [getComputedStyle(e).appearance, getComputedStyle(e).borderTopLeftRadius]")
    assert look == ["none", "8px"], look


@pytest.mark.usefixtures("staff")
def test_checkboxes_sit_beside_their_labels(page: Any, live_server: LiveServer) -> None:  # noqa: F811
    sign_in_at(page, f"{live_server.url}/service", "admin")
    _checkbox_beside_its_label(page, "#skills-form label:has(input[type=checkbox])")
    page.goto(f"{live_server.url}/kb")
    _checkbox_beside_its_label(page, "label:has(input[name=handoff])")
