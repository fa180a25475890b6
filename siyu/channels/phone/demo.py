"""The phone channel in ``siyu demo``: who the simulator can call as (the showcase
customers' numbers, or an unknown one) and weeks of past calls — some the bot resolved in a
few minutes, some handed to an advisor, with keypad or SMS CSAT — so the service metrics'
channel split and the with/without-bot chart have phone bars on a new demo."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.phone.models import PhoneCall
from siyu.customers.models import Customer, Identity

UNKNOWN_NUMBER = "13900009999"
# The showcase customers' numbers (siyu.demo.showcase) and what each call shows.
CALLERS: tuple[tuple[str, str], ...] = (
    ("+8613800138000", "黑金会员，几分钟前付款失败、包裹晚到"),
    ("+8613912345678", "投诉中：礼盒破损、快递晚到四天"),
    ("+8613500135000", "半年没有下单的老客户"),
    ("+8613600136000", "与妻子李娜共用的号码：先核实身份"),
    ("+8613700137000", "李娜本人的号码"),
)


def _local(number: str) -> str:
    return number[3:] if number.startswith("+86") else number


def demo_callers(session: Session) -> list[dict[str, str]]:
    """The numbers the simulator offers: each showcase customer's (with their name, when the
    demo holds them), then an unknown number."""
    holders = dict(session.execute(
        select(Identity.value, Customer.name).join(Customer, Customer.id == Identity.customer_id)
        .where(Identity.kind == "phone", Identity.value.in_([n for n, _ in CALLERS]))).all())
    out = [{"number": _local(number), "name": holders[number] or "客户", "story": story}
           for number, story in CALLERS if number in holders]
    out.append({"number": UNKNOWN_NUMBER, "name": "陌生号码", "story": "不认识的来电：新访客"})
    return out


def skill_group_names() -> dict[str, str]:
    from siyu.service.service import SKILL_GROUPS

    return dict(SKILL_GROUPS)


def agent_name(session: Session, answer: dict[str, Any]) -> str | None:
    """The display name of the agent a transfer action names, if any."""
    from siyu.auth.models import User

    for action in answer.get("actions", []):
        if action.get("type") == "transfer" and action.get("agent_user_id"):
            user = session.get(User, int(action["agent_user_id"]))
            return user.display_name if user else None
    return None


# What demo callers rang about: (intent, skill group, what they said, the bot's spoken
# answer, the share handed to a person, why).
_TOPICS: tuple[tuple[str, str, str, str, float, str], ...] = (
    ("order_status", "order", "我想查一下我的订单到哪了",
     "为您查到订单已经发货，预计明天送达。", 0.15, "客户要求转人工"),
    ("delivery_delay", "order", "快递好几天了还没到",
     "很抱歉让您久等了，包裹正在加急派送，今天之内会有快递员联系您。", 0.45, "客户要求转人工"),
    ("payment", "order", "我刚才付款没成功",
     "看到您刚才的付款没有成功，原因是银行卡余额不足，换一张卡或者用微信支付就可以了。",
     0.2, "客户要求转人工"),
    ("return_request", "aftersales", "我想退货",
     "可以的，收货七天内未拆封的商品支持无理由退货，退货方式我们会用短信发给您。", 0.4,
     "客户要求转人工"),
    ("damaged_item", "aftersales", "收到的东西是坏的",
     "非常抱歉，我们马上为您补发，请您保留好包装。", 0.75, "客户投诉"),
    ("membership_points", "membership", "我的积分怎么用",
     "积分可以在下单时抵扣，一百积分抵一元。", 0.05, "客户要求转人工"),
)


def seed_call_history(session: Session, *, now: dt.datetime, seed: int = 16,
                      calls: int = 140, days: int = 28) -> int:
    """Ended calls of the last ``days`` days: each a ``phone`` conversation with its
    transcript; the bot resolves most within a few minutes, the rest go to an advisor of
    the topic's skill group and take a quarter of an hour or more. Once only (0 if any
    call exists); showcase customers (ids 1-5) keep their own stories."""
    from siyu.service.models import Agent, Conversation, CsatAnswer, Message
    from siyu.service.service import GENERAL, HANDOFF_NOTICE

    if session.scalar(select(PhoneCall.id).limit(1)) is not None:
        return 0
    rng = random.Random(seed)
    callers = session.execute(
        select(Identity.customer_id, Identity.value).where(
            Identity.kind == "phone", Identity.customer_id > 5)
        .order_by(Identity.customer_id).limit(3_000)).all()
    agents = list(session.scalars(select(Agent)))
    if not callers or not agents:
        return 0
    by_skill: dict[str, list[int]] = {}
    for row in agents:
        for skill in row.skills or [GENERAL]:
            by_skill.setdefault(skill, []).append(row.user_id)
    utc_now = now.astimezone(dt.UTC)
    for n in range(calls):
        customer_id, number = rng.choice(callers)
        started = utc_now - dt.timedelta(days=days * rng.random(), minutes=rng.uniform(30, 600))
        intent, group, said, answer, handoff_share, reason = rng.choice(_TOPICS)
        handed = rng.random() < handoff_share
        conv = Conversation(customer_id=customer_id, channel="phone", status="closed",
                            last_intent=intent, created_at=started,
                            handled_by="agent" if handed else "bot")
        session.add(conv)
        session.flush()
        at = started + dt.timedelta(seconds=rng.uniform(4, 12))
        msgs = [Message(conversation_id=conv.id, direction="in", channel="phone",
                        sender="customer", text=said, status="received", created_at=at)]
        transcript = [{"who": "bot", "text": "您好，这里是客服中心，请问有什么可以帮您？",
                       "at": started.isoformat()},
                      {"who": "caller", "text": said, "at": at.isoformat(),
                       "confidence": round(rng.uniform(0.82, 0.98), 2)}]
        agent: int | None = None
        transferred_at = None
        if handed:
            agent = rng.choice(by_skill.get(group) or by_skill.get(GENERAL)
                               or [a.user_id for a in agents])
            transferred_at = at + dt.timedelta(seconds=rng.uniform(1, 2))
            conv.handoff_reason, conv.waiting_since = reason, transferred_at
            conv.skill_group, conv.assigned_user_id = group, agent
            conv.first_response_at = transferred_at + dt.timedelta(seconds=rng.uniform(20, 180))
            msgs.append(Message(conversation_id=conv.id, direction="out", channel="phone",
                                sender="system", text=HANDOFF_NOTICE, status="sent",
                                created_at=transferred_at))
            transcript += [{"who": "bot", "text": "好的，正在为您转接人工客服。",
                            "at": transferred_at.isoformat(), "reason": reason},
                           {"who": "system", "text": "人工已接听",
                            "at": conv.first_response_at.isoformat()}]
            ended = conv.first_response_at + dt.timedelta(minutes=rng.uniform(9, 26))
            score = 3.9 if intent not in ("damaged_item", "delivery_delay") else 3.3
        else:
            msgs.append(Message(conversation_id=conv.id, direction="out", channel="phone",
                                sender="bot", text=answer, status="sent",
                                created_at=at + dt.timedelta(seconds=1)))
            transcript.append({"who": "bot", "text": answer,
                               "at": (at + dt.timedelta(seconds=1)).isoformat()})
            ended = at + dt.timedelta(minutes=rng.uniform(1.2, 4.5))
            score = 4.4 if intent not in ("delivery_delay", "return_request") else 3.9
        session.add_all(msgs)
        conv.last_message_at = conv.closed_at = ended
        csat = None
        if rng.random() < 0.65:
            csat = min(5, max(1, round(rng.gauss(score, 0.7))))
            session.add(CsatAnswer(conversation_id=conv.id, score=csat,
                                   handled_by=conv.handled_by, agent_user_id=agent,
                                   intent=intent, created_at=ended))
            transcript.append({"who": "caller", "text": f"[按键 {csat}]", "at": ended.isoformat()}
                              if not handed else
                              {"who": "system", "text": f"短信满意度评价：{csat}分",
                               "at": ended.isoformat(), "via": "sms"})
        session.add(PhoneCall(
            call_id=f"DEMO-{n + 1:04d}", from_number=number, to_number="4008001234",
            customer_id=customer_id, conversation_id=conv.id, identified_by="phone",
            status="ended", skill_group=group if handed else None, transcript=transcript,
            started_at=started, transferred_at=transferred_at, ended_at=ended,
            duration_seconds=round((ended - started).total_seconds(), 1), csat=csat,
            created_at=started))
    session.flush()
    return calls
