"""The agent desk as an agent meets it: the queue names the customer and the real reason of
the hand-off, the transfer list defaults to someone online, only the page being viewed is
highlighted, suggestions never repeat the bot's greeting, and a customer who asks for a
person again while waiting learns their place in the queue."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.models import User
from siyu.config import Settings
from siyu.customers.identity import IdentityRef
from siyu.customers.service import upsert_customers
from siyu.service import bot
from siyu.service import service as desk
from siyu.service.models import Message
from tests.console.conftest import (  # noqa: F401  (console fixtures)
    Login,
    login,
    make_user,
    staff,
)
from tests.service.test_desk import customer, kb, say  # noqa: F401  (fixture kb)


def _say_as(sessions: sessionmaker[Session], phone: str, text: str) -> desk.InboundResult:
    with sessions() as s:
        result = desk.receive_inbound(s, channel="webchat",
                                      identities=[IdentityRef("phone", phone)], text=text,
                                      external_id=None)
        s.commit()
    with sessions() as s:
        bot.handle_inbound(s, result.message_id)
        s.commit()
    return result


def _bot_replies(sessions: sessionmaker[Session], conversation_id: int) -> list[str]:
    with sessions() as s:
        return [m.text or "" for m in s.scalars(select(Message).where(
            Message.conversation_id == conversation_id, Message.sender == "bot")
            .order_by(Message.id))]


def _queue_row(html: str, conversation_id: int) -> str:
    match = re.search(rf'<tr data-conversation="{conversation_id}"[^>]*>(.*?)</tr>', html,
                      re.S)
    assert match, html
    return match.group(1)


@pytest.mark.usefixtures("staff", "kb")
def test_the_queue_shows_the_customers_name_not_only_a_number(
        login: Login, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    customer(sessions, settings, tier="金卡")
    result = say(sessions, "转人工", "w-1")
    row = _queue_row(login("agent").get("/service").text, result.conversation_id)
    assert "林晓雯" in row and "金卡" in row


@pytest.mark.usefixtures("staff", "kb")
def test_a_low_confidence_hand_off_shows_its_reason_not_the_earlier_greeting(
        login: Login, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    customer(sessions, settings)
    say(sessions, "你好", "w-1")
    result = say(sessions, "asdf qwer zxcv", "w-2")
    row = _queue_row(login("agent").get("/service").text, result.conversation_id)
    assert "置信度低" in row
    intent = re.search(r'<td class="intent">([^<]*)</td>', row)
    assert intent is not None and intent.group(1) == "—", row
    assert "问候" not in row


@pytest.mark.usefixtures("staff", "kb")
def test_asking_for_a_person_again_while_waiting_tells_the_place_in_the_queue(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as s:
        upsert_customers(s, [
            {"id": f"Q{i}", "name": name, "identities": [{"kind": "phone", "value": phone}]}
            for i, (name, phone) in enumerate((("王一", "13900000001"),
                                                ("李二", "13900000002")))],
            settings=settings)
        s.commit()
    _say_as(sessions, "+8613900000001", "转人工")
    second = _say_as(sessions, "+8613900000002", "转人工")
    before = _bot_replies(sessions, second.conversation_id)
    _say_as(sessions, "+8613900000002", "转人工")
    after = _bot_replies(sessions, second.conversation_id)
    assert after[len(before):] == [bot.IN_QUEUE.format(position=2)]
    assert "第 2 位" in after[-1]
    # Anything else said while waiting is for the agent: the bot stays silent.
    _say_as(sessions, "+8613900000002", "我的订单怎么还没到")
    assert _bot_replies(sessions, second.conversation_id) == after


@pytest.mark.usefixtures("staff", "kb")
def test_suggested_replies_never_offer_the_bots_own_greeting(
        login: Login, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    customer(sessions, settings)
    result = say(sessions, "你好", "w-1")
    greeting = _bot_replies(sessions, result.conversation_id)[0]
    assert "小禾" in greeting
    page = login("agent").get(f"/service/conversations/{result.conversation_id}")
    suggestions = re.findall(r'class="btn btn-sm suggestion" data-text="([^"]*)"', page.text)
    assert all("小禾" not in s and s != greeting for s in suggestions), suggestions


@pytest.mark.usefixtures("staff", "kb")
def test_transfer_defaults_to_an_online_agent_never_an_offline_admin(
        login: Login, make_user: object, sessions: sessionmaker[Session],  # noqa: F811
        settings: Settings) -> None:
    make_user("agent2", "agent")  # type: ignore[operator]
    customer(sessions, settings)
    result = say(sessions, "转人工", "w-1")
    client = login("agent")
    url = f"/service/conversations/{result.conversation_id}"

    nobody = client.get(url).text
    # Nobody online: no one is preselected, the agent has to choose.
    assert re.search(r'<option value="" selected disabled>[^<]*暂无在线客服', nobody)
    assert not re.search(r'<option value="\d+"[^>]* selected>', nobody)

    with sessions() as s:
        agent2 = s.scalar(select(User.id).where(User.username == "agent2"))
        assert agent2 is not None
        desk.set_agent_status(s, agent2, "online")
        s.commit()
    page = client.get(url).text
    chosen = re.findall(r'<option value="(\d+)" data-status="(\w+)" selected>([^<]*)<', page)
    assert [(v, st) for v, st, _ in chosen] == [(str(agent2), "online")], chosen
    assert chosen[0][2].startswith("agent2 同学（在线")
    options = re.findall(r'<option value="\d+" data-status="(\w+)"', page)
    assert options[0] == "online" and options[-1] == "offline"


@pytest.mark.usefixtures("staff")
@pytest.mark.parametrize(("path", "active"), [("/service/metrics", "客服指标"),
                                               ("/service", "客服工作台")])
def test_only_the_page_being_viewed_is_highlighted_in_the_navigation(
        login: Login, path: str, active: str) -> None:  # noqa: F811
    html = login("admin").get(path).text
    highlighted = re.findall(r'class="active" aria-current="page">([^<]+)<', html)
    assert highlighted == [active]


@pytest.mark.usefixtures("staff", "kb")
def test_my_conversations_show_local_time_not_iso_timestamps(
        login: Login, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    customer(sessions, settings)
    result = say(sessions, "转人工", "w-1")
    client = login("agent")
    with sessions() as s:
        agent = s.scalar(select(User.id).where(User.username == "agent"))
        assert agent is not None
        desk.take(s, result.conversation_id, agent)
        s.commit()
    html = client.get("/service").text
    assert "我的会话（1）" in html
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", html)
