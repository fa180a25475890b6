"""The official account's callback protocol: signatures, safe mode and the message format.

As the platform documents it (消息推送 / 消息加解密说明):

* **Server verification** (GET): ``signature`` = hex SHA1 of the sorted concatenation of the
  token, ``timestamp`` and ``nonce``; the answer is ``echostr`` verbatim.
* **Plaintext mode** (POST without ``encrypt_type`` or with ``raw``): the same ``signature``;
  the body itself is not signed, which is why siyu recommends safe mode.
* **Safe mode** (POST with ``encrypt_type=aes``): ``msg_signature`` = SHA1 over the token,
  ``timestamp``, ``nonce`` and the body's ``Encrypt``; ``Encrypt`` is AES-256-CBC exactly as
  WeCom's callbacks, with the app id as the receive id, so :class:`~siyu.channels.wecom.crypto.
  WeComCrypto` does the work. Compatibility mode (plaintext fields beside ``Encrypt``) is read
  as safe mode: only the decrypted content is trusted.

With ``SIYU_OA_AES_KEY`` set, plaintext callbacks are refused (an attacker who saw one signed
URL could otherwise pair it with any body); without it, encrypted ones are. Bodies may be XML
(the default) or JSON (the platform's other data format).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from siyu.channels.wecom.crypto import WeComCrypto, WeComCryptoError, parse_xml
from siyu.errors import SiyuError

__all__ = ["OaCallbackError", "OaInbound", "OaProtocol", "OaReason", "parse_inbound"]

_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")


class OaReason(StrEnum):
    """Why a callback was refused; stable and safe to log or return."""

    BAD_SIGNATURE = "bad_signature"
    STALE_TIMESTAMP = "stale_timestamp"
    INVALID_TIMESTAMP = "invalid_timestamp"
    APPID_MISMATCH = "appid_mismatch"
    DECRYPT_FAILED = "decrypt_failed"
    MALFORMED = "malformed"
    PLAINTEXT_REFUSED = "plaintext_refused"
    ENCRYPTED_UNEXPECTED = "encrypted_unexpected"


_FORBIDDEN = frozenset({OaReason.BAD_SIGNATURE, OaReason.STALE_TIMESTAMP,
                        OaReason.INVALID_TIMESTAMP, OaReason.APPID_MISMATCH,
                        OaReason.PLAINTEXT_REFUSED})
_MESSAGES = {
    OaReason.BAD_SIGNATURE: "official account callback signature does not match",
    OaReason.STALE_TIMESTAMP: "official account callback timestamp is too far from now",
    OaReason.INVALID_TIMESTAMP: "official account callback timestamp is not a unix time",
    OaReason.APPID_MISMATCH: "official account callback is addressed to another app id",
    OaReason.DECRYPT_FAILED: "official account callback payload could not be decrypted",
    OaReason.MALFORMED: "official account callback body is malformed",
    OaReason.PLAINTEXT_REFUSED: "plaintext callbacks are refused: safe mode is configured "
                                "(SIYU_OA_AES_KEY)",
    OaReason.ENCRYPTED_UNEXPECTED: "encrypted callback, but SIYU_OA_AES_KEY is not set",
}
# WeCom's reasons as the official account names them.
_FROM_WECOM = {"bad_signature": OaReason.BAD_SIGNATURE, "stale_timestamp":
               OaReason.STALE_TIMESTAMP, "invalid_timestamp": OaReason.INVALID_TIMESTAMP,
               "corp_id_mismatch": OaReason.APPID_MISMATCH,
               "decrypt_failed": OaReason.DECRYPT_FAILED, "malformed_xml": OaReason.MALFORMED}


class OaCallbackError(SiyuError):
    """A callback was refused: 403 when it is not the platform's (signature, timestamp, app
    id, downgrade to plaintext), 400 when it is unreadable. Never carries secrets or content."""

    code = "oa_callback_refused"

    def __init__(self, reason: OaReason, detail: str | None = None) -> None:
        self.reason = reason
        message = _MESSAGES[reason] + (f": {detail}" if detail else "")
        super().__init__(message, details={"reason": reason.value})
        self.status_code = 403 if reason in _FORBIDDEN else 400


@dataclass(frozen=True, slots=True)
class OaInbound:
    """One callback's content: a follower's message or an event.

    ``fields`` holds every top-level field as text (nested ones as ``Parent.Child``).
    """

    to_user: str
    openid: str
    create_time: int
    msg_type: str
    msg_id: str | None
    event: str | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def is_event(self) -> bool:
        return self.msg_type == "event"

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if value else None

    @property
    def unionid(self) -> str | None:
        """The follower's unionid, when the platform includes it."""
        return self.get("UnionId") or self.get("UnionID") or self.get("unionid")


