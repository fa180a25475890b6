"""Webhooks: a JSON POST to a host on the allow-list (``SIYU_WEBHOOK_ALLOW_HOSTS``), signed.

The receiver verifies ``X-Siyu-Signature: sha256=<hex>``, the HMAC-SHA256 with
``SIYU_WEBHOOK_SECRET`` (falling back to the install's secret key) of
``<X-Siyu-Timestamp>.<body>``, and drops repeats of ``Idempotency-Key`` (the outbox key) --
which is why a webhook may be re-sent after an unknown outcome. A URL whose host is not on
the allow-list is refused without a request (the playbook validator refuses it first).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlsplit

import httpx

from siyu.auth.secrets import purpose_key
from siyu.channels.config import ChannelSettings
from siyu.channels.desk import OutboundMessage, Recipient
from siyu.channels.outbox import DeliveryFailed, DeliveryResult
from siyu.config import Settings


def host_allowed(url: str, allow: list[str]) -> bool:
    """Whether ``url`` is http(s) to a host (or host:port) on ``allow``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    with_port = f"{host}:{parts.port}" if parts.port else host
    allowed = {a.strip().lower() for a in allow if a.strip()}
    return host in allowed or with_port in allowed


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookAdapter:
    channel = "webhook"

    def __init__(self, settings: Settings, channel_settings: ChannelSettings, *,
                 http: httpx.Client | None = None) -> None:
        self._cs = channel_settings
        self._secret = (channel_settings.webhook_secret.get_secret_value()
                        or purpose_key(settings, "webhook-signature").hex())
        self._http = http

    def can_resend(self, message: OutboundMessage, customer: Recipient) -> bool:
        return True

    def send(self, message: OutboundMessage, customer: Recipient) -> DeliveryResult:
        url = str(message.content.get("url") or "")
        if not host_allowed(url, self._cs.webhook_allow_hosts):
            raise DeliveryFailed("webhook host is not on SIYU_WEBHOOK_ALLOW_HOSTS")
        body = json.dumps(message.content.get("body") or {}, ensure_ascii=False,
                          sort_keys=True).encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Siyu-Timestamp": timestamp,
                   "X-Siyu-Signature": sign(self._secret, timestamp, body),
                   "Idempotency-Key": message.key}
        client = self._http or httpx.Client(timeout=self._cs.webhook_timeout_seconds)
        try:
            response = client.post(url, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise DeliveryFailed(f"webhook unreachable ({type(exc).__name__})",
                                 retryable=True) from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook did not answer ({type(exc).__name__})",
                                 retryable=True, ambiguous=True) from None
        finally:
            if self._http is None:
                client.close()
        if response.status_code >= 500 or response.status_code == 429:
            raise DeliveryFailed(f"webhook answered HTTP {response.status_code}",
                                 retryable=True)
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"webhook answered HTTP {response.status_code}")
        return DeliveryResult("sent", None)
