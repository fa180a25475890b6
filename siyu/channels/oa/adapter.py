"""The official account outbox adapter: replies through the customer-service message API.

The reply goes to the follower's ``openid`` from their latest message on the account (its
``payload["oa"]``), else to the customer's ``wechat_openid``. Just before sending, the window
is checked again (48 hours after the follower's last message, at most
``SIYU_OA_WINDOW_MAX_MESSAGES`` replies): a reply that would fall outside fails at once with
the reason, which the conversation shows, rather than being refused by the platform.

``custom/send`` has no idempotency key, so a send whose outcome is unknown is not repeated
(see :mod:`siyu.channels.outbox`): at-most-once, flagged for a person.

The access token is shared by all workers through the database (:mod:`.tokens`), so the
adapter keeps a session factory of its own; ``send`` does no work in the job's transaction.
"""

from __future__ import annotations

import threading

import httpx
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.secrets import purpose_key
from siyu.channels.config import ChannelSettings
from siyu.channels.desk import OutboundMessage, Recipient
from siyu.channels.oa.client import OaApiError, OaClient
from siyu.channels.oa.tokens import SharedTokenStore
from siyu.channels.oa.window import SENT, reply_window
from siyu.channels.outbox import DeliveryFailed, DeliveryResult
from siyu.config import Settings


class OaAdapter:
    """Sends outbound ``oa`` messages with :class:`OaClient`."""

    channel = "oa"

    def __init__(self, settings: Settings, channel_settings: ChannelSettings, *,
                 sessions: sessionmaker[Session] | None = None,
                 http: httpx.Client | None = None) -> None:
        self._settings = settings
        self._cs = channel_settings
        self._sessions = sessions
        self._lock = threading.Lock()
        self._http = http or httpx.Client(timeout=channel_settings.oa_timeout_seconds)

    def close(self) -> None:
        self._http.close()

    def _factory(self) -> sessionmaker[Session]:
        with self._lock:
            if self._sessions is None:
                from siyu.db import make_engine, make_session_factory

                self._sessions = make_session_factory(make_engine(self._settings.database_url))
            return self._sessions

    def client(self) -> OaClient:
        tokens = SharedTokenStore(self._factory(),
                                  secret_key=purpose_key(self._settings,
                                                         "oa-access-token").hex())
        return OaClient(api_base=self._cs.oa_api_base, appid=self._cs.oa_appid,
                        secret=self._cs.oa_secret.get_secret_value(), tokens=tokens,
                        http=self._http)

    def can_resend(self, message: OutboundMessage, customer: Recipient) -> bool:
        return False

    @staticmethod
    def _openid(customer: Recipient) -> str:
        context = customer.reply_context.get("oa")
        openid = context.get("openid") if isinstance(context, dict) else None
        if isinstance(openid, str) and openid:
            return openid
        found = customer.first("wechat_openid")
        if not found:
            raise DeliveryFailed("the customer has no official account openid")
        return found

    def send(self, message: OutboundMessage, customer: Recipient) -> DeliveryResult:
        openid = self._openid(customer)
        with self._factory()() as session:
            window = reply_window(session, customer.customer_id, hours=self._cs.oa_window_hours,
                                  cap=self._cs.oa_window_max_messages, counting=SENT,
                                  exclude_id=message.id, timezone=self._settings.timezone)
        if not window.open:
            raise DeliveryFailed(window.reason or "outside the customer-service window")
        try:
            data = self.client().send_text(openid, message.text)
        except OaApiError as exc:
            raise DeliveryFailed(exc.message, retryable=exc.retryable,
                                 ambiguous=exc.ambiguous) from None
        return DeliveryResult("sent", str(data.get("msgid") or "") or None)
