"""What the channels offer the rest of siyu: whether a reply can go out on a conversation's
channel now, and if not, why and through which channels the customer can still be reached.

The service desk asks :func:`reply_check` before an agent's reply is queued, so a reply the
channel cannot deliver (the official account's 48-hour customer-service window) is refused
with its reason on the agent's screen instead of failing later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import desk
from siyu.channels.config import get_channel_settings
from siyu.config import get_settings

# How each identity kind can still reach a customer when their channel cannot.
_REACH = (("phone", "sms", "短信"), ("wecom_external_userid", "wecom", "企业微信"),
          ("wecom_userid", "wecom", "企业微信"))


@dataclass(frozen=True)
class ReplyCheck:
    """``allowed``, or the ``reason`` (Chinese, for the agent), a stable ``code`` and the
    ``alternatives`` left (``{"channel", "label"}``)."""

    allowed: bool
    code: str | None = None
    reason: str | None = None
    alternatives: list[dict[str, str]] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        offered = "、".join(a["label"] for a in self.alternatives)
        return f"{self.reason}。" + (f"可改用：{offered}。" if offered else
                                    "该客户没有其他可联系的渠道。")


def _alternatives(session: Session, customer_id: int, channel: str) -> list[dict[str, str]]:
    cs = get_channel_settings()
    out: list[dict[str, str]] = []
    kinds = desk.identity_kinds(session, customer_id)
    if channel == "oa" and cs.oa_template_id and "wechat_openid" in kinds:
        out.append({"channel": "oa_template", "label": "公众号模板消息"})
    for kind, target, label in _REACH:
        if kind in kinds and target != channel and all(a["channel"] != target for a in out):
            out.append({"channel": target, "label": label})
    return out


def reply_check(session: Session, conversation_id: int) -> ReplyCheck:
    """Whether a reply queued now on the conversation's channel can be delivered."""
    route = desk.conversation_route(session, conversation_id)
    if route is None:
        return ReplyCheck(True)
    channel, customer_id = route
    if channel == "phone":
        return ReplyCheck(False, "phone_call_only",
                          "电话会话只能在通话中交谈，文字回复不会送达客户",
                          _alternatives(session, customer_id, channel))
    if channel != "oa":
        return ReplyCheck(True)
    from siyu.channels.oa.window import reply_window

    cs = get_channel_settings()
    window = reply_window(session, customer_id, hours=cs.oa_window_hours,
                          cap=cs.oa_window_max_messages, timezone=get_settings().timezone)
    if window.open:
        return ReplyCheck(True, detail={"remaining": window.remaining})
    return ReplyCheck(False, f"oa_{window.code}", window.reason,
                      _alternatives(session, customer_id, channel),
                      {"last_inbound_at": window.last_inbound_at.isoformat()
                       if window.last_inbound_at else None,
                       "closes_at": window.closes_at.isoformat() if window.closes_at else None,
                       "used": window.used, "cap": window.cap})


def phone_calls(session: Session, conversation_id: int) -> list[dict[str, Any]]:
    """The phone calls of a conversation, oldest first, each with its whole transcript (the
    greeting and everything said on the keypad or aloud, as the call centre heard it)."""
    from sqlalchemy import select

    from siyu.channels.phone.calls import call_to_dict
    from siyu.channels.phone.models import PhoneCall

    return [call_to_dict(c) for c in session.scalars(select(PhoneCall).where(
        PhoneCall.conversation_id == conversation_id).order_by(PhoneCall.started_at))]
