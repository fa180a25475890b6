"""Routing hand-offs to people: the skill group of what the customer asked, generalists as
the fallback, the queue drained when an agent comes online or frees a place, and agent
settings validated."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.service import create_user
from siyu.config import Settings
from siyu.errors import InvalidInput
from siyu.service import service as desk
from siyu.service.models import Agent, Conversation, ConversationEvent
from tests.service.test_desk import customer, decision, kb, say  # noqa: F401  (fixture kb)


def agent(sessions: sessionmaker[Session], username: str, skills: list[str],
          status: str = "online", capacity: int = 5) -> int:
    with sessions() as s:
        user = create_user(s, username, "pw-123456789", "agent", display_name=username)
        desk.set_agent_status(s, user.id, status, capacity, skills)
        s.commit()
        return user.id


def holder(sessions: sessionmaker[Session], conversation_id: int) -> tuple[str, int | None]:
    with sessions() as s:
        conv = s.get(Conversation, conversation_id)
        assert conv is not None
        return conv.status, conv.assigned_user_id


@pytest.mark.usefixtures("kb")
def test_a_complaint_goes_to_after_sales_not_to_the_less_loaded_order_desk(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    after_sales = agent(sessions, "shouhou", ["aftersales"])
    agent(sessions, "dingdan", ["order"])
    customer(sessions, settings)
    result = say(sessions, "我要投诉，你们的东西质量太差了", "w-1")
    made = decision(sessions, result.message_id)
    assert made.intent == "complaint" and made.action == "handoff"
    assert made.steps[-1]["skill_group"] == "aftersales"
    assert holder(sessions, result.conversation_id) == ("with_agent", after_sales)
    with sessions() as s:
        conv = s.get(Conversation, result.conversation_id)
        assert conv is not None and conv.skill_group == "aftersales"
        log = s.scalars(select(ConversationEvent).where(
            ConversationEvent.conversation_id == conv.id,
            ConversationEvent.kind == "assigned")).one()
        assert log.actor == "routing:skill"


@pytest.mark.usefixtures("kb")
def test_a_bare_request_for_a_person_keeps_the_topic_and_falls_back_to_generalists(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    agent(sessions, "chanpin", ["product"])
    generalist = agent(sessions, "zonghe", [])
    customer(sessions, settings)
    first = say(sessions, "快递到哪了", "w-1")
    assert decision(sessions, first.message_id).action != "handoff"
    second = say(sessions, "转人工", "w-2")
    made = decision(sessions, second.message_id)
    # 转人工 right after asking about the parcel: the order desk's group; nobody there is
    # online, so the generalist takes it rather than the product specialist.
    assert made.steps[-1]["skill_group"] == "order"
    assert holder(sessions, second.conversation_id) == ("with_agent", generalist)


@pytest.mark.usefixtures("kb")
def test_the_queue_drains_when_an_agent_comes_online_and_when_a_place_frees(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    busy = agent(sessions, "xiaochen", [], status="offline", capacity=1)
    customer(sessions, settings)
    first = say(sessions, "转人工", "w-1")
    assert holder(sessions, first.conversation_id) == ("waiting", None)
    with sessions() as s:
        desk.set_agent_status(s, busy, "online")
        s.commit()
    assert holder(sessions, first.conversation_id) == ("with_agent", busy)

    # A second customer queues behind: the only agent is at capacity.
    with sessions() as s:
        from siyu.customers.service import upsert_customers

        upsert_customers(s, [{"id": "C2", "identities": [
            {"kind": "phone", "value": "13900139000"}], "name": "周明"}], settings=settings)
        from siyu.customers.identity import IdentityRef

        got = desk.receive_inbound(s, channel="webchat", text="转人工", external_id="w-9",
                                   identities=[IdentityRef("phone", "+8613900139000")])
        s.commit()
    from siyu.service import bot

    with sessions() as s:
        bot.handle_inbound(s, got.message_id)
        s.commit()
    assert holder(sessions, got.conversation_id) == ("waiting", None)
    with sessions() as s:
        desk.close(s, first.conversation_id, actor=f"user:{busy}")
        s.commit()
    assert holder(sessions, got.conversation_id) == ("with_agent", busy)


def test_agent_settings_are_validated_and_nothing_changes_on_error(
        sessions: sessionmaker[Session]) -> None:
    uid = agent(sessions, "xiaowang", ["order"], status="away", capacity=3)
    with sessions() as s, pytest.raises(InvalidInput) as err:
        desk.set_agent_status(s, uid, "online", 0, ["order", "vip-only"])
    assert [d["field"] for d in err.value.details] == ["capacity", "skills"]
    assert "vip-only" in err.value.message
    with sessions() as s:
        stored = s.get(Agent, uid)
        assert stored is not None
        assert (stored.status, stored.capacity, stored.skills) == ("away", 3, ["order"])
    with sessions() as s:
        desk.set_agent_status(s, uid, skills=["product", "order", "product"])
        s.commit()
        stored = s.get(Agent, uid)
        assert stored is not None and stored.skills == ["order", "product"]
        assert stored.status == "away"
