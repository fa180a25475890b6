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

from siyu.channels.config import ChannelSettings, get_channel_settings
from siyu.channels.phone import identify, survey
from siyu.channels.phone.models import PhoneCall, PhoneWebhookEvent
from siyu.channels.phone.protocol import (
    CallEnded,
    CallStarted,
    CallTransferred,
    Dtmf,
    PhoneRefused,
    Utterance,
)
from siyu.channels.phone.speech import for_speech, links_in
from siyu.config import Settings
from siyu.customers.errors import InvalidIdentity
from siyu.customers.identity import IdentityRef, normalize_identity
from siyu.db import utcnow

CHANNEL = "phone"
GREETING_KNOWN = "{salutation}您好，这里是客服中心，请问有什么可以帮您？"
GREETING_UNKNOWN = "您好，这里是客服中心，请问有什么可以帮您？"
LISTEN = {"type": "listen", "timeout_seconds": 8}
CSAT_PROMPT = "请为本次服务打分，满意请按5，不满意请按1，按1到5之间的数字即可。"
CSAT_THANKS = "感谢您的评价，祝您生活愉快，再见。"
LINK_SMS = "【客服中心】您在电话中咨询的链接：{links}"
UNVERIFIED = "抱歉，暂时无法核实您的身份，正在为您转接人工客服。"
VERIFY_LISTEN = {"type": "listen", "input": "dtmf", "max_digits": 4, "timeout_seconds": 15}
UNVERIFIED_QUEUE = "general"
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


def handle(session: Session, event: Event, *, settings: Settings,
           channel: ChannelSettings | None = None) -> dict[str, Any]:
    """Apply one verified event; return the call centre's next actions. Does not commit.
    ``channel`` (default: the environment's) says whether the after-call SMS survey goes
    out and where its link points."""
    _remember(session, event)
    if isinstance(event, CallStarted):
        return _started(session, event, settings=settings)
    call = _call(session, event.call_id)
    if isinstance(event, Utterance):
        return _utterance(session, call, event, settings=settings)
    if isinstance(event, Dtmf):
        return _dtmf(session, call, event, settings=settings)
    if isinstance(event, CallTransferred):
        call.status = "with_agent" if event.type == "call.answered" else "transferred"
        _turn(call, "system", "人工已接听" if event.type == "call.answered" else "已转接",
              agent=event.agent)
        return _answer(call, [])
    if call.status == "ended":
        return _answer(call, [])
    asked_on_keypad = call.status == "csat"
    call.status = "ended"
    call.ended_at = utcnow()
    call.duration_seconds = event.duration_seconds
    call.recording_ref = event.recording_ref
    _on_timeline(session, call, settings=settings)
    cs = channel or get_channel_settings()
    if survey.wanted(call, mode=cs.phone_csat_sms, asked_on_keypad=asked_on_keypad):
        survey.send_link(session, call, settings=settings,
                         public_url=cs.phone_public_url or cs.public_url)
    return _answer(call, [])


def _on_timeline(session: Session, call: PhoneCall, *, settings: Settings) -> None:
    """The ended call as a ``phone_call`` event of its customer (the 360's timeline,
    service group); a caller nobody could name leaves no event on anyone."""
    if call.customer_id is None:
        return
    from siyu.events import service as events

    kind, value = identify.sender_identity(session, call.customer_id, call.from_number)
    events.ingest(session, "events", [{
        "id": f"phone:{call.call_id}"[:200], "identities": [{"kind": kind, "value": value}],
        "type": "phone_call", "ts": call.started_at.isoformat(), "channel": CHANNEL,
        "properties": {"call_id": call.call_id,
                       "outcome": "transferred" if call.transferred_at else "bot",
                       "skill_group": call.skill_group, "csat": call.csat,
                       "duration_seconds": call.duration_seconds,
                       "conversation_id": call.conversation_id}}],
        settings=settings, source="phone")


def _started(session: Session, event: CallStarted, *, settings: Settings) -> dict[str, Any]:
    valid: str | None
    try:
        valid = normalize_identity("phone", event.from_number, settings.default_phone_region)
    except InvalidIdentity:
        valid = None
    number = valid or event.from_number.strip()
    if session.scalar(select(PhoneCall.id).where(PhoneCall.call_id == event.call_id)):
        raise PhoneRefused("duplicate_call", f"call {event.call_id!r} already started",
                           status_code=409)
    who = identify.identify(session, valid, event.voiceprint_id)
    call = PhoneCall(call_id=event.call_id, from_number=number, to_number=event.to_number,
                     customer_id=who.customer_id, voiceprint_id=event.voiceprint_id,
                     identified_by=who.identified_by, status="bot", transcript=[])
    session.add(call)
    session.flush()
    if valid is None:
        # A withheld or malformed number names nobody, and filing the words under it would
        # make every withheld caller one customer: a person takes the call.
        return _unverified(call, GREETING_UNKNOWN)
    if who.candidates:
        return _ask_to_verify(session, call, who.candidates)
    greeting, incident = _greeting(session, who.customer_id, settings=settings)
    _turn(call, "bot", greeting, **({"incident": incident} if incident else {}))
    return _answer(call, [{"type": "speak", "text": greeting}, LISTEN])


def _ask_to_verify(session: Session, call: PhoneCall, candidates: list[int]
                   ) -> dict[str, Any]:
    """The number names several customers: greet nobody by name, ask one question."""
    question = identify.pick_question(session, candidates)
    call.candidate_ids = candidates
    if question is None:
        return _unverified(call, GREETING_UNKNOWN)
    call.status = "verify"
    call.verify_question = question
    text = GREETING_UNKNOWN.replace("请问有什么可以帮您？", "") + identify.QUESTIONS[question]
    _turn(call, "bot", text)
    return _answer(call, [{"type": "speak", "text": text}, VERIFY_LISTEN])


