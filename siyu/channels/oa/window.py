"""The customer-service message window: when the official account may still answer.

The platform lets an account answer a follower through ``message/custom/send`` for 48 hours
after the follower's last message, with a few messages in that window (``SIYU_OA_WINDOW_HOURS``,
``SIYU_OA_WINDOW_MAX_MESSAGES``; 48 h and 5 as the platform states them today). siyu checks
the window twice: when an agent replies (so the desk can refuse with the reason and the
channels that remain) and again just before delivery (time passes while a reply waits).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from siyu.channels import desk
from siyu.db import utcnow
from siyu.kit.timeutil import local

CHANNEL = "oa"
# Replies that use up the window's quota: queued ones will be sent, so they count when an
# agent asks; at delivery only those that went out count.
PENDING = ("queued", "sent", "delivered")
SENT = ("sent", "delivered")


@dataclass(frozen=True)
class Window:
    """Whether a reply may go out now; ``reason`` (Chinese, for the agent) when not."""

    open: bool
    code: str | None = None  # no_message | expired | cap_reached
    reason: str | None = None
    last_inbound_at: dt.datetime | None = None
    closes_at: dt.datetime | None = None
    used: int = 0
    cap: int = 0

    @property
    def remaining(self) -> int:
        return max(self.cap - self.used, 0)


def reply_window(session: Session, customer_id: int, *, hours: float, cap: int,
                 counting: tuple[str, ...] = PENDING, exclude_id: int | None = None,
                 now: dt.datetime | None = None, timezone: str = "Asia/Shanghai") -> Window:
    """The customer's window on the official account now."""
    now = now or utcnow()
    last = desk.last_inbound_at(session, customer_id, channel=CHANNEL)
    if last is None:
        return Window(False, "no_message", "客户从未在公众号给我们发过消息，无法发送客服消息",
                      cap=cap)
    closes = last + dt.timedelta(hours=hours)
    wrote = local(last, timezone).strftime("%m-%d %H:%M")
    if now >= closes:
        return Window(False, "expired",
                      f"公众号客服消息窗口已关闭：客户最后一条消息在 {wrote}，已超过 "
                      f"{hours:g} 小时", last, closes, cap=cap)
    used = desk.outbound_count_since(session, customer_id, channel=CHANNEL, since=last,
                                     statuses=counting, exclude_id=exclude_id)
    if used >= cap:
        return Window(False, "cap_reached",
                      f"公众号客服消息已达上限：客户 {wrote} 的消息之后最多回复 {cap} 条，"
                      f"需等客户再次发消息", last, closes, used, cap)
    return Window(True, None, None, last, closes, used, cap)
