"""The WeCom outbox adapter: replies to members by app message, to external contacts by 微信客服.

Where a reply goes is decided from the customer's latest inbound WeCom message (its
``payload["wecom"]``, written by the callback) and falls back to the customer's identities:

* ``wecom_userid`` (a member of the corp) -> ``message/send`` through the app the message came
  in on (``AgentID``), else ``SIYU_WECOM_AGENT_ID``. Re-sending after an unknown outcome uses
  WeCom's duplicate check, so it is safe.
* ``wecom_external_userid`` (a WeChat user) -> ``kf/send_msg`` through the 微信客服 account the
  message came in on, else ``SIYU_WECOM_KF_OPEN_KFID``, with the ``msgid`` ``siyu-<id>``.
  Not re-sent after an unknown outcome (see :mod:`siyu.channels.outbox`).
"""

from __future__ import annotations

from typing import Any

import httpx

from siyu.channels.config import ChannelSettings
from siyu.channels.desk import OutboundMessage, Recipient
from siyu.channels.outbox import DeliveryFailed, DeliveryResult
from siyu.channels.wecom.client import TokenCache, WeComApiError, WeComClient
from siyu.config import Settings

# WeCom caps a text message at 2048 bytes; longer replies are cut on a character boundary.
MAX_TEXT_BYTES = 2048


def _clip(text: str) -> str:
    data = text.encode("utf-8")
    if len(data) <= MAX_TEXT_BYTES:
        return text
    return data[: MAX_TEXT_BYTES - 3].decode("utf-8", errors="ignore") + "…"


class WeComTaskAdapter:
    """What the WeCom adapters whose calls are never repeated share (a customer or group
    mass-send task, a welcome message): the settings, one HTTP client, a fresh
    :class:`WeComClient` per send, and no resend — a second call would make a second task
    or spend a single-use code."""

    channel = ""

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


class WeComAdapter:
    """Sends outbound ``wecom`` messages with :class:`WeComClient`."""

    channel = "wecom"

    def __init__(self, settings: Settings, channel_settings: ChannelSettings, *,
                 http: httpx.Client | None = None, cache: TokenCache | None = None) -> None:
        self._settings = settings
        self._cs = channel_settings
        self._http = http or httpx.Client(timeout=channel_settings.wecom_timeout_seconds)
        self._cache = cache

    def close(self) -> None:
        self._http.close()

    def _route(self, customer: Recipient) -> tuple[str, str, dict[str, Any]]:
        """(``app`` or ``kf``, the recipient id, the inbound context)."""
        context = customer.reply_context.get("wecom")
        context = context if isinstance(context, dict) else {}
        kind, userid = context.get("kind"), context.get("userid")
        if kind == "wecom_userid" and isinstance(userid, str) and userid:
            return "app", userid, context
        if kind == "wecom_external_userid" and isinstance(userid, str) and userid:
            return "kf", userid, context
        member = customer.first("wecom_userid")
        if member:
            return "app", member, {}
        external = customer.first("wecom_external_userid")
        if external:
            return "kf", external, {}
        raise DeliveryFailed("the customer has no WeCom identity (wecom_userid or "
                             "wecom_external_userid)")

    def can_resend(self, message: OutboundMessage, customer: Recipient) -> bool:
        try:
            route, _, _ = self._route(customer)
        except DeliveryFailed:
            return True  # nothing can have been sent; the attempt will fail permanently
        return route == "app"

    def _client(self, secret: str) -> WeComClient:
        return WeComClient(api_base=self._settings.wecom_api_base,
                           corp_id=self._settings.wecom_corp_id, secret=secret,
                           http=self._http, cache=self._cache)

    def contact_client(self) -> WeComClient:
        """A client for the customer-contact APIs (``externalcontact/*``: customer groups,
        contact ways), with the corp secret."""
        return self._client(self._settings.wecom_corp_secret.get_secret_value())

    def send(self, message: OutboundMessage, customer: Recipient) -> DeliveryResult:
        route, userid, context = self._route(customer)
        text = _clip(message.text)
        corp_secret = self._settings.wecom_corp_secret.get_secret_value()
        try:
            if route == "app":
                agent_id = str(context.get("agent_id") or self._cs.wecom_agent_id or "")
                if not agent_id:
                    raise DeliveryFailed("no WeCom app to send through: the inbound message "
                                         "had no AgentID and SIYU_WECOM_AGENT_ID is not set")
                data = self._client(corp_secret).send_app_text(
                    agent_id=agent_id, touser=userid, content=text,
                    duplicate_check=bool(message.payload.get("resend")))
                return DeliveryResult("sent", str(data.get("msgid") or "") or None)
            open_kfid = str(context.get("open_kfid") or self._cs.wecom_kf_open_kfid or "")
            if not open_kfid:
                raise DeliveryFailed("no 微信客服 account to answer an external contact: set "
                                     "SIYU_WECOM_KF_OPEN_KFID")
            secret = self._cs.wecom_kf_secret.get_secret_value() or corp_secret
            data = self._client(secret).send_kf_text(
                open_kfid=open_kfid, touser=userid, content=text, msgid=f"siyu-{message.id}")
            return DeliveryResult("sent", str(data.get("msgid") or "") or None)
        except WeComApiError as exc:
            raise DeliveryFailed(exc.message, retryable=exc.retryable,
                                 ambiguous=exc.ambiguous) from None
