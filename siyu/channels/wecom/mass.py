"""WeCom customer mass send (客户群发): ``externalcontact/add_msg_template``.

A mass send does not reach the customer by itself: WeCom creates a task that the employee
(the customer's advisor, ``content["sender"]``) must confirm in the WeCom app. So a delivery
goes ``created`` when WeCom accepted the task (its ``msgid`` kept as the provider id) and only
``sent`` (or ``failed``) once :func:`refresh_results` read the outcome back with
``externalcontact/get_groupmsg_send_result``. Never re-sent after an unknown outcome: a
second task would be a second message the employee may confirm.

:class:`WeComGroupMassAdapter` does the same for a customer group (channel
``wecom_group_mass``, ``chat_type: "group"``): the task goes to the group's owner
(``content["sender"]``) for the group ``content["chat_id"]``; its result is read back the
same way, per group.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.desk import OutboundMessage, Recipient
from siyu.channels.models import Delivery
from siyu.channels.outbox import DeliveryFailed, DeliveryResult
from siyu.channels.wecom.adapter import WeComTaskAdapter, _clip
from siyu.channels.wecom.client import WeComApiError
from siyu.db import utcnow

# get_groupmsg_send_result's per-recipient status: 0 not yet sent, 1 sent, 2 not a contact
# (any more), 3 the customer already got another mass message (WeCom's own cap).
SEND_STATUS = {1: "sent", 2: "failed", 3: "failed"}
SEND_REASON = {2: "not the employee's contact", 3: "the customer already received another mass "
               "message (WeCom's limit)"}
GROUP_SEND_REASON = {2: "the group is no longer the owner's (or was dismissed)",
                     3: "the group already received another mass message (WeCom's limit)"}
MASS_CHANNELS = ("wecom_mass", "wecom_group_mass")


class WeComMassAdapter(WeComTaskAdapter):
    """Creates a single-customer mass-send task for the customer's advisor."""

    channel = "wecom_mass"

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
        return self._create_task(body, external, "the customer")

    def _create_task(self, body: dict[str, Any], target: str, what: str) -> DeliveryResult:
        """``add_msg_template`` with ``body``: the task is *created* (the employee confirms
        it in WeCom); WeCom's refusal of ``target`` (its ``fail_list``) fails the send."""
        try:
            data = self.client().call("/cgi-bin/externalcontact/add_msg_template", body)
        except WeComApiError as exc:
            raise DeliveryFailed(exc.message, retryable=exc.retryable,
                                 ambiguous=exc.ambiguous) from None
        if target in (data.get("fail_list") or []):
            raise DeliveryFailed(f"WeCom refused {what} (fail_list)")
        return DeliveryResult("created", str(data.get("msgid") or "") or None)

    def send_result(self, msgid: str, sender: str) -> list[dict[str, Any]]:
        """The per-recipient outcome of task ``msgid`` for employee ``sender``."""
        data = self.client().call("/cgi-bin/externalcontact/get_groupmsg_send_result",
                                  {"msgid": msgid, "userid": sender, "limit": 1000})
        items = data.get("send_list") or []
        return [i for i in items if isinstance(i, dict)]


class WeComGroupMassAdapter(WeComMassAdapter):
    """Creates a group mass-send task (客户群群发) for one customer group's owner."""

    channel = "wecom_group_mass"

    def send(self, message: OutboundMessage, customer: Recipient) -> DeliveryResult:
        chat_id = str(message.content.get("chat_id") or "")
        if not chat_id:
            raise DeliveryFailed("no customer group to send to (content.chat_id)")
        sender = str(message.content.get("sender") or "")
        if not sender:
            raise DeliveryFailed("no employee to send the group mass message: the group has "
                                 "no owner")
        body = {"chat_type": "group", "sender": sender, "chat_id_list": [chat_id],
                "text": {"content": _clip(message.text)}}
        return self._create_task(body, chat_id, "the group")


def _group_outcome(items: list[dict[str, Any]], chat_id: str) -> int | None:
    """A group task's status for its group: the item naming the chat (else any item); 0
    (not yet sent) is no outcome."""
    mine = [i for i in items if i.get("chat_id") == chat_id] or items
    for item in mine:
        status = int(item.get("status") or 0)
        if status in SEND_STATUS:
            return status
    return None


def refresh_results(session: Session, adapter: WeComMassAdapter, *, limit: int = 200) -> int:
    """Read back created mass-send tasks (to customers and to groups); move those WeCom
    reports as sent or failed. Returns how many changed."""
    rows = list(session.scalars(select(Delivery).where(Delivery.channel.in_(MASS_CHANNELS),
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
        if delivery.channel == "wecom_group_mass":
            outcome = _group_outcome(items, str(content.get("chat_id") or ""))
            if outcome is not None:
                delivery.state = SEND_STATUS[outcome]
                delivery.finished_at = utcnow()
                delivery.last_error = GROUP_SEND_REASON.get(outcome)
                changed += 1
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
        Delivery.channel.in_(MASS_CHANNELS), Delivery.state == "created")) or 0)
