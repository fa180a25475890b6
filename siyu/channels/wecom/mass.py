"""WeCom customer mass send (客户群发): ``externalcontact/add_msg_template``.

A mass send does not reach the customer by itself: WeCom creates a task that the employee
(the customer's advisor, ``content["sender"]``) must confirm in the WeCom app. So a delivery
goes ``created`` when WeCom accepted the task (its ``msgid`` kept as the provider id) and only
``sent`` (or ``failed``) once :func:`refresh_results` read the outcome back with
``externalcontact/get_groupmsg_send_result``. Never re-sent after an unknown outcome: a
second task would be a second message the employee may confirm.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.config import ChannelSettings
from siyu.channels.desk import OutboundMessage, Recipient
from siyu.channels.models import Delivery
from siyu.channels.outbox import DeliveryFailed, DeliveryResult
from siyu.channels.wecom.adapter import _clip
from siyu.channels.wecom.client import TokenCache, WeComApiError, WeComClient
from siyu.config import Settings
from siyu.db import utcnow

# get_groupmsg_send_result's per-recipient status: 0 not yet sent, 1 sent, 2 not a contact
# (any more), 3 the customer already got another mass message (WeCom's own cap).
SEND_STATUS = {1: "sent", 2: "failed", 3: "failed"}
SEND_REASON = {2: "not the employee's contact", 3: "the customer already received another mass "
               "message (WeCom's limit)"}


class WeComMassAdapter:
    """Creates a single-customer mass-send task for the customer's advisor."""

    channel = "wecom_mass"

    def __init__(self, settings: Settings, channel_settings: ChannelSettings, *,
                 http: httpx.Client | None = None, cache: TokenCache | None = None) -> None:
        self._settings = settings
        self._http = http or httpx.Client(timeout=channel_settings.wecom_timeout_seconds)
        self._cache = cache

    def client(self) -> WeComClient:
        return WeComClient(api_base=self._settings.wecom_api_base,
                           corp_id=self._settings.wecom_corp_id,
                           secret=self._settings.wecom_corp_secret.get_secret_value(),
                           http=self._http, cache=self._cache)

    def can_resend(self, message: OutboundMessage, customer: Recipient) -> bool:
        return False

    def send(self, message: OutboundMessage, customer: Recipient) -> DeliveryResult:
        external = customer.first("wecom_external_userid")
        if not external:
            raise DeliveryFailed("the customer is not a WeCom external contact")
        sender = str(message.content.get("sender") or "")
        if not sender:
            raise DeliveryFailed("no employee to send the mass message: the customer has no "
                                 "advisor with a WeCom userid")
        body = {"chat_type": "single", "external_userid": [external], "sender": sender,
                "text": {"content": _clip(message.text)}}
        try:
            data = self.client().call("/cgi-bin/externalcontact/add_msg_template", body)
        except WeComApiError as exc:
            raise DeliveryFailed(exc.message, retryable=exc.retryable,
                                 ambiguous=exc.ambiguous) from None
        if external in (data.get("fail_list") or []):
            raise DeliveryFailed("WeCom refused the customer (fail_list)")
        return DeliveryResult("created", str(data.get("msgid") or "") or None)

    def send_result(self, msgid: str, sender: str) -> list[dict[str, Any]]:
        """The per-recipient outcome of task ``msgid`` for employee ``sender``."""
        data = self.client().call("/cgi-bin/externalcontact/get_groupmsg_send_result",
                                  {"msgid": msgid, "userid": sender, "limit": 1000})
        items = data.get("send_list") or []
        return [i for i in items if isinstance(i, dict)]


def refresh_results(session: Session, adapter: WeComMassAdapter, *, limit: int = 200) -> int:
    """Read back created mass-send tasks; move those WeCom reports as sent or failed.
    Returns how many changed."""
    rows = list(session.scalars(select(Delivery).where(Delivery.channel == "wecom_mass",
                                                       Delivery.state == "created")
                                .order_by(Delivery.id).limit(limit)))
    changed = 0
    for delivery in rows:
        content = delivery.content or {}
        if not delivery.provider_message_id or not content.get("sender"):
            continue
        try:
            items = adapter.send_result(delivery.provider_message_id, str(content["sender"]))
        except WeComApiError:
            continue
        for item in items:
            status = SEND_STATUS.get(int(item.get("status") or 0))
            if status is None:
                continue
            delivery.state = status
            delivery.finished_at = utcnow()
            delivery.last_error = SEND_REASON.get(int(item.get("status") or 0))
            changed += 1
            break
    return changed


def waiting_count(session: Session) -> int:
    """Mass-send tasks still waiting for the employee to confirm them."""
    from sqlalchemy import func

    return int(session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.channel == "wecom_mass", Delivery.state == "created")) or 0)
