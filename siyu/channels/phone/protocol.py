"""The phone webhook protocol: signed JSON events in, next actions out.

**Signature.** Each request carries ``X-Siyu-Timestamp`` (unix seconds) and
``X-Siyu-Signature: v1=<hex>``, where ``<hex>`` is HMAC-SHA256 under ``SIYU_PHONE_SECRET``
of ``"<timestamp>." + raw body``. A request whose signature does not match, whose timestamp
is further than ``SIYU_PHONE_MAX_SKEW_SECONDS`` from the clock, or whose ``event_id`` was
seen before (replay) is refused and stores nothing.

**Events** (JSON object, ``type`` selects the fields):

* ``call.started``: ``call_id``, ``from`` (calling number), ``to`` (called number),
  optional ``voiceprint_id`` (the provider's voiceprint match);
* ``utterance``: ``call_id``, ``text`` (ASR), ``confidence`` (0-1), ``final`` (partial
  results never trigger anything);
* ``dtmf``: ``call_id``, ``digits``;
* ``call.transferred`` / ``call.answered``: ``call_id``, optional ``agent``;
* ``call.ended``: ``call_id``, optional ``duration_seconds``, ``recording_ref``.

Every event has ``event_id`` (unique per event, 1-100 characters) and optional ``at``.

**Answer**: ``{"call_id": ..., "actions": [...]}`` with actions ``{"type": "speak",
"text": ...}``, ``{"type": "listen", "timeout_seconds": n}``, ``{"type": "transfer",
"queue": <skill group>, "extension": <advisor's extension or null>}``, ``{"type":
"hangup"}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from siyu.errors import SiyuError
from siyu.kit import signing

SIGNATURE_HEADER = signing.SIGNATURE_HEADER
TIMESTAMP_HEADER = signing.TIMESTAMP_HEADER
sign = signing.sign


class PhoneRefused(SiyuError):
    """A webhook request was refused; ``details.reason`` says why (never a secret)."""

    status_code = 403
    code = "phone_webhook_refused"

    def __init__(self, reason: str, message: str, status_code: int = 403,
                 details: Any = None) -> None:
        super().__init__(message, details=details or {"reason": reason},
                         status_code=status_code)
        self.reason = reason


_REFUSALS = {
    "missing_signature": (f"{SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required", 401),
    "bad_signature": ("phone webhook signature does not match", 403),
    "stale_timestamp": ("phone webhook timestamp is too far from now", 403),
}


def verify(secret: str, headers: dict[str, str], body: bytes, *, max_skew_seconds: int,
           clock: Callable[[], float] = time.time) -> None:
    """Refuse a request that is not signed with ``secret`` or is stale
    (:mod:`siyu.kit.signing`, the scheme the SMS provider's webhook shares).

    Raises:
        PhoneRefused: ``bad_signature`` / ``stale_timestamp`` (403), ``missing_signature``
            (401).
    """
    try:
        signing.verify(secret, headers, body, max_skew_seconds=max_skew_seconds, clock=clock)
    except signing.SignatureProblem as exc:
        message, status = _REFUSALS[exc.reason]
        raise PhoneRefused(exc.reason, message, status_code=status) from None


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    event_id: str = Field(min_length=1, max_length=100)
    call_id: str = Field(min_length=1, max_length=100)
    at: float | None = None


class CallStarted(_Event):
    type: Literal["call.started"]
    from_number: str = Field(alias="from", min_length=3, max_length=40)
    to_number: str = Field(default="", alias="to", max_length=40)
    voiceprint_id: str | None = Field(default=None, max_length=200)


class Utterance(_Event):
    type: Literal["utterance"]
    text: str = Field(max_length=2000)
    confidence: float = Field(default=1.0, ge=0, le=1)
    final: bool = True


class Dtmf(_Event):
    type: Literal["dtmf"]
    digits: str = Field(pattern=r"^[0-9*#]{1,32}$")


class CallTransferred(_Event):
    type: Literal["call.transferred", "call.answered"]
    agent: str | None = Field(default=None, max_length=100)


class CallEnded(_Event):
    type: Literal["call.ended"]
    duration_seconds: float | None = Field(default=None, ge=0)
    recording_ref: str | None = Field(default=None, max_length=500)


PhoneEvent = Annotated[CallStarted | Utterance | Dtmf | CallTransferred | CallEnded,
                       Field(discriminator="type")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(PhoneEvent)


def parse_event(body: bytes) -> CallStarted | Utterance | Dtmf | CallTransferred | CallEnded:
    """Validate a (verified) event body; 422 naming each bad field."""
    try:
        event: CallStarted | Utterance | Dtmf | CallTransferred | CallEnded = (
            _ADAPTER.validate_json(body))
        return event
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in e["loc"]) or "body",
                    "reason": e["msg"]} for e in exc.errors()]
        raise PhoneRefused("invalid_event", "; ".join(f"{d['field']}: {d['reason']}"
                                                      for d in details),
                           status_code=422, details=details) from None
