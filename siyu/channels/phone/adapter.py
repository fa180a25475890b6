"""The phone outbox adapter: a call speaks only while it lasts.

The bot's replies on a call are spoken in the webhook's answer and marked delivered there,
so the outbox never sends them. Anything else queued on a phone conversation (an agent's
typed reply, the satisfaction question when an agent closes it) cannot reach the caller:
it fails at once with that reason, shown beside the message.
"""

from __future__ import annotations

from siyu.channels.desk import OutboundMessage, Recipient
from siyu.channels.outbox import DeliveryFailed, DeliveryResult


class PhoneAdapter:
    channel = "phone"

    def can_resend(self, message: OutboundMessage, customer: Recipient) -> bool:
        return True

    def send(self, message: OutboundMessage, customer: Recipient) -> DeliveryResult:
        raise DeliveryFailed("电话渠道只在通话中说话：这条文字消息未送达客户")
