"""Web chat: identify the visitor, take their messages in, hand replies to the live stream.

A visitor becomes a :class:`~siyu.channels.webchat.tokens.ChatSession` in one of three ways:
a brand token (:func:`start_with_token`), a phone code sent by SMS (:func:`request_code`,
then :func:`verify_code`), or, in demo mode, by picking a demo customer
(:func:`start_as_demo_customer`). Messages go to the service desk with
:func:`post_message`; replies are read by :func:`poll_replies` (the event stream) once the
outbox marked them delivered.

Phone codes: six digits, only an HMAC-SHA256 of (phone, code) under ``SIYU_SECRET_KEY`` is
stored; a code expires after ``SIYU_SMS_CODE_TTL_SECONDS`` (300), allows
``SIYU_SMS_CODE_MAX_ATTEMPTS`` (5) guesses, and is used once. Sending is limited per phone
(one per ``SIYU_SMS_RESEND_SECONDS``, ``SIYU_SMS_CODES_PER_HOUR`` per hour) and per client
address (:data:`CODES_PER_IP_PER_HOUR`), because each SMS costs money and can be abused to
spam a stranger's phone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.channels import desk
from siyu.channels.config import ChannelSettings
from siyu.channels.models import VerificationCode
from siyu.channels.sms import SmsSender
from siyu.channels.webchat.tokens import ChatSession, verify_token
from siyu.customers.errors import InvalidIdentity
from siyu.customers.identity import KIND_PRIORITY, IdentityRef, Resolver, normalize_phone
from siyu.customers.models import Customer, Identity
from siyu.db import utcnow
from siyu.errors import Forbidden, InvalidInput, NotFound, SiyuError

CHANNEL = "webchat"
CODES_PER_IP_PER_HOUR = 20
DEMO_CUSTOMERS = 20
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
VISIBLE_OUT = frozenset({"sent", "delivered"})
SETTLED_OUT = VISIBLE_OUT | {"failed"}


class TooManyRequests(SiyuError):
    status_code = 429
    code = "too_many_requests"


@dataclass(frozen=True)
class CodeSent:
    phone: str
    expires_in: int
    resend_in: int


@dataclass(frozen=True)
class VerifyOutcome:
    """The result of checking a code. On failure nothing raises, so the caller commits the
    counted attempt before answering (a rolled-back attempt would allow endless guessing)."""

    session: ChatSession | None
    reason: str | None = None
    attempts_left: int = 0


def _phone(value: Any, region: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("phone: required", details=[{"field": "phone", "reason": "required"}])
    try:
        return normalize_phone(value, region)
    except InvalidIdentity as exc:
        raise InvalidInput(f"phone: {exc.message}",
                           details=[{"field": "phone", "reason": exc.message}]) from None


def _code_hash(secret_key: str, phone: str, code: str) -> str:
    return hmac.new(secret_key.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def _resolve(session: Session, refs: Iterable[IdentityRef]) -> int:
    return Resolver(session, source=CHANNEL).resolve_many([list(refs)])[0]


def _name(session: Session, customer_id: int) -> str | None:
    return session.scalar(select(Customer.name).where(Customer.id == customer_id))


def start_with_token(session: Session, token: Any, *, cs: ChannelSettings,
                     region: str = "CN") -> ChatSession:
    """Identify the visitor by a brand token: its identities are resolved to one customer
    (created or linked as the brand vouches for them)."""
    if not isinstance(token, str) or not token.strip():
        raise InvalidInput("token: required", details=[{"field": "token", "reason": "required"}])
    claims = verify_token(cs.webchat_secret.get_secret_value(), token.strip(),
                          max_lifetime=cs.webchat_token_max_seconds, region=region)
    customer_id = _resolve(session, claims.identities)
    return ChatSession(customer_id, claims.identities, "token",
                       claims.name or _name(session, customer_id))


def request_code(session: Session, phone: Any, *, cs: ChannelSettings, secret_key: str,
                 sms: SmsSender, client_ip: str | None, region: str = "CN",
                 brand: str = "私域客服") -> CodeSent:
    """Send a verification code to ``phone`` by SMS (rate limited; see the module doc)."""
    e164 = _phone(phone, region)
    now = utcnow()
    last = session.scalar(select(func.max(VerificationCode.created_at))
                          .where(VerificationCode.phone == e164))
    if last is not None and (now - last).total_seconds() < cs.sms_resend_seconds:
        wait = cs.sms_resend_seconds - int((now - last).total_seconds())
        raise TooManyRequests(f"a code was sent to this phone just now; retry in {wait} s",
                              details={"field": "phone", "reason": "resend too soon",
                                       "retry_after": wait})
    hour_ago = now - dt.timedelta(hours=1)
    sent = session.scalar(select(func.count()).select_from(VerificationCode).where(
        VerificationCode.phone == e164, VerificationCode.created_at > hour_ago)) or 0
    if sent >= cs.sms_codes_per_hour:
        raise TooManyRequests("too many codes sent to this phone in the last hour",
                              details={"field": "phone", "reason": "hourly limit"})
    if client_ip:
        from_ip = session.scalar(select(func.count()).select_from(VerificationCode).where(
            VerificationCode.client_ip == client_ip,
            VerificationCode.created_at > hour_ago)) or 0
        if from_ip >= CODES_PER_IP_PER_HOUR:
            raise TooManyRequests("too many codes requested from this address",
                                  details={"field": "phone", "reason": "address limit"})
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(VerificationCode(
        phone=e164, code_hash=_code_hash(secret_key, e164, code), attempts=0, created_at=now,
        expires_at=now + dt.timedelta(seconds=cs.sms_code_ttl_seconds), client_ip=client_ip))
    session.flush()
    minutes = max(1, cs.sms_code_ttl_seconds // 60)
    # Sent last: if the provider fails the caller's transaction rolls back, leaving no code.
    sms.send(e164, f"【{brand}】您的验证码是 {code}，{minutes} 分钟内有效。请勿告诉他人。",
             template="verification_code", params={"code": code, "minutes": minutes})
    return CodeSent(e164, cs.sms_code_ttl_seconds, cs.sms_resend_seconds)


def verify_code(session: Session, phone: Any, code: Any, *, cs: ChannelSettings,
                secret_key: str, region: str = "CN") -> VerifyOutcome:
    """Check ``code`` against the latest code sent to ``phone``. On success the phone is a
    verified identity of the customer (created if new) and a chat session is returned."""
    e164 = _phone(phone, region)
    if not isinstance(code, str) or not re.fullmatch(r"[0-9]{6}", code.strip()):
        raise InvalidInput("code: must be the 6 digits from the SMS",
                           details=[{"field": "code", "reason": "must be 6 digits"}])
    row = session.scalars(
        select(VerificationCode).where(VerificationCode.phone == e164,
                                       VerificationCode.consumed_at.is_(None))
        .order_by(VerificationCode.created_at.desc(), VerificationCode.id.desc()).limit(1)
    ).first()
    now = utcnow()
    if row is None or row.expires_at <= now:
        return VerifyOutcome(None, "expired")
    if row.attempts >= cs.sms_code_max_attempts:
        return VerifyOutcome(None, "too_many_attempts")
    row.attempts += 1
    if not hmac.compare_digest(row.code_hash, _code_hash(secret_key, e164, code.strip())):
        left = cs.sms_code_max_attempts - row.attempts
        return VerifyOutcome(None, "wrong_code" if left else "too_many_attempts", left)
    row.consumed_at = now
    ref = IdentityRef("phone", e164, verified=True)
    customer_id = _resolve(session, [ref])
    return VerifyOutcome(ChatSession(customer_id, (ref,), "phone", _name(session, customer_id)))


def _chat_identities(session: Session, customer_id: int) -> tuple[IdentityRef, ...]:
    rows = session.execute(select(Identity.kind, Identity.value, Identity.verified)
                           .where(Identity.customer_id == customer_id))
    refs = sorted((IdentityRef(k, v, bool(ver)) for k, v, ver in rows),
                  key=lambda r: KIND_PRIORITY.get(r.kind, 99))
    return tuple(refs[:1])


def demo_customers(session: Session, *, limit: int = DEMO_CUSTOMERS) -> list[dict[str, Any]]:
    """Customers a demo visitor may chat as: the ``limit`` with the most recent events of
    their own (the showcase customers' histories run up to the present, so they come first).
    The journeys' stage and scenario events are siyu's own conclusions, written for many
    customers at the moment of each recomputation: they would put whoever the last one
    touched first."""
    from siyu.events.models import Event
    from siyu.journeys.service import SCENARIO_ENTERED, SCENARIO_EXITED, STAGE_CHANGED

    seen: dict[int, dt.datetime] = {}
    scan = session.execute(select(Event.customer_id, Event.ts)
                           .where(Event.type.not_in([STAGE_CHANGED, SCENARIO_ENTERED,
                                                     SCENARIO_EXITED]))
                           .order_by(Event.ts.desc()).limit(limit * 50))
    for customer_id, ts in scan:
        if customer_id not in seen:
            seen[customer_id] = ts
            if len(seen) >= limit:
                break
    if not seen:
        ids = list(session.scalars(select(Customer.id).where(Customer.status == "active")
                                   .order_by(Customer.id).limit(limit)))
    else:
        ids = list(seen)
    customers = {c.id: c for c in session.scalars(
        select(Customer).where(Customer.id.in_(ids), Customer.status == "active"))}
    out = []
    for customer_id in ids:
        customer = customers.get(customer_id)
        if customer is None:
            continue
        identities = _chat_identities(session, customer_id)
        if not identities:
            continue
        out.append({"id": customer.id, "name": customer.name or f"客户 {customer.id}",
                    "tier": customer.tier, "city": customer.city,
                    "last_active": seen[customer_id].isoformat() if customer_id in seen
                    else None})
    return out


def start_as_demo_customer(session: Session, customer_id: Any, *, cs: ChannelSettings
                           ) -> ChatSession:
    """Chat as an existing customer: only in demo mode (``SIYU_WEBCHAT_DEMO=1``)."""
    if not cs.webchat_demo:
        raise Forbidden("demo chat is off (SIYU_WEBCHAT_DEMO is not set)")
    if isinstance(customer_id, bool) or not isinstance(customer_id, int):
        raise InvalidInput("customer_id: must be an integer",
                           details=[{"field": "customer_id", "reason": "must be an integer"}])
    customer = session.get(Customer, customer_id)
    if customer is None or customer.status != "active":
        raise NotFound(f"customer {customer_id} not found")
    identities = _chat_identities(session, customer_id)
    if not identities:
        raise InvalidInput("customer_id: this customer has no identity to chat with",
                           details=[{"field": "customer_id", "reason": "no identity"}])
    return ChatSession(customer_id, identities, "demo", customer.name)


@dataclass(frozen=True)
class Posted:
    message_id: int
    conversation_id: int
    duplicate: bool


def post_message(session: Session, chat: ChatSession, text: Any, client_id: Any, *,
                 cs: ChannelSettings) -> Posted:
    """Hand a visitor's message to the service desk. ``client_id`` is chosen by the page per
    message, so a re-sent request (flaky network) is stored once."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text: required", details=[{"field": "text", "reason": "required"}])
    if len(text) > cs.webchat_max_text:
        raise InvalidInput(f"text: longer than {cs.webchat_max_text} characters",
                           details=[{"field": "text", "reason": "too long"}])
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise InvalidInput("client_id: 8-64 characters from A-Z a-z 0-9 _ -",
                           details=[{"field": "client_id", "reason": "invalid"}])
    external_id = f"{chat.customer_id}:{client_id}"
    if not desk.inbound_exists(session, channel=CHANNEL, external_id=external_id):
        _check_rate(session, chat.customer_id, cs)  # a re-sent message is never refused
    result = desk.receive_inbound(
        session, channel=CHANNEL, identities=list(chat.identities), text=text.strip(),
        external_id=external_id,
        payload={"webchat": {"via": chat.via}},
    )
    return Posted(result.message_id, result.conversation_id, result.duplicate)