def _flatten_json(data: dict[str, Any], prefix: str, out: dict[str, str]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten_json(value, f"{name}.", out)
        elif value is not None and not isinstance(value, list):
            out.setdefault(name, str(value))


def _flatten_xml(element: Any, prefix: str, out: dict[str, str], *, keep_space: bool) -> None:
    for child in element:
        if not isinstance(child.tag, str):  # pragma: no cover - comments are dropped
            continue
        name = f"{prefix}{child.tag}"
        if len(child):
            _flatten_xml(child, f"{name}.", out, keep_space=keep_space)
        else:
            text = child.text or ""
            # A follower's text is kept exactly as sent; protocol fields are trimmed.
            out.setdefault(name, text if keep_space and child.tag == "Content" else text.strip())


def _fields(body: bytes | str) -> dict[str, str]:
    """The top-level fields of an XML or JSON body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    out: dict[str, str] = {}
    if text.lstrip().startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise OaCallbackError(OaReason.MALFORMED, "not JSON") from None
        if not isinstance(data, dict):
            raise OaCallbackError(OaReason.MALFORMED, "JSON body is not an object")
        _flatten_json(data, "", out)
        return out
    try:
        root = parse_xml(text)
    except WeComCryptoError:
        raise OaCallbackError(OaReason.MALFORMED, "not XML") from None
    if root.tag != "xml":
        raise OaCallbackError(OaReason.MALFORMED, "root element is not <xml>")
    _flatten_xml(root, "", out, keep_space=True)
    return out


def parse_inbound(body: bytes | str) -> OaInbound:
    """Parse a (decrypted) message or event.

    Raises:
        OaCallbackError: ``malformed`` when a required field is missing or ``CreateTime`` is
            not an integer.
    """
    values = _fields(body)
    missing = [k for k in ("ToUserName", "FromUserName", "CreateTime", "MsgType")
               if not values.get(k)]
    if missing:
        raise OaCallbackError(OaReason.MALFORMED, "missing " + ", ".join(missing))
    try:
        create_time = int(values["CreateTime"])
    except ValueError:
        raise OaCallbackError(OaReason.MALFORMED, "CreateTime is not an integer") from None
    msg_type = values["MsgType"].strip()
    return OaInbound(to_user=values["ToUserName"].strip(),
                     openid=values["FromUserName"].strip(), create_time=create_time,
                     msg_type=msg_type, msg_id=values.get("MsgId") or None,
                     event=(values.get("Event") or None) if msg_type == "event" else None,
                     fields=values)


class OaProtocol:
    """Verify and open one official account's callbacks.

    Args:
        token: The server configuration's Token (``SIYU_OA_TOKEN``).
        appid: The account's app id (``SIYU_OA_APPID``): the receive id in safe mode.
        encoding_aes_key: The 43-character EncodingAESKey (``SIYU_OA_AES_KEY``); ``None`` or
            empty for plaintext mode.
        max_skew_seconds: Refuse timestamps further from the clock; ``0`` turns it off.

    Raises:
        ValueError: On an empty token or app id, or a malformed key.
    """

    def __init__(self, token: str, appid: str, encoding_aes_key: str | None = None, *,
                 max_skew_seconds: int = 0, clock: Callable[[], float] = time.time) -> None:
        if not token:
            raise ValueError("official account token must be a non-empty string")
        if not appid:
            raise ValueError("official account app id must be a non-empty string")
        if max_skew_seconds < 0:
            raise ValueError("max_skew_seconds must be >= 0 (0 turns the check off)")
        self._token = token
        self.appid = appid
        self.max_skew_seconds = max_skew_seconds
        self._clock = clock
        self._aes = (WeComCrypto(token, encoding_aes_key, appid,
                                 max_skew_seconds=max_skew_seconds, clock=clock)
                     if encoding_aes_key else None)

    def __repr__(self) -> str:
        return f"OaProtocol(appid={self.appid!r}, safe_mode={self.safe_mode})"

    @property
    def safe_mode(self) -> bool:
        return self._aes is not None

    def sign(self, timestamp: str, nonce: str) -> str:
        """``signature``: hex SHA1 of the sorted token, timestamp and nonce."""
        parts = sorted([self._token, timestamp, nonce])
        return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()

    def _check_timestamp(self, timestamp: str) -> None:
        if self.max_skew_seconds <= 0:
            return
        if not _TIMESTAMP_RE.fullmatch(timestamp):
            raise OaCallbackError(OaReason.INVALID_TIMESTAMP)
        if abs(self._clock() - int(timestamp)) > self.max_skew_seconds:
            raise OaCallbackError(OaReason.STALE_TIMESTAMP)

    def check_signature(self, signature: str, timestamp: str, nonce: str) -> None:
        """Refuse a ``signature`` that does not match, or a stale timestamp."""
        expected = self.sign(timestamp, nonce)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8")):
            raise OaCallbackError(OaReason.BAD_SIGNATURE)
        self._check_timestamp(timestamp)

    def verify_url(self, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Answer the server verification: ``echostr`` verbatim once the signature holds."""
        self.check_signature(signature, timestamp, nonce)
        return echostr

    def open(self, body: bytes, params: dict[str, str]) -> OaInbound:
        """Verify a POSTed callback and parse it. ``params`` are its query parameters.

        Raises:
            OaCallbackError: see :class:`OaReason`.
        """
        encrypted = (params.get("encrypt_type") or "raw").lower() == "aes"
        timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
        if self._aes is None:
            if encrypted:
                raise OaCallbackError(OaReason.ENCRYPTED_UNEXPECTED)
            self.check_signature(params.get("signature", ""), timestamp, nonce)
            return parse_inbound(body)
        if not encrypted:
            raise OaCallbackError(OaReason.PLAINTEXT_REFUSED)
        envelope = _fields(body)
        payload = (envelope.get("Encrypt") or "").strip()
        if not payload:
            raise OaCallbackError(OaReason.MALFORMED, "no Encrypt field")
        try:
            plain = self._aes.decrypt_payload(payload, params.get("msg_signature", ""),
                                              timestamp, nonce)
        except WeComCryptoError as exc:
            raise OaCallbackError(_FROM_WECOM.get(exc.reason.value, OaReason.DECRYPT_FAILED)
                                  ) from None
        return parse_inbound(plain)

    def encrypt(self, text: str, nonce: str, timestamp: str, *,
                random_prefix: bytes | None = None) -> tuple[str, str]:
        """Encrypt a passive reply in safe mode: ``(Encrypt, MsgSignature)``."""
        if self._aes is None:
            raise ValueError("encrypting needs SIYU_OA_AES_KEY")
        return self._aes.encrypt_payload(text, nonce, timestamp, random_prefix=random_prefix)
