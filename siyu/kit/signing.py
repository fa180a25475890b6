"""HMAC-SHA256 signatures of webhook bodies with a timestamp (the scheme of every webhook
siyu receives from a provider it documents the protocol for: the call centre, the SMS
provider's replies and delivery reports).

Each request carries ``X-Siyu-Timestamp`` (unix seconds) and ``X-Siyu-Signature:
v1=<hex>``, where ``<hex>`` is HMAC-SHA256 under the shared secret of ``"<timestamp>." +
raw body``. The timestamp bounds replays in time; the receiver's event ids bound them in
number.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping

SIGNATURE_HEADER = "X-Siyu-Signature"
TIMESTAMP_HEADER = "X-Siyu-Timestamp"
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_SIGNATURE_RE = re.compile(r"v1=([0-9a-f]{64})")


class SignatureProblem(Exception):
    """Why a request was refused: ``reason`` is ``missing_signature``, ``bad_signature``
    or ``stale_timestamp`` (never any part of the secret or of the signature)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Siyu-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                      hashlib.sha256).hexdigest()
    return f"v1={digest}"


def signed_headers(secret: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    """Both headers for sending ``body`` now (or at ``at``): what a provider sends."""
    timestamp = str(int(time.time() if at is None else at))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, max_skew_seconds: int,
           clock: Callable[[], float] = time.time) -> None:
    """Raise :class:`SignatureProblem` unless ``body`` is signed with ``secret`` and its
    timestamp is within ``max_skew_seconds`` of the clock (0: no bound)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    presented = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp or not presented:
        raise SignatureProblem("missing_signature")
    match = _SIGNATURE_RE.fullmatch(presented.strip())
    if not _TIMESTAMP_RE.fullmatch(timestamp) or match is None:
        raise SignatureProblem("bad_signature")
    expected = sign(secret, timestamp, body)[3:]
    if not hmac.compare_digest(expected.encode(), match.group(1).encode()):
        raise SignatureProblem("bad_signature")
    if max_skew_seconds > 0 and abs(clock() - int(timestamp)) > max_skew_seconds:
        raise SignatureProblem("stale_timestamp")
