"""Opt-out, honoured at once: an SMS reply 退订/TD, an e-mail's unsubscribe link (with RFC
8058 one-click ``List-Unsubscribe``), a hard bounce, or the SMS provider's word that the
number blocks the brand each withdraw the customer's **marketing** consent on that channel
(service messages — answers to a customer who wrote, verification codes — are not
marketing and go on). The withdrawal is an ordinary consent record with its source
(``短信回复退订``, ``邮件退订链接``, ``退信``, ``运营商拦截``), so the 360 page shows it, the
rule language's ``consent(...)`` sees it and the outbox stops queued marketing to it
before it is sent.

**Unsubscribe links** are signed with the install's ``unsubscribe`` key (never rotated:
a link in a mail sent last year must still work) and name the customer and the channel;
they need ``SIYU_PUBLIC_URL``, the address customers reach siyu's pages at. Opening one
shows a confirmation page (mail scanners that follow links unsubscribe nobody); its
button, or a mail client's one-click POST, withdraws the consent.

**The SMS provider's webhook** ``POST /channels/sms/webhook`` is signed like the call
centre's (:mod:`siyu.kit.signing`, ``SIYU_SMS_WEBHOOK_SECRET``) and carries JSON events
with an ``event_id``: ``{"type": "reply", "from": PHONE, "text": ...}`` for a customer's
reply and ``{"type": "status", "to": PHONE, "status": ...}`` for a delivery report (a
``blocked`` or ``unsubscribed`` status opts the number out). Each event is stored on the
customer's timeline as ``sms_reply`` / ``sms_status`` under its event id, so a replayed
event changes nothing. A number that no customer holds is answered and forgotten: siyu
never creates a customer from an SMS reply, and never sends marketing to an unknown
number.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers import service as customers
from siyu.customers.identity import canonical_customer_id, normalize_phone
from siyu.customers.models import Consent, Identity
from siyu.db import utcnow
from siyu.errors import InvalidInput, SiyuError

#: What customers reply to stop marketing SMS (compared after removing spaces and
#: punctuation, case-insensitively): the carriers' conventions and the plain words.
OPT_OUT_WORDS = frozenset({"退订", "TD", "T", "N", "R", "退", "取消订阅", "拒收", "STOP",
                           "UNSUBSCRIBE"})
#: Appended to every marketing SMS that does not already say how to stop.
SMS_MARKETING_SUFFIX = "回T退订"
#: Delivery-report statuses that mean the number refuses the brand's messages.
BLOCKING_STATUSES = frozenset({"blocked", "unsubscribed", "blacklisted"})

SOURCES = {"sms_reply": "短信回复退订", "email_link": "邮件退订链接", "bounce": "退信",
           "sms_blocked": "运营商拦截"}
CHANNEL_NAMES = {"sms": "短信", "email": "邮件", "wecom": "企业微信", "oa": "公众号",
                 "webchat": "网页聊天"}

_LINK_SALT = "siyu.channels.unsubscribe"
_STRIP = re.compile(r"[\s\W_]+", re.UNICODE)


def is_opt_out(text: str) -> bool:
    """Whether an SMS reply asks to stop: ``退订``, ``TD``, ``t``, ``退订！`` yes; ``退订单``
    or ``我想退货`` no (a request about an order is for the service desk)."""
    word = _STRIP.sub("", unicodedata.normalize("NFKC", text or "")).upper()
    return word in OPT_OUT_WORDS


def is_opt_out_source(source: str) -> bool:
    """Whether a consent withdrawal with this source was the customer refusing the brand
    (a reply, a link, a bounce, a block, or a source written ``opt_out...`` by an import)
    rather than a consent never given: the playbooks' ``opted_out`` reason."""
    return (source.startswith(("opt_out", "退信")) or "退订" in source
            or source == SOURCES["sms_blocked"])


def opt_out(session: Session, customer_id: int, *, channel: str, source: str,
            at: dt.datetime | None = None) -> bool:
    """Withdraw ``customer_id``'s marketing consent on ``channel``; False when it is
    already withdrawn (nothing is recorded twice)."""
    cid = canonical_customer_id(session, customer_id)
    latest = session.scalar(
        select(Consent.granted).where(Consent.customer_id == cid, Consent.channel == channel,
                                      Consent.purpose == "marketing")
        .order_by(Consent.at.desc(), Consent.id.desc()).limit(1))
    if latest is False:
        return False
    customers.record_consent(session, cid, channel=channel, purpose="marketing",
                             granted=False, source=source, at=at or utcnow())
    return True


# -- unsubscribe links -----------------------------------------------------------------


class LinkRefused(SiyuError):
    status_code = 404
    code = "unsubscribe_link_invalid"


def _serializer(settings: Settings) -> Any:
    from itsdangerous import URLSafeSerializer

    from siyu.auth import secrets

    return URLSafeSerializer(secrets.purpose_key(settings, "unsubscribe").hex(),
                             salt=_LINK_SALT)


