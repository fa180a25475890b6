"""The demo brand's service desk: its advisors (role agent) get skill groups, so hand-offs
route by what the customer asked (订单物流 / 售后 / 产品咨询 / 会员权益); every fourth advisor
is a generalist who takes anything. All start offline: whoever signs in goes online. And
months of closed conversations (see ``seed_service_history``)."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.models import User
from siyu.customers.models import Customer
from siyu.service.models import Agent, Conversation, CsatAnswer, Message
from siyu.service.service import GENERAL, HANDOFF_NOTICE, SKILL_GROUPS

CAPACITY = 5


def seed_agents(session: Session) -> int:
    """Agent settings for every active agent-role user without any; returns how many."""
    groups = [g for g in SKILL_GROUPS if g != GENERAL]
    have = set(session.scalars(select(Agent.user_id)))
    users = [u for u in session.scalars(select(User.id).where(User.role == "agent",
                                                               User.is_active)
                                        .order_by(User.id)) if u not in have]
    for i, user_id in enumerate(users):
        skills = [] if i % 4 == 3 else [groups[i % len(groups)]]
        session.add(Agent(user_id=user_id, status="offline", capacity=CAPACITY, skills=skills))
    session.flush()
    return len(users)


# What the demo's customers asked over the months: (intent, what they typed, the bot's
# answer, the share of such conversations handed to a person, and why).
_TOPICS: tuple[tuple[str, str, str, float, str], ...] = (
    ("order_status", "我的订单到哪了", "为您查到订单已发货，预计明天送达。", 0.10,
     "客户要求转人工"),
    ("delivery_delay", "快递怎么还没到", "很抱歉让您久等了，包裹正在加急派送中。", 0.45,
     "客户要求转人工"),
    ("return_request", "我想退货", "可以的，收货 7 天内未拆封的商品支持无理由退货。", 0.35,
     "客户要求转人工"),
    ("damaged_item", "收到的东西坏了", "非常抱歉，请拍照发给我们，马上为您补发。", 0.70,
     "客户投诉"),
    ("product_effect", "蛋白粉多久能见效", "坚持每天一勺，配合运动一般 4 到 6 周能感觉到变化。",
     0.15, "置信度低（0.31），无匹配常见问题，转人工"),
    ("membership_points", "积分怎么用", "积分可在下单时抵扣，100 积分抵 1 元。", 0.05,
     "客户要求转人工"),
    ("invoice", "怎么开发票", "在订单详情页点「申请开票」即可，电子发票会发到您的邮箱。", 0.10,
     "置信度低（0.27），无匹配常见问题，转人工"),
)
_AGENT_REPLY = "您好，我是您的专属顾问，这就帮您处理。"


def seed_service_history(session: Session, *, now: dt.datetime, seed: int = 42,
                         conversations: int = 300, days: int = 120) -> int:
    """Closed conversations of the last ``days`` days (denser lately): the customer's
    question, the bot's answer or a hand-off to an advisor who replied within minutes, and a
    CSAT score that differs by advisor and by topic, so the agent desk's history and the
    service metrics are not blank on a new demo. Once only (0 if any conversation exists);
    showcase customers (ids 1-5) are left to their own stories."""
    if session.scalar(select(Conversation.id).limit(1)) is not None:
        return 0
    rng = random.Random(seed)
    customers = list(session.scalars(select(Customer.id).where(
        Customer.status == "active", Customer.id > 5).order_by(Customer.id).limit(5_000)))
    agents = list(session.scalars(select(User.id).where(User.role == "agent", User.is_active)
                                  .order_by(User.id)))
    if not customers or not agents:
        return 0
    skill = {a.user_id: (a.skills or [GENERAL])[0] for a in session.scalars(select(Agent))}
    quality = {a: rng.uniform(3.6, 4.8) for a in agents}
    utc_now = now.astimezone(dt.UTC)
    for _ in range(conversations):
        # Squaring a uniform puts more conversations in recent weeks.
        opened = utc_now - dt.timedelta(days=days * rng.random() ** 2,
                                          minutes=rng.uniform(30, 600))
        intent, question, answer, handoff_share, reason = rng.choice(_TOPICS)
        handed = rng.random() < handoff_share
        agent = rng.choice(agents) if handed else None
        conv = Conversation(customer_id=rng.choice(customers), channel="webchat",
                            status="closed", last_intent=intent, created_at=opened,
                            handled_by="agent" if handed else "bot")
        session.add(conv)
        session.flush()
        at = opened
        msgs = [Message(conversation_id=conv.id, direction="in", channel="webchat",
                        sender="customer", text=question, status="received", created_at=at)]
        at += dt.timedelta(seconds=rng.uniform(1, 3))
        if handed:
            assert agent is not None
            conv.handoff_reason, conv.waiting_since = reason, at
            conv.skill_group, conv.assigned_user_id = skill.get(agent, GENERAL), agent
            msgs.append(Message(conversation_id=conv.id, direction="out", channel="webchat",
                                sender="system", text=HANDOFF_NOTICE, status="sent",
                                created_at=at))
            at += dt.timedelta(seconds=rng.uniform(20, 300))
            conv.first_response_at = at
            msgs.append(Message(conversation_id=conv.id, direction="out", channel="webchat",
                                sender="agent", agent_user_id=agent, text=_AGENT_REPLY,
                                status="sent", created_at=at))
            score = quality[agent] - (0.6 if intent in ("damaged_item", "delivery_delay")
                                      else 0.0)
        else:
            msgs.append(Message(conversation_id=conv.id, direction="out", channel="webchat",
                                sender="bot", text=answer, status="sent", created_at=at))
            score = 4.3 if intent not in ("delivery_delay", "return_request") else 3.7
        session.add_all(msgs)
        at += dt.timedelta(minutes=rng.uniform(2, 15))
        conv.last_message_at = conv.closed_at = at
        if rng.random() < 0.6:
            session.add(CsatAnswer(conversation_id=conv.id,
                                   score=min(5, max(1, round(rng.gauss(score, 0.7)))),
                                   handled_by=conv.handled_by, agent_user_id=agent,
                                   intent=intent, created_at=at))
    session.flush()
    return conversations


# What demo customers said lately that puts them in an after-sales scenario: the bot reads
# each message as it reads a real one (siyu.service.bot), and the scenarios' intent(...)
# rules see what it recognised. (intent the bot should recognise, texts)
SCENARIO_MESSAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("buy_for_family", ("想给我妈也买一盒", "给我爸妈也来一份", "我想帮我朋友买一盒",
                        "想给我婆婆也买一份燕麦", "帮我闺蜜也订一盒坚果")),
    ("switch_product", ("这个吃腻了想换别的试试", "燕麦吃够了想换坚果", "有换购活动吗",
                        "想换一款低糖的买", "下次想换一款别的产品")),
    ("return_request", ("我要退货", "怎么退货", "买多了想退一盒没拆封的")),
    ("exchange_request", ("能换货吗", "我想换个口味", "规格发错了要求换货")),
    ("complaint", ("我要投诉，快递一直不到也没人管", "服务太差了，我要投诉",
                   "你们这是什么态度，我要投诉")),
)


def seed_scenario_conversations(session: Session, *, now: dt.datetime, seed: int = 42,
                                per_kind: int = 40, days: float = 10.0) -> dict[str, int]:
    """Recent web-chat messages of buyers (ids above the showcase's) asking to buy for
    family, to switch product, to return or exchange, or complaining, each received through
    :func:`siyu.service.service.receive_inbound` and answered by the bot
    (:func:`siyu.service.bot.handle_inbound`) at the moment it was sent, within the last
    ``days`` days. Returns the bot's recognised intents and how often."""
    from siyu.customers.identity import IdentityRef
    from siyu.customers.models import Identity
    from siyu.events.models import Order
    from siyu.service import bot
    from siyu.service.service import receive_inbound

    rng = random.Random(seed)
    utc_now = now.astimezone(dt.UTC)
    since = utc_now - dt.timedelta(days=60)
    buyers = list(session.execute(
        select(Identity.customer_id, Identity.value)
        .where(Identity.kind == "external_id", Identity.customer_id > 5,
               Identity.customer_id.in_(select(Order.customer_id).where(Order.ts >= since)))
        .order_by(Identity.customer_id).limit(20_000)).all())
    if not buyers:
        return {}
    chosen = rng.sample(buyers, min(len(buyers), per_kind * len(SCENARIO_MESSAGES)))
    recognised: dict[str, int] = {}
    for n, (_cid, ext) in enumerate(chosen):
        _intent, texts = SCENARIO_MESSAGES[n % len(SCENARIO_MESSAGES)]
        sent = utc_now - dt.timedelta(days=days * rng.random(), minutes=rng.uniform(5, 60))
        got = receive_inbound(session, channel="webchat",
                              identities=[IdentityRef("external_id", ext)],
                              text=rng.choice(texts), external_id=f"demo-scenario-{n}",
                              sent_at=sent)
        out = bot.handle_inbound(session, got.message_id, now=sent)
        if out is not None and out.intent:
            recognised[out.intent] = recognised.get(out.intent, 0) + 1
    session.flush()
    return recognised
