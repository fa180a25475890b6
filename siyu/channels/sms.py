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
    status_code = 502
    code = "sms_failed"


class SmsNotConfigured(SiyuError):
    status_code = 503
    code = "sms_not_configured"


class SmsSender(Protocol):
    def send(self, to: str, text: str, *, template: str, params: dict[str, Any]) -> None: ...


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

    def send(self, to: str, text: str, *, template: str, params: dict[str, Any]) -> None:
        """Hand one message to the provider; :class:`SmsError` unless it answers 2xx."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        body = {"to": to, "text": text, "template": template, "params": params}
        try:
            if self._http is not None:
                response = self._http.post(self._url, json=body, headers=headers,
                                           timeout=self._timeout)
            else:
                response = httpx.post(self._url, json=body, headers=headers,
                                      timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise SmsError(f"SMS provider unreachable ({type(exc).__name__})") from None
        if not 200 <= response.status_code < 300:
            raise SmsError(f"SMS provider refused the message (HTTP {response.status_code})")
