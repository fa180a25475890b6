"""Run a call, one webhook event at a time: identify, greet, let the bot answer final
utterances, transfer into the agent desk, record the end.

Every event is one transaction with its replay guard (the event id's row): a refused or
failed event leaves nothing behind, and a replayed id is refused (409).

* **Identification before the first word**: the calling number, normalised like every
  phone, names the customer only through the ``phone`` identity they hold; an unknown
  number is a visitor and no customer is created until the caller says something (then
  identity resolution creates one from the number — never a fuzzy match).
* **The bot**: each *final* utterance goes through the service desk exactly as a chat
  message (``receive_inbound``, then the bot at once instead of as a job, because the call
  waits for the answer); its replies are spoken, shaped for speech. Partial utterances are
  ignored. The first greeting of a known caller names what just went wrong
  (「您刚才 14点02分 的付款…没有成功」) before they explain.
* **Transfer**: when the bot hands off (转人工, anger, low confidence) the conversation is in
  the desk's queue like a chat, and the call centre is told to transfer to that skill
  group's queue (or to the agent routing picked).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.channels.phone.models import PhoneCall, PhoneWebhookEvent
from siyu.channels.phone.protocol import (
    CallEnded,
    CallStarted,
    CallTransferred,
    Dtmf,
    PhoneRefused,
    Utterance,
)
from siyu.channels.phone.speech import for_speech
from siyu.config import Settings
from siyu.customers.errors import InvalidIdentity
from siyu.customers.identity import IdentityRef, normalize_identity
from siyu.customers.models import Identity
from siyu.db import utcnow

CHANNEL = "phone"
GREETING_KNOWN = "{salutation}您好，这里是客服中心，请问有什么可以帮您？"
GREETING_UNKNOWN = "您好，这里是客服中心，请问有什么可以帮您？"
LISTEN = {"type": "listen", "timeout_seconds": 8}
CSAT_PROMPT = "请为本次服务打分，满意请按5，不满意请按1，按1到5之间的数字即可。"
CSAT_THANKS = "感谢您的评价，祝您生活愉快，再见。"
# The caller is done: ask for the satisfaction score on the keypad before hanging up.
CLOSING_INTENTS = ("goodbye", "thanks")
Event = CallStarted | Utterance | Dtmf | CallTransferred | CallEnded


def _remember(session: Session, event: Event) -> None:
    try:
        with session.begin_nested():
            session.add(PhoneWebhookEvent(event_id=event.event_id, call_id=event.call_id,
                                          type=event.type))
            session.flush()
    except IntegrityError:
        raise PhoneRefused("replayed", f"event {event.event_id!r} was already received",
                           status_code=409) from None


def _call(session: Session, call_id: str) -> PhoneCall:
    call = session.scalars(select(PhoneCall).where(PhoneCall.call_id == call_id)).first()
    if call is None:
        raise PhoneRefused("unknown_call", f"no call {call_id!r}: send call.started first",
                           status_code=404)
    return call


def _turn(call: PhoneCall, who: str, text: str, **extra: Any) -> None:
    call.transcript = [*(call.transcript or []),
                       {"who": who, "text": text, "at": utcnow().isoformat(), **extra}]


def _answer(call: PhoneCall, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"call_id": call.call_id, "status": call.status, "actions": actions}


def handle(session: Session, event: Event, *, settings: Settings) -> dict[str, Any]:
    """Apply one verified event; return the call centre's next actions. Does not commit."""
    _remember(session, event)
    if isinstance(event, CallStarted):
        return _started(session, event, settings=settings)
    call = _call(session, event.call_id)
    if isinstance(event, Utterance):
        return _utterance(session, call, event, settings=settings)
    if isinstance(event, Dtmf):
        return _dtmf(session, call, event)
    if isinstance(event, CallTransferred):
        call.status = "with_agent" if event.type == "call.answered" else "transferred"
        _turn(call, "system", "人工已接听" if event.type == "call.answered" else "已转接",
              agent=event.agent)
        return _answer(call, [])
    call.status = "ended"
    call.ended_at = utcnow()
    call.duration_seconds = event.duration_seconds
    call.recording_ref = event.recording_ref
    return _answer(call, [])


