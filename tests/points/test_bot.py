"""「我有多少积分」 answered by the bot from the ledger, through the service desk path (a web
chat message in, the bot's reply out): the balance, what expires when, how to use them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.points import service as points
from tests.service.test_desk import customer, decision, kb, replies, say

__all__ = ["kb"]  # the fixture



def test_the_bot_answers_the_balance_and_what_expires_from_the_ledger(
        sessions: sessionmaker[Session], settings: Settings, kb: None, one_year: None) -> None:
    # an imported running figure opens the ledger at the first entry (dated then, so it
    # expires with this year's points, not with last year's)
    cid = customer(sessions, settings, attributes={"points": 8620})
    this_year = dt.datetime.now(dt.UTC).year
    with sessions() as s:
        points.add_entry(s, cid, 800, source="order", key="o-old",
                         at=dt.datetime(this_year - 1, 5, 1, tzinfo=dt.UTC))
        points.add_entry(s, cid, 500, source="manual", key="m-new")
        points.add_reward(s, "试用装", 300)
        points.add_reward(s, "50 元优惠券", 1000)
        points.add_reward(s, "保温杯", 2000)
        points.add_reward(s, "限量款", 100, stock=0)  # none left
        points.redeem(s, cid, "试用装", key="r1")  # takes 300 of last year's 800
        s.commit()
    result = say(sessions, "我有多少积分", "w-1")
    text = replies(sessions, result.conversation_id)[-1][1]
    assert text.startswith("林女士，您当前有 9620 积分（约可抵 ¥96.20）。"), text
    assert f"其中 500 积分将于 {this_year} 年 12 月 31 日后过期" in text
    assert "100 积分抵 1 元" in text
    assert ("您现在就可以兑换：保温杯（2000 积分）、50 元优惠券（1000 积分）、"
            "试用装（300 积分）。") in text
    assert "限量款" not in text
    made = decision(sessions, result.message_id)
    assert made.intent == "membership_points" and made.action == "action"
    assert "查询积分" in made.reason


def test_a_negative_balance_says_why_redemption_waits(
        sessions: sessionmaker[Session], settings: Settings, kb: None) -> None:
    cid = customer(sessions, settings)
    with sessions() as s:
        points.add_entry(s, cid, -150, source="order_refund", key="SO-9",
                         allow_negative_balance=True)
        s.commit()
    result = say(sessions, "查一下积分", "w-1")
    text = replies(sessions, result.conversation_id)[-1][1]
    assert "您当前积分为 -150" in text and "暂时不能兑换" in text


def test_points_that_never_expire_say_so(sessions: sessionmaker[Session], settings: Settings,
                                          kb: None) -> None:
    cid = customer(sessions, settings)
    with sessions() as s:
        points.add_entry(s, cid, 60, source="referral", key="x:referred")
        s.commit()
    text = replies(sessions, say(sessions, "我有多少积分", "w-1").conversation_id)[-1][1]
    assert "您当前有 60 积分（约可抵 ¥0.60）" in text and "长期有效" in text
    assert "兑换：" not in text


def test_the_demo_knowledge_base_says_what_the_default_expiry_is() -> None:
    """The demo KB's points answer and the configured default agree: with
    SIYU_POINTS_EXPIRE_AFTER_YEARS at its default 0, points never expire."""
    import json
    from pathlib import Path

    import siyu.kb
    from siyu.points.config import PointsSettings

    data = json.loads((Path(siyu.kb.__file__).parent / "data" / "demo_kb.json")
                      .read_text(encoding="utf-8"))
    answer = next(i["answer"] for i in data["intents"] if i["name"] == "membership_points")
    assert PointsSettings.model_fields["points_expire_after_years"].default == 0
    assert "长期有效" in answer
    assert not any(word in answer for word in ("清零", "到期", "过期"))
    assert "100 积分抵 1 元" in answer  # SIYU_POINTS_YUAN_PER_POINT's default 0.01
    assert PointsSettings.model_fields["points_yuan_per_point"].default == 0.01