RATE_WINDOW = dt.timedelta(minutes=1)


def _check_rate(session: Session, customer_id: int, cs: ChannelSettings) -> None:
    """Refuse a visitor's message beyond ``webchat_messages_per_minute`` in the last minute
    (a flood would bury the conversation for the agent), saying when to send again."""
    now = utcnow()
    count, first = desk.inbound_window(session, customer_id, channel=CHANNEL,
                                       since=now - RATE_WINDOW)
    limit = cs.webchat_messages_per_minute
    if count < limit:
        return
    wait = max(1, math.ceil(((first or now) + RATE_WINDOW - now).total_seconds()))
    raise TooManyRequests(
        f"您发送消息太频繁了，请 {wait} 秒后再发。已发出的消息客服都能看到，无需重复发送。",
        details={"field": "text", "reason": f"more than {limit} messages a minute",
                 "retry_after": wait})


def _public(message: dict[str, Any]) -> dict[str, Any]:
    payload = message["payload"]
    return {"id": message["id"], "direction": message["direction"],
            "sender": message["sender"], "text": message["text"], "at": message["at"],
            "conversation_id": message["conversation_id"],
            "csat": bool(payload.get("csat") or payload.get("kind") == "csat"
                         or payload.get("type") == "csat")}


def history(session: Session, chat: ChatSession, *, limit: int = 50) -> dict[str, Any]:
    """The visitor's recent web chat messages (their own and delivered replies) and the
    cursor the live stream continues from."""
    rows = desk.customer_messages(session, chat.customer_id, channel=CHANNEL, after_id=0,
                                  limit=100_000)
    rows = rows[-limit * 2:]
    visible = [r for r in rows if r["direction"] == "in" or r["status"] in VISIBLE_OUT]
    pending = [r["id"] for r in rows if r["direction"] == "out"
               and r["status"] not in SETTLED_OUT]
    cursor = (min(pending) - 1) if pending else (rows[-1]["id"] if rows else 0)
    return {"messages": [_public(r) for r in visible[-limit:]], "cursor": cursor}


def poll_replies(session: Session, customer_id: int, cursor: int, seen: set[int]
                 ) -> tuple[list[dict[str, Any]], int]:
    """Replies delivered since ``cursor`` that are not in ``seen``; and the new cursor.

    The cursor stops before the oldest reply still queued, so a reply delivered after a
    younger one is still found; ``seen`` keeps each reply from being sent twice.
    """
    rows = desk.customer_messages(session, customer_id, channel=CHANNEL, after_id=cursor,
                                  limit=200, direction="out")
    fresh = []
    new_cursor = cursor
    blocked = False
    for row in rows:
        if row["status"] in VISIBLE_OUT and row["id"] not in seen:
            fresh.append(_public(row))
            seen.add(row["id"])
        if row["status"] not in SETTLED_OUT:
            blocked = True
        if not blocked:
            new_cursor = row["id"]
    return fresh, new_cursor
