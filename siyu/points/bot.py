"""The web chat's check-in (签到), run by the bot (:mod:`siyu.service.bot`) before intent
recognition: a customer who types 签到 (我要签到, 每日签到, 签到领积分 ...) checks in
through :func:`siyu.points.earn.check_in` and is told the points and the balance; a second
签到 the same brand-local day is told they already checked in, and nothing is written."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy.orm import Session

from siyu.points import earn

CHECKIN_RE = re.compile(r"^\s*(?:我要|我想|帮我)?(?:每日|今日|今天)?签到(?:一下|领积分|打卡)?\s*"
                        r"[!！。.~～]*\s*$")
ACTION = "points_checkin"


def recognise(text: str) -> bool:
    return bool(CHECKIN_RE.match(text or ""))


def reply(session: Session, customer_id: int, *, salutation: str, now: dt.datetime,
          timezone: str) -> tuple[str, str]:
    """Check the customer in; returns (the bot's reply, the decision's reason)."""
    try:
        done = earn.check_in(session, customer_id, now=now, timezone=timezone)
    except earn.CheckInOff:
        return (f"{salutation}，目前暂未开放签到领积分。购物、邀请好友都可以获得积分，"
                "积分可在小程序「会员中心」兑换优惠券和礼品。", "签到积分未开启")
    if done.created:
        return (f"{salutation}，签到成功！获得 {done.points} 积分，您当前共有 {done.balance} "
                "积分。明天记得再来签到哦～", f"签到 +{done.points} 积分")
    return (f"{salutation}，您今天已经签到过了（已获得 {done.points} 积分），当前共有 "
            f"{done.balance} 积分，明天再来签到吧～", "今天已签到，未重复发放")
