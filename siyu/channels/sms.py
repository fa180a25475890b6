"""SMS through a generic JSON HTTP provider (``SIYU_SMS_URL``, ``SIYU_SMS_TOKEN``).

Most SMS gateways (and every in-house relay) accept a JSON POST; siyu sends::

    POST $SIYU_SMS_URL
    Authorization: Bearer $SIYU_SMS_TOKEN
    {"to": "+8613800138000", "text": "...", "template": "verification_code",
     "params": {"code": "123456", "minutes": 5}}

and treats any 2xx answer as accepted. A provider that needs another shape gets a small
relay in front of it. The token and the code never appear in errors or logs.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from siyu.errors import SiyuError


class SmsError(SiyuError):
    """The provider did not take the message. ``retryable``: it certainly did not (so sending
    again is safe); ``ambiguous``: it may have (the request went out, no answer came)."""

    status_code = 502
    code = "sms_failed"
    retryable = False
    ambiguous = False


class SmsNotConfigured(SiyuError):
    status_code = 503
    code = "sms_not_configured"


class SmsSender(Protocol):
    def send(self, to: str, text: str, *, template: str, params: dict[str, Any]
             ) -> str | None: ...


class HttpSms:
    """Sends SMS with one JSON POST per message."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0,
                 http: httpx.Client | None = None) -> None:
        if not url:
            raise SmsNotConfigured("phone verification needs an SMS provider: set SIYU_SMS_URL")
        self._url = url
        self._token = token
        self._timeout = timeout
        self._http = http

    def send(self, to: str, text: str, *, template: str, params: dict[str, Any]
             ) -> str | None:
        """Hand one message to the provider; :class:`SmsError` unless it answers 2xx.
        Returns the provider's message id when its answer carries one (``{"id": ...}``)."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        body = {"to": to, "text": text, "template": template, "params": params}
        try:
            if self._http is not None:
                response = self._http.post(self._url, json=body, headers=headers,
                                           timeout=self._timeout)
            else:
                response = httpx.post(self._url, json=body, headers=headers,
                                      timeout=self._timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            error = SmsError(f"SMS provider unreachable ({type(exc).__name__})")
            error.retryable = True
            raise error from None
        except httpx.HTTPError as exc:
            error = SmsError(f"SMS provider did not answer ({type(exc).__name__})")
            error.ambiguous = True
            raise error from None
        if not 200 <= response.status_code < 300:
            error = SmsError(f"SMS provider refused the message (HTTP {response.status_code})")
            error.retryable = response.status_code >= 500 or response.status_code == 429
            raise error
        try:
            data = response.json()
        except ValueError:
            data = None
        return str(data.get("id") or "") or None if isinstance(data, dict) else None


class SmsAdapter:
    """The outbox adapter of the ``sms`` channel: the customer's (first) phone, through
    :class:`HttpSms` with ``template`` ``outbound`` and the outbox key as ``params.key`` (a
    provider may drop repeats of a key). Not re-sent after an unknown outcome."""

    channel = "sms"

    def __init__(self, settings: Any, *, http: httpx.Client | None = None) -> None:
        self._s = settings
        self._http = http

    def can_resend(self, message: Any, customer: Any) -> bool:
        return False

    def send(self, message: Any, customer: Any) -> Any:
        from siyu.channels.outbox import DeliveryFailed, DeliveryResult

        to = str(message.content.get("to") or customer.first("phone") or "")
        if not to:
            raise DeliveryFailed("the customer has no phone number")
        try:
            sender = HttpSms(self._s.sms_url, self._s.sms_token.get_secret_value(),
                             timeout=self._s.sms_timeout_seconds, http=self._http)
            text = message.text
            if getattr(message, "purpose", "service") == "marketing" and "退订" not in text:
                from siyu.channels.optout import SMS_MARKETING_SUFFIX

                text = f"{text} {SMS_MARKETING_SUFFIX}"  # the carriers require a way out
            provider_id = sender.send(to, text, template="outbound",
                                      params={"key": message.key})
        except SmsNotConfigured:
            raise DeliveryFailed("SMS is not configured: set SIYU_SMS_URL") from None
        except SmsError as exc:
            raise DeliveryFailed(exc.message, retryable=exc.retryable,
                                 ambiguous=exc.ambiguous) from None
        return DeliveryResult("sent", provider_id)