def unsubscribe_token(settings: Settings, customer_id: int, channel: str) -> str:
    return str(_serializer(settings).dumps({"c": customer_id, "ch": channel}))


def unsubscribe_url(settings: Settings, public_url: str, customer_id: int, channel: str
                    ) -> str | None:
    """The customer's unsubscribe link for ``channel``, or None without a public URL."""
    base = public_url.strip().rstrip("/")
    if not base:
        return None
    return f"{base}/unsubscribe/{unsubscribe_token(settings, customer_id, channel)}"


def read_unsubscribe(settings: Settings, token: str) -> tuple[int, str]:
    """(customer id, channel) of a genuine link; forged or altered ones are refused."""
    from itsdangerous import BadSignature

    try:
        data = _serializer(settings).loads(token)
        cid, channel = int(data["c"]), str(data["ch"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise LinkRefused("退订链接无效或已损坏") from None
    if channel not in CHANNEL_NAMES:
        raise LinkRefused("退订链接无效或已损坏")
    return cid, channel


def unsubscribe(session: Session, settings: Settings, token: str) -> tuple[int, str, bool]:
    """Honour an unsubscribe link: (customer id, channel, whether this withdrew it)."""
    cid, channel = read_unsubscribe(settings, token)
    return cid, channel, opt_out(session, cid, channel=channel, source=SOURCES["email_link"]
                                 if channel == "email" else f"{CHANNEL_NAMES[channel]}退订链接")


# -- the SMS provider's webhook --------------------------------------------------------


class _SmsEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    event_id: str = Field(min_length=1, max_length=100)
    at: float | None = None


class SmsReply(_SmsEvent):
    type: Literal["reply"]
    phone: str = Field(alias="from", min_length=3, max_length=40)
    text: str = Field(max_length=2000)


class SmsStatus(_SmsEvent):
    type: Literal["status"]
    phone: str = Field(alias="to", min_length=3, max_length=40)
    status: str = Field(min_length=1, max_length=40)
    provider_message_id: str | None = Field(default=None, max_length=200)


_EVENT = TypeAdapter(Annotated[SmsReply | SmsStatus, Field(discriminator="type")])


def parse_sms_event(body: bytes) -> SmsReply | SmsStatus:
    """Validate one webhook body; errors name the field and the reason."""
    try:
        return _EVENT.validate_json(body)
    except ValidationError as exc:
        details = []
        for e in exc.errors(include_url=False, include_input=False):
            loc = [str(p) for p in e["loc"]]
            if loc and loc[0] in ("reply", "status"):  # the union's tag, not a field
                loc = loc[1:]
            details.append({"field": ".".join(loc) or "body", "reason": e["msg"]})
        raise InvalidInput("invalid SMS webhook event", details=details) from None


def handle_sms_event(session: Session, event: SmsReply | SmsStatus, *, settings: Settings
                     ) -> dict[str, Any]:
    """Apply one event; the caller commits. Answers ``{"matched", "opted_out",
    "duplicate"}``."""
    from siyu.events.service import ingest

    try:
        phone = normalize_phone(event.phone)
    except Exception:
        raise InvalidInput("invalid SMS webhook event", details=[
            {"field": "from" if event.type == "reply" else "to",
             "reason": "not a valid phone number"}]) from None
    owners = sorted({canonical_customer_id(session, c) for c in session.scalars(
        select(Identity.customer_id).where(Identity.kind == "phone", Identity.value == phone))})
    if not owners:
        return {"matched": 0, "opted_out": 0, "duplicate": False}
    at = (dt.datetime.fromtimestamp(event.at, dt.UTC) if event.at is not None else utcnow())
    kind = "sms_reply" if event.type == "reply" else "sms_status"
    properties: dict[str, Any] = (
        {"text": event.text} if isinstance(event, SmsReply)
        else {"status": event.status, "provider_message_id": event.provider_message_id})
    result = ingest(session, "events", [
        {"id": f"sms:{event.event_id}", "type": kind, "ts": at.isoformat(),
         "channel": "sms", "identities": [{"kind": "phone", "value": phone}],
         "properties": properties}], settings=settings, source="sms")
    if result.rejected:
        raise InvalidInput("invalid SMS webhook event",
                           details=[e for r in result.rejected for e in r.errors])
    if not result.accepted:
        return {"matched": len(owners), "opted_out": 0, "duplicate": True}
    if isinstance(event, SmsReply):
        from siyu.events import hooks

        for cid in owners:  # a playbook waiting for an SMS reply goes on
            hooks.run_after_reply(session, cid, "sms")
    stops = (is_opt_out(event.text) if isinstance(event, SmsReply)
             else event.status.strip().lower() in BLOCKING_STATUSES)
    source = SOURCES["sms_reply"] if event.type == "reply" else SOURCES["sms_blocked"]
    opted = sum(opt_out(session, cid, channel="sms", source=source, at=at)
                for cid in owners) if stops else 0
    return {"matched": len(owners), "opted_out": int(opted), "duplicate": False}
