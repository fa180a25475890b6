"""Handle official account callbacks: server verification, messages for the desk, events.

The callback must answer within the platform's 5 seconds, so it only verifies, parses and
stores (``receive_inbound`` queues the bot as a job that runs after the commit). The platform
retries a callback three times when it gets no answer; a message is stored once per
``MsgId`` and an event once per ``FromUserName`` + ``CreateTime`` (the platform's advice), so
retries change nothing. A refused callback (403/400) stores nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import desk
from siyu.channels.config import ChannelSettings
from siyu.channels.oa.protocol import OaInbound, OaProtocol
from siyu.config import Settings
from siyu.customers.identity import IdentityRef
from siyu.errors import SiyuError

CHANNEL = "oa"
# What the conversation shows for messages that carry no text.
_PLACEHOLDERS = {"image": "[图片]", "voice": "[语音]", "video": "[视频]",
                 "shortvideo": "[小视频]", "location": "[位置]", "link": "[链接]",
                 "file": "[文件]"}
# Events that become customer events, by the platform's ``Event`` value.
EVENT_TYPES = {"subscribe": "oa_subscribe", "unsubscribe": "oa_unsubscribe",
               "scan": "oa_scan", "click": "oa_menu_click", "view": "oa_menu_view"}
SCENE_PREFIX = "qrscene_"


class OaNotConfigured(SiyuError):
    status_code = 503
    code = "oa_not_configured"


class OaBadRequest(SiyuError):
    status_code = 400
    code = "oa_bad_request"


@dataclass(frozen=True)
class CallbackResult:
    """``stored`` a new message or event, saw a ``duplicate``, or ``ignored`` it."""

    action: str
    message_id: int | None = None
    conversation_id: int | None = None
    customer_id: int | None = None


def make_protocol(cs: ChannelSettings) -> OaProtocol:
    """The callback protocol configured by ``SIYU_OA_*``; 503 when it is not configured."""
    token = cs.oa_token.get_secret_value()
    missing = [name for name, value in (("SIYU_OA_APPID", cs.oa_appid),
                                        ("SIYU_OA_TOKEN", token)) if not value]
    if missing:
        raise OaNotConfigured("official account callback is not configured: set "
                              + ", ".join(missing))
    try:
        return OaProtocol(token, cs.oa_appid, cs.oa_aes_key.get_secret_value() or None,
                          max_skew_seconds=cs.oa_max_skew_seconds)
    except ValueError as exc:
        raise OaNotConfigured(f"official account callback is misconfigured: {exc}") from None


def _required(params: dict[str, str], names: tuple[str, ...]) -> list[str]:
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise OaBadRequest(f"missing query parameter(s): {', '.join(missing)}",
                           details=[{"field": n, "reason": "required"} for n in missing])
    return [params[n] for n in names]


def verify_url(protocol: OaProtocol, params: dict[str, str]) -> str:
    """Answer the GET server verification: ``echostr`` once the signature holds."""
    signature, timestamp, nonce, echostr = _required(
        params, ("signature", "timestamp", "nonce", "echostr"))
    return protocol.verify_url(signature, timestamp, nonce, echostr)


def open_callback(protocol: OaProtocol, body: bytes, params: dict[str, str]) -> OaInbound:
    """Verify and parse a POSTed callback (no database work)."""
    safe = (params.get("encrypt_type") or "raw").lower() == "aes"
    _required(params, ("msg_signature", "timestamp", "nonce") if safe
              else ("signature", "timestamp", "nonce"))
    if not body:
        raise OaBadRequest("empty body", details=[{"field": "body", "reason": "empty"}])
    return protocol.open(body, params)


def identities(inbound: OaInbound) -> list[IdentityRef]:
    """The follower as identities: ``wechat_openid``, and ``wechat_unionid`` when given."""
    refs = [IdentityRef("wechat_openid", inbound.openid)]
    if inbound.unionid:
        refs.append(IdentityRef("wechat_unionid", inbound.unionid))
    return refs


def message_text(inbound: OaInbound) -> str:
    """What the conversation shows: the text, the platform's speech recognition of a voice
    message, a link's title, else a placeholder."""
    if inbound.msg_type == "text":
        return inbound.fields.get("Content", "")
    if inbound.msg_type == "voice" and inbound.get("Recognition"):
        return str(inbound.get("Recognition"))
    placeholder = _PLACEHOLDERS.get(inbound.msg_type, f"[{inbound.msg_type}]")
    if inbound.msg_type == "link" and inbound.get("Title"):
        return f"{placeholder}{inbound.get('Title')}"
    if inbound.msg_type == "location" and inbound.get("Label"):
        return f"{placeholder}{inbound.get('Label')}"
    return placeholder


def _context(inbound: OaInbound) -> dict[str, Any]:
    return {"openid": inbound.openid, "account": inbound.to_user, "msg_type": inbound.msg_type}


def handle(session: Session, inbound: OaInbound, *, settings: Settings) -> CallbackResult:
    """Store a verified callback: a message goes to the service desk (bot queued), a known
    event to the customer's timeline; other events are acknowledged. Does not commit."""
    if inbound.is_event:
        return _handle_event(session, inbound, settings=settings)
    external_id = inbound.msg_id or f"{inbound.openid}:{inbound.create_time}"
    result = desk.receive_inbound(
        session, channel=CHANNEL, identities=identities(inbound),
        text=message_text(inbound)[:2000], external_id=external_id,
        sent_at=dt.datetime.fromtimestamp(inbound.create_time, dt.UTC),
        payload={"oa": _context(inbound)})
    return CallbackResult("duplicate" if result.duplicate else "stored", result.message_id,
                          result.conversation_id, result.customer_id)


def event_properties(inbound: OaInbound) -> dict[str, str]:
    """A follow, scan or menu event's details: the QR code's ``scene`` (so channel codes
    work here), its ``ticket``, a menu's ``key`` or ``url``."""
    event = (inbound.event or "").lower()
    key = inbound.get("EventKey") or ""
    props: dict[str, str] = {}
    if event in ("subscribe", "scan"):
        scene = key[len(SCENE_PREFIX):] if key.startswith(SCENE_PREFIX) else key
        if scene:
            props["scene"] = scene
        if inbound.get("Ticket"):
            props["ticket"] = str(inbound.get("Ticket"))
    elif event == "click" and key:
        props["key"] = key
    elif event == "view" and key:
        props["url"] = key
    return props


def _handle_event(session: Session, inbound: OaInbound, *, settings: Settings
                  ) -> CallbackResult:
    event_type = EVENT_TYPES.get((inbound.event or "").lower())
    if event_type is None:
        return CallbackResult("ignored")
    from siyu.events import service as events

    record = {
        # FromUserName + CreateTime: the platform's own advice for deduplicating events.
        "id": f"oa:{inbound.openid}:{inbound.create_time}"[:200],
        "identities": [{"kind": r.kind, "value": r.value} for r in identities(inbound)],
        "type": event_type,
        "ts": dt.datetime.fromtimestamp(inbound.create_time, dt.UTC).isoformat(),
        "channel": CHANNEL,
        "properties": event_properties(inbound),
    }
    result = events.ingest(session, "events", [record], settings=settings, source="oa")
    return CallbackResult("stored" if result.accepted else "duplicate")
