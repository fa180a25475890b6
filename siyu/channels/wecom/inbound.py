"""Handle WeCom callbacks: URL verification and encrypted messages, stored for the bot.

The callback must answer within WeCom's 5 seconds, so :func:`handle_callback` only verifies,
decrypts, parses and stores the message (``receive_inbound`` enqueues the bot as a job that
runs after the commit). WeCom retries a callback it got no 200 for, with the same ``MsgId``;
the message's external id is that ``MsgId``, which the service desk stores once.

Refusals: a wrong signature, a stale timestamp or a payload addressed to another corp is
403 (not WeCom, or a replay); a body that is not WeCom's XML is 400. Nothing is stored in
either case, and no secret or message content appears in errors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import desk
from siyu.channels.wecom.crypto import WeComCrypto, WeComCryptoError, WeComCryptoReason
from siyu.channels.wecom.messages import (
    EVENT_CHANGE_EXTERNAL_CHAT,
    EVENT_CHANGE_EXTERNAL_CONTACT,
    WeComInbound,
    parse_message,
)
from siyu.config import Settings
from siyu.customers.identity import IdentityRef
from siyu.errors import SiyuError

CHANNEL = "wecom"
_FORBIDDEN = frozenset({WeComCryptoReason.BAD_SIGNATURE, WeComCryptoReason.STALE_TIMESTAMP,
                        WeComCryptoReason.INVALID_TIMESTAMP,
                        WeComCryptoReason.CORP_ID_MISMATCH})
# What the conversation shows for messages that carry no text.
_PLACEHOLDERS = {"image": "[图片]", "voice": "[语音]", "video": "[视频]", "file": "[文件]",
                 "location": "[位置]", "link": "[链接]"}
# External contacts' ids start with these; members' userids are chosen by the corp.
_EXTERNAL_PREFIXES = ("wm", "wo")


class WeComNotConfigured(SiyuError):
    status_code = 503
    code = "wecom_not_configured"


class WeComBadRequest(SiyuError):
    status_code = 400
    code = "wecom_bad_request"


@dataclass(frozen=True)
class CallbackResult:
    """What a callback did: ``stored`` a new message, saw a ``duplicate``, or ``ignored``."""

    action: str
    message_id: int | None = None
    conversation_id: int | None = None
    customer_id: int | None = None


def make_crypto(settings: Settings) -> WeComCrypto:
    """The callback crypto configured by ``SIYU_WECOM_*``; 503 if it is not configured."""
    token = settings.wecom_token.get_secret_value()
    key = settings.wecom_aes_key.get_secret_value()
    missing = [name for name, value in (("SIYU_WECOM_CORP_ID", settings.wecom_corp_id),
                                        ("SIYU_WECOM_TOKEN", token),
                                        ("SIYU_WECOM_AES_KEY", key)) if not value]
    if missing:
        raise WeComNotConfigured("WeCom callback is not configured: set " + ", ".join(missing))
    try:
        return WeComCrypto(token, key, settings.wecom_corp_id,
                           max_skew_seconds=settings.wecom_max_skew_seconds)
    except ValueError as exc:
        raise WeComNotConfigured(f"WeCom callback is misconfigured: {exc}") from None


def _refusal(exc: WeComCryptoError) -> WeComCryptoError:
    if exc.reason in _FORBIDDEN:
        exc.status_code = 403
    return exc


def _required(params: dict[str, str | None], names: tuple[str, ...]) -> list[str]:
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise WeComBadRequest(
            f"missing query parameter(s): {', '.join(missing)}",
            details=[{"field": n, "reason": "required"} for n in missing])
    return [str(params[n]) for n in names]


def verify_url(crypto: WeComCrypto, params: dict[str, str | None]) -> str:
    """Answer the GET URL verification: the decrypted ``echostr``."""
    signature, timestamp, nonce, echostr = _required(
        params, ("msg_signature", "timestamp", "nonce", "echostr"))
    try:
        return crypto.verify_url(signature, timestamp, nonce, echostr)
    except WeComCryptoError as exc:
        raise _refusal(exc) from None


def decrypt(crypto: WeComCrypto, body: bytes, params: dict[str, str | None]) -> WeComInbound:
    """Verify, decrypt and parse a POSTed callback body (no database work)."""
    signature, timestamp, nonce = _required(params, ("msg_signature", "timestamp", "nonce"))
    if not body:
        raise WeComBadRequest("empty body; expected WeCom's <xml> with <Encrypt>",
                              details=[{"field": "body", "reason": "empty"}])
    try:
        return parse_message(crypto.decrypt_message(body, signature, timestamp, nonce))
    except WeComCryptoError as exc:
        raise _refusal(exc) from None


def sender_identity(inbound: WeComInbound) -> IdentityRef:
    """The sender as an identity: external contacts (``wm``/``wo`` ids) are
    ``wecom_external_userid``, members ``wecom_userid``."""
    if inbound.external_userid:
        return IdentityRef("wecom_external_userid", inbound.external_userid)
    kind = ("wecom_external_userid" if inbound.from_user.startswith(_EXTERNAL_PREFIXES)
            else "wecom_userid")
    return IdentityRef(kind, inbound.from_user)


def _context(inbound: WeComInbound, identity: IdentityRef) -> dict[str, Any]:
    context: dict[str, Any] = {"kind": identity.kind, "userid": identity.value,
                               "corp_id": inbound.to_user, "msg_type": inbound.msg_type}
    if inbound.agent_id:
        context["agent_id"] = inbound.agent_id
    open_kfid = inbound.raw.get("OpenKfId")
    if open_kfid:
        context["open_kfid"] = open_kfid
    return context


def handle_message(session: Session, inbound: WeComInbound, *, settings: Settings
                   ) -> CallbackResult:
    """Store a decrypted callback: a user message goes to the service desk (bot enqueued);
    a customer-contact event is recorded on the customer's timeline; other events are
    acknowledged and ignored. Does not commit."""
    if inbound.is_event:
        return _handle_event(session, inbound, settings=settings)
    identity = sender_identity(inbound)
    text = inbound.content if inbound.msg_type == "text" else None
    if text is None:
        text = _PLACEHOLDERS.get(inbound.msg_type, f"[{inbound.msg_type}]")
    external_id = inbound.msg_id or (
        f"{inbound.from_user}:{inbound.create_time}:{inbound.msg_type}")
    result = desk.receive_inbound(
        session, channel=CHANNEL, identities=[identity], text=text, external_id=external_id,
        sent_at=dt.datetime.fromtimestamp(inbound.create_time, dt.UTC),
        payload={"wecom": _context(inbound, identity)},
    )
    return CallbackResult("duplicate" if result.duplicate else "stored", result.message_id,
                          result.conversation_id, result.customer_id)


def _group_event(session: Session, inbound: WeComInbound, *, settings: Settings
                 ) -> CallbackResult:
    """A customer group changed: a dismissed group's members have all left; otherwise the
    group is read again from WeCom by a job (the callback answers at once)."""
    from siyu.groups import service as groups
    from siyu.groups.tasks import SYNC_CHAT
    from siyu.jobs.service import enqueue

    chat_id = inbound.raw.get("ChatId") or ""
    if not chat_id or len(chat_id) > 64:
        return CallbackResult("ignored")
    if inbound.change_type == "dismiss":
        groups.dismiss(session, chat_id, settings=settings)
    else:
        # WeCom's retries of one change are one job.
        enqueue(session, SYNC_CHAT, {"chat_id": chat_id},
                dedup_key=f"group:{chat_id}:{inbound.create_time}:{inbound.change_type}"
                          f":{inbound.raw.get('UpdateDetail', '')}")
    return CallbackResult("stored")


def _handle_event(session: Session, inbound: WeComInbound, *, settings: Settings
                  ) -> CallbackResult:
    if inbound.event == EVENT_CHANGE_EXTERNAL_CHAT:
        return _group_event(session, inbound, settings=settings)
    if inbound.event != EVENT_CHANGE_EXTERNAL_CONTACT or not inbound.external_userid:
        return CallbackResult("ignored")
    from siyu.events import service as events

    change = inbound.change_type or "change"
    properties = {k: v for k, v in (("member", inbound.user_id),
                                    ("state", inbound.raw.get("State"))) if v}
    welcome = inbound.raw.get("WelcomeCode")
    if change == "add_external_contact" and welcome and len(welcome) <= 512:
        # Valid once, for 20 s: a playbook's wecom_welcome step sends with it
        # (externalcontact/send_welcome_msg). Kept with the event, never logged.
        properties["welcome_code"] = welcome
    record = {
        # The id makes WeCom's retries of the same event one timeline entry.
        "id": f"wecom:{change}:{inbound.external_userid}:{inbound.create_time}",
        "identities": [{"kind": "wecom_external_userid", "value": inbound.external_userid}],
        "type": f"wecom_{change}"[:60],
        "ts": dt.datetime.fromtimestamp(inbound.create_time, dt.UTC).isoformat(),
        "channel": CHANNEL,
        "properties": properties,
    }
    events.ingest(session, "events", [record], settings=settings, source="wecom")
    return CallbackResult("stored")