def _unverified(call: PhoneCall, lead: str = "") -> dict[str, Any]:
    """Nobody could be named: a person takes the call, with no customer's data on it."""
    call.status = "transferred"
    call.transferred_at = utcnow()
    call.skill_group = UNVERIFIED_QUEUE
    text = lead.replace("请问有什么可以帮您？", "") + UNVERIFIED
    _turn(call, "bot", text, reason="identity_unverified")
    return _answer(call, [{"type": "speak", "text": text},
                          {"type": "transfer", "queue": UNVERIFIED_QUEUE, "agent_user_id": None,
                           "reason": "identity_unverified"}])


def _verify(session: Session, call: PhoneCall, entered: str, *, settings: Settings
            ) -> dict[str, Any]:
    """The caller's one answer: it names one candidate, or a person takes the call."""
    digits = identify.digits_in(entered)
    if not digits:  # they said something else: the same question once more
        text = identify.QUESTIONS[call.verify_question or identify.PHONE_LAST4]
        _turn(call, "bot", text)
        return _answer(call, [{"type": "speak", "text": text}, VERIFY_LISTEN])
    match = identify.check_answer(session, call.verify_question or "",
                                  list(call.candidate_ids or []), digits)
    if match is None:
        return _unverified(call)
    call.customer_id = match
    call.identified_by = "question"
    call.status = "bot"
    text, incident = _greeting(session, match, settings=settings)
    greeting = "谢谢，已核实。" + text
    _turn(call, "bot", greeting, **({"incident": incident} if incident else {}))
    return _answer(call, [{"type": "speak", "text": greeting}, LISTEN])


def _greeting(session: Session, customer_id: int | None, *, settings: Settings
              ) -> tuple[str, str | None]:
    """The first words of the call, and the incident type they name (if any)."""
    if customer_id is None:
        return GREETING_UNKNOWN, None
    from siyu.service.context import incident_sentence, load_context

    ctx = load_context(session, customer_id, now=utcnow(), timezone=settings.timezone)
    for incident in ctx.incidents:
        sentence = incident_sentence(ctx, incident)
        if sentence:
            return for_speech(sentence), incident.type
    return GREETING_KNOWN.format(salutation=ctx.salutation), None


def _utterance(session: Session, call: PhoneCall, event: Utterance, *, settings: Settings
               ) -> dict[str, Any]:
    text = event.text.strip()
    if not event.final or not text:
        return _answer(call, [])  # partial results never act
    if call.status == "verify":
        _turn(call, "caller", "[核实身份的回答]", confidence=event.confidence)
        return _verify(session, call, text, settings=settings)
    _turn(call, "caller", text, confidence=event.confidence)
    if call.status != "bot":
        # A person has the call: the bot stays out, the words still join the conversation
        # (and so the customer's history on every channel).
        if call.conversation_id is not None:
            _file_message(session, call, event, text)
        return _answer(call, [])
    if call.candidate_ids and call.customer_id is None:
        return _answer(call, [])  # unverified on a shared number: never filed under anyone
    from siyu.channels import desk

    message_id = _file_message(session, call, event, text)
    opened_with = next((t["incident"] for t in call.transcript or []
                        if t.get("who") == "bot" and t.get("incident")), None)
    replies, state = desk.answer_now(session, message_id, opened_with=opened_with)
    actions: list[dict[str, Any]] = []
    links = [link for reply in replies for link in links_in(reply)]
    texted = bool(links) and _text_links(session, call, event, links)
    for reply in replies:
        spoken = for_speech(reply, link_note=texted and bool(links_in(reply)))
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


def _text_links(session: Session, call: PhoneCall, event: Utterance, links: list[str]
                ) -> bool:
    """A reply's links go to the caller by SMS through the outbox (once per utterance,
    to the customer's own mobile); ``False`` when they have none to send to."""
    from siyu.channels import outbox
    from siyu.customers.models import Identity

    if call.customer_id is None or not session.scalar(select(Identity.id).where(
            Identity.customer_id == call.customer_id, Identity.kind == "phone")):
        return False
    outbox.enqueue_message(
        session, key=f"phone-link:{call.call_id}:{event.event_id}"[:200],
        customer_id=call.customer_id, channel="sms", purpose="service", source="phone",
        text=LINK_SMS.format(links=" ".join(links)))
    return True


def _file_message(session: Session, call: PhoneCall, event: Utterance, text: str) -> int:
    """The caller's words as a message of their conversation on channel ``phone``."""
    from siyu.channels import desk

    kind, value = (identify.sender_identity(session, call.customer_id, call.from_number)
                   if call.customer_id is not None else ("phone", call.from_number))
    result = desk.receive_inbound(
        session, channel=CHANNEL, identities=[IdentityRef(kind, value)],
        text=text, external_id=f"phone:{call.call_id}:{event.event_id}"[:200],
        payload={"phone": {"call_id": call.call_id, "confidence": event.confidence}})
    call.customer_id = result.customer_id
    call.conversation_id = result.conversation_id
    return result.message_id


def _dtmf(session: Session, call: PhoneCall, event: Dtmf, *, settings: Settings
          ) -> dict[str, Any]:
    if call.status == "verify":  # the digits are a secret answer: not in the transcript
        _turn(call, "caller", "[按键 ****]")
        return _verify(session, call, event.digits, settings=settings)
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
