"""The WeCom welcome message (欢迎语): ``externalcontact/send_welcome_msg``.

When a customer adds an employee, WeCom's ``change_external_contact`` callback
(``ChangeType`` ``add_external_contact``) carries a ``WelcomeCode``: the only way to greet the
customer in that chat, valid once and only for 20 seconds after the event. A playbook step on
channel ``wecom_welcome`` hands the code to this adapter in the delivery's ``content``
(``welcome_code``, and ``welcome_until``, the moment it stops being valid); a delivery that
reaches the adapter after that moment fails without calling WeCom. Never re-sent after an
unknown outcome (the code is single-use). The code is never logged nor put in an error.
"""

from __future__ import annotations

import datetime as dt

from siyu.channels.desk import OutboundMessage, Recipient
from siyu.channels.outbox import DeliveryFailed, DeliveryResult
from siyu.channels.wecom.adapter import WeComTaskAdapter, _clip
from siyu.channels.wecom.client import WeComApiError
from siyu.db import utcnow

PATH = "/cgi-bin/externalcontact/send_welcome_msg"


class WeComWelcomeAdapter(WeComTaskAdapter):
    """Sends a text welcome message with the add-contact event's welcome code."""

    channel = "wecom_welcome"

    def send(self, message: OutboundMessage, customer: Recipient) -> DeliveryResult:
        code = message.content.get("welcome_code")
        if not isinstance(code, str) or not code:
            raise DeliveryFailed("no WeCom welcome code for this message")
        until = message.content.get("welcome_until")
        try:
            expires = dt.datetime.fromisoformat(str(until))
        except ValueError:
            raise DeliveryFailed("the welcome message has no valid expiry") from None
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        if utcnow() > expires:
            raise DeliveryFailed("the WeCom welcome code expired before the send "
                                 "(platform.welcome_code_seconds after the add-contact)")
        body = {"welcome_code": code, "text": {"content": _clip(message.text)}}
        try:
            data = self.client().call(PATH, body)
        except WeComApiError as exc:
            # WeCom's message names the errcode, never the code we sent.
            raise DeliveryFailed(exc.message, retryable=exc.retryable,
                                 ambiguous=exc.ambiguous) from None
        return DeliveryResult("sent", str(data.get("msgid") or "") or None)
