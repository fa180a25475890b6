"""WeCom (企业微信) message XML: parse decrypted callbacks, build passive replies.

:func:`parse_message` turns the plaintext XML returned by
:meth:`siyu.channels.wecom.crypto.WeComCrypto.decrypt_message` into a :class:`WeComInbound`;
:func:`build_text_reply` (or :func:`reply_text`) writes the plaintext XML of a passive text
reply, to be encrypted with :meth:`~siyu.channels.wecom.crypto.WeComCrypto.encrypt_message`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from siyu.channels.wecom.crypto import WeComCryptoError, WeComCryptoReason, parse_xml

__all__ = [
    "EVENT_CHANGE_EXTERNAL_CHAT",
    "EVENT_CHANGE_EXTERNAL_CONTACT",
    "WeComInbound",
    "build_text_reply",
    "parse_message",
    "reply_text",
]

EVENT_CHANGE_EXTERNAL_CONTACT = "change_external_contact"
EVENT_CHANGE_EXTERNAL_CHAT = "change_external_chat"
"""Event sent when a member adds, edits or removes an external contact (客户联系)."""

# Characters XML 1.0 forbids anywhere, even in CDATA.
_XML_INVALID_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class WeComInbound:
    """One decrypted WeCom callback: a user message or an event.

    Attributes:
        to_user: ``ToUserName``: the corp id that received the callback.
        from_user: ``FromUserName``: the sender's userid (``sys`` for system events).
        create_time: ``CreateTime``: unix time the message was created.
        msg_type: ``MsgType``: ``text``, ``image``, ``voice``, ``event``, ...
        content: ``Content`` of a text message, else ``None``.
        msg_id: ``MsgId`` as a string (a 64-bit id), ``None`` for events.
        agent_id: ``AgentID`` of the receiving app, if present.
        event: ``Event`` name (lower-cased as WeCom sends it) when ``msg_type`` is ``event``.
        external_userid: ``ExternalUserID`` of the external contact, for customer events.
        raw: Every element's text by tag; nested elements are keyed ``Parent.Child``.
    """

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    content: str | None
    msg_id: str | None
    agent_id: str | None
    event: str | None
    external_userid: str | None = None
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def is_event(self) -> bool:
        """Whether this callback is an event rather than a user message."""
        return self.msg_type == "event"

    @property
    def change_type(self) -> str | None:
        """``ChangeType`` of a customer-contact event (e.g. ``add_external_contact``)."""
        return self.raw.get("ChangeType")

    @property
    def user_id(self) -> str | None:
        """``UserID`` of the member concerned by a customer-contact event."""
        return self.raw.get("UserID")


def _flatten(element: Element, prefix: str, out: dict[str, str]) -> None:
    for child in element:
        if not isinstance(child.tag, str):  # pragma: no cover - comments/PIs are dropped
            continue
        key = f"{prefix}{child.tag}"
        if len(child):
            _flatten(child, f"{key}.", out)
        else:
            out.setdefault(key, (child.text or "").strip())


def parse_message(xml: bytes | str) -> WeComInbound:
    """Parse a decrypted WeCom message or event XML.

    Raises:
        WeComCryptoError: ``malformed_xml`` if the XML is not well-formed, its root is not
            ``<xml>``, or ``ToUserName``, ``FromUserName``, ``CreateTime`` or ``MsgType`` is
            missing or ``CreateTime`` is not an integer.
    """
    root = parse_xml(xml)
    if root.tag != "xml":
        raise WeComCryptoError(WeComCryptoReason.MALFORMED_XML, "root element is not <xml>")
    raw: dict[str, str] = {}
    _flatten(root, "", raw)
    missing = [k for k in ("ToUserName", "FromUserName", "CreateTime", "MsgType") if not raw.get(k)]
    if missing:
        raise WeComCryptoError(WeComCryptoReason.MALFORMED_XML, "missing " + ", ".join(missing))
    try:
        create_time = int(raw["CreateTime"])
    except ValueError:
        raise WeComCryptoError(
            WeComCryptoReason.MALFORMED_XML, "CreateTime is not an integer"
        ) from None

    def optional(tag: str) -> str | None:
        value = raw.get(tag)
        return value if value else None

    msg_type = raw["MsgType"]
    content_node = root.find("Content")
    content = None
    if content_node is not None and content_node.text is not None:
        content = content_node.text  # keep user text exactly as sent, whitespace included
    return WeComInbound(
        to_user=raw["ToUserName"],
        from_user=raw["FromUserName"],
        create_time=create_time,
        msg_type=msg_type,
        content=content,
        msg_id=optional("MsgId"),
        agent_id=optional("AgentID"),
        event=optional("Event") if msg_type == "event" else None,
        external_userid=optional("ExternalUserID"),
        raw=raw,
    )


def _cdata(value: str) -> str:
    """Wrap ``value`` in CDATA, splitting any ``]]>`` and dropping XML-forbidden characters."""
    cleaned = _XML_INVALID_RE.sub("", value)
    return "<![CDATA[" + cleaned.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_text_reply(
    to_user: str, from_user: str, content: str, create_time: int | None = None
) -> str:
    """Build the plaintext XML of a passive text reply.

    Args:
        to_user: The member's userid (the inbound ``FromUserName``).
        from_user: The corp id (the inbound ``ToUserName``).
        content: Reply text; WeCom caps text messages at 2048 bytes.
        create_time: Unix time; defaults to now.
    """
    if create_time is None:
        create_time = int(time.time())
    return (
        "<xml>"
        f"<ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time)}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{_cdata(content)}</Content>"
        "</xml>"
    )


def reply_text(inbound: WeComInbound, content: str, create_time: int | None = None) -> str:
    """Build a passive text reply to ``inbound`` (sender and receiver swapped)."""
    return build_text_reply(inbound.from_user, inbound.to_user, content, create_time)