def _started(session: Session, event: CallStarted, *, settings: Settings) -> dict[str, Any]:
    try:
        number = normalize_identity("phone", event.from_number, settings.default_phone_region)
    except InvalidIdentity:
        number = event.from_number.strip()
        customer_id = None
    else:
        customer_id = session.scalar(select(Identity.customer_id).where(
            Identity.kind == "phone", Identity.value == number))
    if session.scalar(select(PhoneCall.id).where(PhoneCall.call_id == event.call_id)):
        raise PhoneRefused("duplicate_call", f"call {event.call_id!r} already started",
                           status_code=409)
    call = PhoneCall(call_id=event.call_id, from_number=number, to_number=event.to_number,
                     customer_id=customer_id, voiceprint_id=event.voiceprint_id,
                     identified_by="phone" if customer_id is not None else None,
                     status="bot", transcript=[])
    session.add(call)
    session.flush()
    greeting = _greeting(session, customer_id, settings=settings)
    _turn(call, "bot", greeting)
    return _answer(call, [{"type": "speak", "text": greeting}, LISTEN])


def _greeting(session: Session, customer_id: int | None, *, settings: Settings) -> str:
    if customer_id is None:
        return GREETING_UNKNOWN
    from siyu.service.context import incident_sentence, load_context

    ctx = load_context(session, customer_id, now=utcnow(), timezone=settings.timezone)
    for incident in ctx.incidents:
        sentence = incident_sentence(ctx, incident)
        if sentence:
            return for_speech(sentence)
    return GREETING_KNOWN.format(salutation=ctx.salutation)


def _utterance(session: Session, call: PhoneCall, event: Utterance, *, settings: Settings
               ) -> dict[str, Any]:
    text = event.text.strip()
    if not event.final or not text:
        return _answer(call, [])  # partial results never act
    _turn(call, "caller", text, confidence=event.confidence)
    if call.status != "bot":
        return _answer(call, [])  # a person has the call; the transcript still grows
    from siyu.channels import desk

    result = desk.receive_inbound(
        session, channel=CHANNEL, identities=[IdentityRef("phone", call.from_number)],
        text=text, external_id=f"phone:{call.call_id}:{event.event_id}"[:200],
        payload={"phone": {"call_id": call.call_id, "confidence": event.confidence}})
    call.customer_id = result.customer_id
    call.conversation_id = result.conversation_id
    replies, state = desk.answer_now(session, result.message_id)
    actions: list[dict[str, Any]] = []
    for reply in replies:
        spoken = for_speech(reply, link_note=False)
        if spoken:
            _turn(call, "bot", spoken)
            actions.append({"type": "speak", "text": spoken})
    if state["status"] in ("waiting", "with_agent"):
        call.status = "transferred"
        call.transferred_at = utcnow()
        call.skill_group = state["skill_group"]
        actions.append({"type": "transfer", "queue": state["skill_group"],
                        "agent_user_id": state["assigned_user_id"]})
    elif state["intent"] in CLOSING_INTENTS:
        call.status = "csat"
        _turn(call, "bot", CSAT_PROMPT)
        actions += [{"type": "speak", "text": CSAT_PROMPT},
                    {"type": "listen", "input": "dtmf", "max_digits": 1,
                     "timeout_seconds": 10}]
    else:
        actions.append(LISTEN)
    return _answer(call, actions)


def _dtmf(session: Session, call: PhoneCall, event: Dtmf) -> dict[str, Any]:
    _turn(call, "caller", f"[按键 {event.digits}]")
    if call.status != "csat":
        return _answer(call, [LISTEN] if call.status == "bot" else [])
    if event.digits not in ("1", "2", "3", "4", "5"):
        return _answer(call, [{"type": "speak", "text": "请按1到5之间的数字。"},
                              {"type": "listen", "input": "dtmf", "max_digits": 1,
                               "timeout_seconds": 10}])
    call.csat = int(event.digits)
    call.status = "bot"
    if call.conversation_id is not None:
        from siyu.channels import desk

        desk.record_satisfaction(session, call.conversation_id, call.csat)
    _turn(call, "bot", CSAT_THANKS)
    return _answer(call, [{"type": "speak", "text": CSAT_THANKS}, {"type": "hangup"}])


def call_to_dict(call: PhoneCall) -> dict[str, Any]:
    def iso(v: dt.datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {"call_id": call.call_id, "from": call.from_number, "to": call.to_number,
            "customer_id": call.customer_id, "conversation_id": call.conversation_id,
            "identified_by": call.identified_by, "status": call.status,
            "skill_group": call.skill_group, "transcript": list(call.transcript or []),
            "started_at": iso(call.started_at), "ended_at": iso(call.ended_at),
            "duration_seconds": call.duration_seconds, "recording_ref": call.recording_ref,
            "csat": call.csat}
