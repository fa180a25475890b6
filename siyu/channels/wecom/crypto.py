"""WeCom (企业微信) callback encryption: URL verification, message decryption, reply encryption.

Implements the scheme of WeCom's "加解密方案说明" (callback encryption) documentation:

* AES key: ``base64decode(EncodingAESKey + "=")``, 32 bytes; AES-256-CBC with the IV set to the
  first 16 bytes of the key; PKCS#7 padding to a 32-byte block.
* Plaintext layout: 16 random bytes, the message length as a 4-byte big-endian integer, the
  message (UTF-8), then the receive id (the corp id for an internal app).
* Signature: hex SHA1 of the sorted concatenation of token, timestamp, nonce and the encrypted
  message (base64 text).

The official account (公众号, :mod:`siyu.channels.oa`) uses the same scheme for its safe mode,
with the app id as the receive id; it builds on this class rather than repeating it.

Every failure a caller could meet with hostile or broken input raises :class:`WeComCryptoError`
with a machine-readable :class:`WeComCryptoReason`; a misconfigured instance raises
:class:`ValueError` from the constructor. Nothing in this module logs, and error messages never
contain the token, the key or decrypted content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import time
from collections.abc import Callable
from enum import StrEnum
from xml.etree.ElementTree import Element, ParseError

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _defused_fromstring

from siyu.errors import SiyuError

__all__ = [
    "ENCODING_AES_KEY_LENGTH",
    "WeComCrypto",
    "WeComCryptoError",
    "WeComCryptoReason",
    "parse_xml",
]

ENCODING_AES_KEY_LENGTH = 43
"""Length of a WeCom EncodingAESKey (43 base64 characters, 32 bytes once decoded)."""

_BLOCK_SIZE = 32  # WeCom pads to 32 bytes, not to the 16-byte AES block.
_RANDOM_PREFIX = 16
_LENGTH_FIELD = 4
_HEADER = _RANDOM_PREFIX + _LENGTH_FIELD
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")


class WeComCryptoReason(StrEnum):
    """Why a callback was refused; the value is stable and safe to log or return."""

    BAD_SIGNATURE = "bad_signature"
    DECRYPT_FAILED = "decrypt_failed"
    CORP_ID_MISMATCH = "corp_id_mismatch"
    STALE_TIMESTAMP = "stale_timestamp"
    INVALID_TIMESTAMP = "invalid_timestamp"
    MALFORMED_XML = "malformed_xml"


_MESSAGES: dict[WeComCryptoReason, str] = {
    WeComCryptoReason.BAD_SIGNATURE: "WeCom callback signature does not match",
    WeComCryptoReason.DECRYPT_FAILED: "WeCom callback payload could not be decrypted",
    WeComCryptoReason.CORP_ID_MISMATCH: "WeCom callback is addressed to another receive id",
    WeComCryptoReason.STALE_TIMESTAMP: "WeCom callback timestamp is too far from now",
    WeComCryptoReason.INVALID_TIMESTAMP: "WeCom callback timestamp is not a unix time",
    WeComCryptoReason.MALFORMED_XML: "WeCom callback XML is malformed",
}


class WeComCryptoError(SiyuError):
    """A WeCom callback was refused; :attr:`reason` tells why.

    The message is generic and never includes secrets or decrypted content, so it can be
    logged and returned to the caller as is.
    """

    status_code = 400
    code = "wecom_crypto_error"

    def __init__(self, reason: str, detail: str | None = None) -> None:
        self.reason = WeComCryptoReason(reason)
        message = _MESSAGES[self.reason]
        if detail:
            message = f"{message}: {detail}"
        super().__init__(message, details={"reason": self.reason.value})


def parse_xml(data: bytes | str) -> Element:
    """Parse untrusted XML safely, refusing DTDs and entity declarations.

    Uses :mod:`defusedxml` (no entity expansion, so no billion-laughs, no external entities).

    Raises:
        WeComCryptoError: ``malformed_xml`` if the document is not well-formed or uses a DTD.
    """
    try:
        return _defused_fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, TypeError) as exc:
        raise WeComCryptoError(WeComCryptoReason.MALFORMED_XML, type(exc).__name__) from None


def _pkcs7_pad(data: bytes) -> bytes:
    amount = _BLOCK_SIZE - len(data) % _BLOCK_SIZE
    return data + bytes([amount]) * amount


def _pkcs7_unpad(data: bytes) -> bytes:
    if not data:
        raise WeComCryptoError(WeComCryptoReason.DECRYPT_FAILED, "empty plaintext")
    amount = data[-1]
    if not 1 <= amount <= _BLOCK_SIZE or amount > len(data):
        raise WeComCryptoError(WeComCryptoReason.DECRYPT_FAILED, "bad padding")
    if data[-amount:] != bytes([amount]) * amount:
        raise WeComCryptoError(WeComCryptoReason.DECRYPT_FAILED, "bad padding")
    return data[:-amount]


class WeComCrypto:
    """Verify, decrypt and encrypt WeCom callbacks for one app.

    Args:
        token: The callback Token configured in the WeCom admin console.
        encoding_aes_key: The 43-character EncodingAESKey from the same page.
        corp_id: The receive id: the corp id (``ww...``/``wx...``) for an internal app; for a
            third-party suite callback it is the suite id.
        max_skew_seconds: Refuse callbacks whose timestamp is more than this many seconds from
            the clock (replay protection); ``0`` turns the check off.
        clock: Returns the current unix time; injectable for tests. Defaults to ``time.time``.

    Raises:
        ValueError: On a missing token or corp id, a malformed EncodingAESKey or a negative skew.
    """

    __slots__ = ("_clock", "_corp_id", "_iv", "_key", "_token", "max_skew_seconds")

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        corp_id: str,
        *,
        max_skew_seconds: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("WeCom token must be a non-empty string")
        if not isinstance(corp_id, str) or not corp_id:
            raise ValueError("WeCom corp id must be a non-empty string")
        if not isinstance(encoding_aes_key, str) or len(encoding_aes_key) != (
            ENCODING_AES_KEY_LENGTH
        ):
            length = len(encoding_aes_key) if isinstance(encoding_aes_key, str) else "non-string"
            raise ValueError(
                f"WeCom EncodingAESKey must be exactly {ENCODING_AES_KEY_LENGTH} characters "
                f"(got {length})"
            )
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                "WeCom EncodingAESKey must contain only base64 characters (A-Z, a-z, 0-9, +, /)"
            ) from None
        if len(key) != 32:  # pragma: no cover - 43 valid base64 chars always give 32 bytes
            raise ValueError("WeCom EncodingAESKey must decode to 32 bytes")
        if max_skew_seconds < 0:
            raise ValueError("max_skew_seconds must be >= 0 (0 turns the check off)")
        self._token = token
        self._key = key
        self._iv = key[:16]
        self._corp_id = corp_id
        self._clock = clock
        self.max_skew_seconds = max_skew_seconds

    def __repr__(self) -> str:
        return f"WeComCrypto(corp_id={self._corp_id!r}, max_skew_seconds={self.max_skew_seconds})"

    @property
    def corp_id(self) -> str:
        """The receive id this instance accepts and writes into encrypted payloads."""
        return self._corp_id

    # -- signature ---------------------------------------------------------------------------

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """Return the hex SHA1 signature of ``token``, ``timestamp``, ``nonce``, ``encrypted``."""
        parts = sorted([self._token, timestamp, nonce, encrypted])
        return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()

    def _check_signature(
        self, msg_signature: str, timestamp: str, nonce: str, encrypted: str
    ) -> None:
        expected = self.sign(timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode("ascii"), msg_signature.encode("utf-8")):
            raise WeComCryptoError(WeComCryptoReason.BAD_SIGNATURE)

    def _check_timestamp(self, timestamp: str) -> None:
        if self.max_skew_seconds <= 0:
            return
        if not _TIMESTAMP_RE.fullmatch(timestamp):
            raise WeComCryptoError(WeComCryptoReason.INVALID_TIMESTAMP)
        if abs(self._clock() - int(timestamp)) > self.max_skew_seconds:
            raise WeComCryptoError(WeComCryptoReason.STALE_TIMESTAMP)

    def _check_request(
        self, msg_signature: str, timestamp: str, nonce: str, encrypted: str
    ) -> None:
        for value in (msg_signature, timestamp, nonce, encrypted):
            if not isinstance(value, str):
                raise TypeError("signature, timestamp, nonce and payload must be str")
        self._check_signature(msg_signature, timestamp, nonce, encrypted)
        self._check_timestamp(timestamp)

    # -- AES ---------------------------------------------------------------------------------

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._iv))

    def _encrypt(self, text: str, random_prefix: bytes | None = None) -> str:
        """Encrypt ``text`` into WeCom's base64 payload, with a fresh random prefix."""
        message = text.encode("utf-8")
        if random_prefix is None:
            random_prefix = secrets.token_bytes(_RANDOM_PREFIX)
        elif len(random_prefix) != _RANDOM_PREFIX:
            raise ValueError(f"random_prefix must be {_RANDOM_PREFIX} bytes")
        plain = b"".join(
            (
                random_prefix,
                struct.pack(">I", len(message)),
                message,
                self._corp_id.encode("utf-8"),
            )
        )
        encryptor = self._cipher().encryptor()
        data = encryptor.update(_pkcs7_pad(plain)) + encryptor.finalize()
        return base64.b64encode(data).decode("ascii")

    def _decrypt(self, encrypted: str) -> str:
        """Decrypt a base64 payload and check its receive id; return the message text."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise WeComCryptoError(WeComCryptoReason.DECRYPT_FAILED, "not base64") from None
        if not data or len(data) % 16:
            raise WeComCryptoError(WeComCryptoReason.DECRYPT_FAILED, "bad ciphertext length")
        decryptor = self._cipher().decryptor()
        plain = _pkcs7_unpad(decryptor.update(data) + decryptor.finalize())
        if len(plain) < _HEADER:
            raise WeComCryptoError(WeComCryptoReason.DECRYPT_FAILED, "plaintext too short")
        (length,) = struct.unpack(">I", plain[_RANDOM_PREFIX:_HEADER])
        if _HEADER + length > len(plain):
            raise WeComCryptoError(WeComCryptoReason.DECRYPT_FAILED, "bad message length")
        message = plain[_HEADER : _HEADER + length]
        receive_id = plain[_HEADER + length :]
        if not hmac.compare_digest(receive_id, self._corp_id.encode("utf-8")):
            raise WeComCryptoError(WeComCryptoReason.CORP_ID_MISMATCH)
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise WeComCryptoError(WeComCryptoReason.DECRYPT_FAILED, "not UTF-8") from None

    # -- public protocol ---------------------------------------------------------------------

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Answer WeCom's URL verification (GET) request.

        Pass the query parameters ``msg_signature``, ``timestamp``, ``nonce`` and ``echostr``
        already URL-decoded (as any web framework does). Returns the decrypted ``echostr``,
        which the endpoint must send back verbatim as the response body.

        Raises:
            WeComCryptoError: On a bad signature, stale timestamp, undecryptable ``echostr`` or
                a receive id other than :attr:`corp_id`.
        """
        self._check_request(msg_signature, timestamp, nonce, echostr)
        return self._decrypt(echostr)

    def decrypt_message(
        self, body_xml: bytes | str, msg_signature: str, timestamp: str, nonce: str
    ) -> str:
        """Verify and decrypt a callback (POST) body; return the plaintext message XML.

        Args:
            body_xml: The raw request body, ``<xml>...<Encrypt>...</Encrypt>...</xml>``.
            msg_signature: The ``msg_signature`` query parameter.
            timestamp: The ``timestamp`` query parameter.
            nonce: The ``nonce`` query parameter.

        Raises:
            WeComCryptoError: ``malformed_xml`` if the body is not XML with a non-empty
                ``Encrypt`` element, otherwise as for :meth:`verify_url`.
        """
        root = parse_xml(body_xml)
        node = root.find("Encrypt")
        encrypted = (node.text or "").strip() if node is not None else ""
        if not encrypted:
            raise WeComCryptoError(WeComCryptoReason.MALFORMED_XML, "no Encrypt element")
        return self.decrypt_payload(encrypted, msg_signature, timestamp, nonce)

    def decrypt_payload(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str
                        ) -> str:
        """Verify and decrypt an ``Encrypt`` value already taken from its envelope (XML or, on
        platforms that push JSON, a JSON object); return the plaintext.

        Raises:
            WeComCryptoError: As for :meth:`verify_url`.
        """
        self._check_request(msg_signature, timestamp, nonce, encrypted)
        return self._decrypt(encrypted)

    def encrypt_payload(self, text: str, nonce: str, timestamp: str, *,
                        random_prefix: bytes | None = None) -> tuple[str, str]:
        """Encrypt ``text``; return ``(encrypted, signature)`` for an envelope of the caller's
        format. ``random_prefix`` (16 bytes) is only for reproducing documented examples."""
        encrypted = self._encrypt(text, random_prefix)
        return encrypted, self.sign(timestamp, nonce, encrypted)

    def encrypt_message(self, reply_xml: str, nonce: str, timestamp: str | None = None) -> str:
        """Encrypt a passive reply; return the XML body to send back to WeCom.

        Args:
            reply_xml: The plaintext reply XML (see :func:`siyu.channels.wecom.messages.
                build_text_reply`).
            nonce: A nonce for the reply (the request's nonce may be reused); 1-64 characters
                from ``A-Z a-z 0-9 _ -``.
            timestamp: Unix time as a decimal string; defaults to the injected clock's now.

        Raises:
            ValueError: If ``nonce`` or ``timestamp`` is not in the accepted format.
        """
        if not isinstance(nonce, str) or not _NONCE_RE.fullmatch(nonce):
            raise ValueError("nonce must be 1-64 characters from A-Z a-z 0-9 _ -")
        if timestamp is None:
            timestamp = str(int(self._clock()))
        if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
            raise ValueError("timestamp must be a unix time as a decimal string")
        encrypted = self._encrypt(reply_xml)
        signature = self.sign(timestamp, nonce, encrypted)
        return (
            "<xml>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp>"
            f"<Nonce><![CDATA[{nonce}]]></Nonce>"
            "</xml>"
        )
