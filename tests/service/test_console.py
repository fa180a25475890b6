"""The agent inbox console: permissions, the queue with the hand-off reason, a conversation
with the customer 360 and bot decisions, take / reply / transfer / close, the online toggle
and the metrics page."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.models import User
from siyu.config import Settings
from siyu.service.models import Agent, Conversation, CsatAnswer, Message
from tests.console.conftest import (  # noqa: F401  (console fixtures)
    Login,
    csrf_from,
    login,
    make_user,
    staff,
)
from tests.service.test_desk import customer, kb, say  # noqa: F401  (fixture kb)


def _user_id(sessions: sessionmaker[Session], username: str) -> int:
    with sessions() as s:
        uid = s.scalar(select(User.id).where(User.username == username))
        assert uid is not None
        return uid


@pytest.mark.usefixtures("staff")
def test_inbox_needs_the_agent_permission(login: Login) -> None:  # noqa: F811
    assert login("analyst").get("/service").status_code == 403
    assert login("analyst").get("/service/metrics").status_code == 403
    page = login("agent").get("/service")
    assert page.status_code == 200 and "客服工作台" in page.text
    assert "没有等待中的会话" in page.text


@pytest.mark.usefixtures("staff", "kb")
def test_handoff_appears_in_the_queue_and_the_agent_handles_it(
        login: Login, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    customer(sessions, settings, tier="VIP")
    result = say(sessions, "转人工", "w-1")
    conv_id = result.conversation_id
    client = login("agent")
    inbox = client.get("/service")
    assert f'data-conversation="{conv_id}"' in inbox.text
    assert "客户要求转人工" in inbox.text

    page = client.get(f"/service/conversations/{conv_id}")
    assert page.status_code == 200
    assert "林晓雯" in page.text and 'id="customer-tier">VIP<' in page.text
    assert 'data-action="handoff">转人工<' in page.text  # the bot's decision
    assert "客户要求转人工" in page.text
    token = csrf_from(page.text)

    # No CSRF token, no action.
    refused = client.post(f"/service/conversations/{conv_id}/reply", data={"text": "x"})
    assert refused.status_code in (400, 403)
    empty = client.post(f"/service/conversations/{conv_id}/reply",
                        data={"text": "  ", "csrf_token": token})
    assert empty.status_code == 200 and "回复内容不能为空" in empty.text

    sent = client.post(f"/service/conversations/{conv_id}/reply",
                       data={"text": "您好，我来帮您看看", "csrf_token": token})
    assert sent.status_code == 200 and "您好，我来帮您看看" in sent.text
    agent_id = _user_id(sessions, "agent")
    with sessions() as s:
        conv = s.get(Conversation, conv_id)
        assert conv is not None
        assert (conv.status, conv.assigned_user_id) == ("with_agent", agent_id)
        out = s.scalars(select(Message).where(Message.conversation_id == conv_id,
                                              Message.sender == "agent")).one()
        assert out.text == "您好，我来帮您看看" and out.agent_user_id == agent_id
    mine = client.get("/service")
    assert "我的会话（1）" in mine.text and "等待接入（0）" in mine.text

    poll = client.get(f"/service/conversations/{conv_id}/poll", params={"after": out.id})
    assert poll.json() == {"new": 0, "status": "with_agent"}
    assert client.get(f"/service/conversations/{conv_id}/poll",
                      params={"after": 0}).json()["new"] >= 2

    # Transfer to the operator, then close: the satisfaction question goes out.
    operator_id = _user_id(sessions, "operator")
    moved = client.post(f"/service/conversations/{conv_id}/transfer",
                        data={"to_user_id": operator_id, "csrf_token": token})
    assert moved.status_code == 200 and "已转接" in moved.text
    closed = client.post(f"/service/conversations/{conv_id}/close",
                         data={"csrf_token": token})
    assert "会话已结束" in closed.text and "等待客户评价" in closed.text
    # The history in words: who did what, by name.
    history = re.findall(r'<li data-kind="\w+">[^<]*· ([^<]*)</li>', closed.text)
    assert history == ["机器人转人工：客户要求转人工（综合）", "agent 同学 接入会话",
                       "agent 同学 → 分配给 operator 同学", "agent 同学 转接给 operator 同学",
                       "agent 同学 结束会话"], history
    with sessions() as s:
        conv = s.get(Conversation, conv_id)
        assert conv is not None and conv.status == "closed"
        assert conv.assigned_user_id == operator_id and conv.csat_pending
    again = client.post(f"/service/conversations/{conv_id}/reply",
                        data={"text": "还在吗", "csrf_token": token})
    assert "发送失败" in again.text

    say(sessions, "4", "w-2")
    with sessions() as s:
        assert s.scalars(select(CsatAnswer.score)).all() == [4]
    metrics = client.get("/service/metrics")
    assert metrics.status_code == 200
    assert 'id="m-handoff-rate">100.0%<' in metrics.text
    assert "operator 同学" in metrics.text and "<svg" in metrics.text


@pytest.mark.usefixtures("staff")
def test_status_toggle_and_unknown_conversation(
        login: Login, sessions: sessionmaker[Session]) -> None:  # noqa: F811
    client = login("agent")
    page = client.get("/service")
    token = csrf_from(page.text)
    online = client.post("/service/status", data={"status": "online", "csrf_token": token})
    assert "已上线" in online.text and 'id="go-away"' in online.text
    bad = client.post("/service/status", data={"status": "asleep", "csrf_token": token})
    assert "状态未更新" in bad.text
    with sessions() as s:
        agent = s.get(Agent, _user_id(sessions, "agent"))
        assert agent is not None and agent.status == "online"
    missing = client.get("/service/conversations/999999")
    assert missing.status_code == 404 and "没有编号为 999999 的会话" in missing.text


@pytest.mark.usefixtures("staff")
def test_an_agent_sets_skill_groups_and_capacity(
        login: Login, sessions: sessionmaker[Session]) -> None:  # noqa: F811
    from siyu.service.models import Agent

    client = login("agent")
    page = client.get("/service")
    assert 'id="skills-form"' in page.text and "售后" in page.text
    token = csrf_from(page.text)
    saved = client.post("/service/skills", data={"skills": ["aftersales", "order"],
                                                  "capacity": "3", "csrf_token": token})
    assert "已保存：技能组 售后、订单物流，同时接待 3 个" in saved.text
    uid = _user_id(sessions, "agent")
    with sessions() as s:
        agent = s.get(Agent, uid)
        assert agent is not None and (agent.skills, agent.capacity) == (["aftersales", "order"], 3)
    bad = client.post("/service/skills", data={"skills": ["vip"], "capacity": "3",
                                                "csrf_token": token})
    assert "未保存" in bad.text and "skills: unknown skill group &#39;vip&#39;" in bad.text
    with sessions() as s:
        agent = s.get(Agent, uid)
        assert agent is not None and agent.skills == ["aftersales", "order"]


@pytest.mark.usefixtures("staff", "kb")
def test_suggested_replies_fill_the_intent_template_for_this_customer(
        login: Login, sessions: sessionmaker[Session], settings: Settings  # noqa: F811
) -> None:
    customer(sessions, settings, attributes={"points": 1280})
    result = say(sessions, "积分怎么用", "w-1")
    page = login("agent").get(f"/service/conversations/{result.conversation_id}")
    suggestions = re.findall(r'class="btn btn-sm suggestion" data-text="([^"]*)"', page.text)
    assert suggestions, page.text
    assert suggestions[0].startswith("林女士，您当前积分 1280。")
