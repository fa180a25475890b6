"""The outbox: deliver each outbound message on its channel once.

A reply is stored by the service desk as a ``queued`` message plus a ``channels.deliver``
job in the same transaction, so it cannot be lost. The job (:mod:`siyu.channels.tasks`)
runs one delivery in three steps, committing between them:

1. :func:`begin_attempt` marks the :class:`~siyu.channels.models.Delivery` ``sending``
   (committed *before* the provider is called);
2. the channel's adapter sends (no database work);
3. :func:`record_success` / :func:`record_failure` store the outcome.

**Delivery guarantee.** A message already ``sent``/``delivered``/``failed`` is skipped, so
the job system's retries and duplicate jobs never send twice. When the provider refused the
message in a way that is safe to repeat (unreachable, HTTP 5xx, "system busy", rate limit) the
delivery goes to ``retry`` and the job is retried with backoff, up to
:data:`MAX_ATTEMPTS` times, then the message is ``failed``. The one case that needs a choice
is a worker that dies (or a read timeout) *after* calling the provider and before recording
the outcome: the next attempt finds ``sending`` and cannot know whether the customer got the
message. Adapters that can re-send without a duplicate reaching the customer
(``can_resend``: web chat, which only flips a status; WeCom app messages, re-sent with
WeCom's duplicate check) are re-sent -- at-least-once towards the provider, exactly-once as
the customer sees it. The others (微信客服 ``kf/send_msg``) are marked ``failed`` with the
reason "outcome unknown" for a person to look at: at-most-once, because a customer receiving
a reply twice is worse than an agent re-sending one that is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels import desk
from siyu.channels.desk import OutboundMessage, Recipient
from siyu.channels.models import Delivery
from siyu.db import utcnow

MAX_ATTEMPTS = 5
DONE_STATES = frozenset({"sent", "delivered", "failed"})


@dataclass(frozen=True)
class DeliveryResult:
    """What the provider said: ``status`` is ``sent`` (handed to the provider) or
    ``delivered`` (on the customer's screen, e.g. the web chat)."""

    status: str = "sent"
    provider_message_id: str | None = None


class DeliveryFailed(Exception):
    """The adapter could not deliver.

    ``retryable``: the provider did not take the message and sending again later is safe.
    ``ambiguous``: the provider may have taken it (timeout after the request was sent).
    Neither: permanent (unknown recipient, channel not configured); the message fails.
    """

    def __init__(self, reason: str, *, retryable: bool = False, ambiguous: bool = False
                 ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.ambiguous = ambiguous


class ChannelAdapter(Protocol):
    """Sends messages on one channel. ``send`` does no database work; it raises
    :class:`DeliveryFailed`. ``message.payload["resend"]`` is true when re-sending after an
    unknown outcome (only ever when ``can_resend`` said yes)."""

    channel: str

    def can_resend(self, message: OutboundMessage, customer: Recipient) -> bool:
        """Whether sending again after an unknown outcome cannot reach the customer twice."""
        ...

    def send(self, message: OutboundMessage, customer: Recipient) -> DeliveryResult: ...


class WebChatAdapter:
    """The web chat has no provider: the chat page's live stream shows delivered messages,
    so delivering is marking the message ``delivered``."""

    channel = "webchat"

    def can_resend(self, message: OutboundMessage, customer: Recipient) -> bool:
        return True

    def send(self, message: OutboundMessage, customer: Recipient) -> DeliveryResult:
        return DeliveryResult(status="delivered")


@dataclass(frozen=True)
class Attempt:
    """A delivery attempt begun by :func:`begin_attempt`."""

    message: OutboundMessage
    customer: Recipient
    number: int
    resend_after_unknown: bool


@dataclass(frozen=True)
class Outcome:
    """What :func:`begin_attempt` decided when there is nothing to send."""

    status: str
    reason: str


def _delivery(session: Session, message: OutboundMessage) -> Delivery:
    delivery = session.scalars(
        select(Delivery).where(Delivery.message_id == message.id)
    ).first()
    if delivery is None:
        delivery = Delivery(message_id=message.id, channel=message.channel, state="retry",
                            attempts=0)
        session.add(delivery)
        session.flush()
    return delivery


def delivery_of(session: Session, message_id: int) -> Delivery | None:
    """The delivery record of a message, if an attempt was ever made."""
    return session.scalars(select(Delivery).where(Delivery.message_id == message_id)).first()


def _fail(session: Session, delivery: Delivery, message_id: int, reason: str) -> Outcome:
    delivery.state = "failed"
    delivery.last_error = reason[:2000]
    delivery.finished_at = utcnow()
    desk.set_message_status(session, message_id, "failed")
    return Outcome("failed", reason)


def begin_attempt(session: Session, message_id: int, adapters: dict[str, ChannelAdapter]
                  ) -> Attempt | Outcome:
    """Decide whether message ``message_id`` should be sent now; if so mark it ``sending``.

    The caller must commit before calling the adapter. Returns an :class:`Outcome` when there
    is nothing to send: no such outbound message, already done, no adapter for the channel,
    too many attempts, or an unknown outcome on a channel that cannot re-send safely.
    """
    message = desk.load_outbound(session, message_id, lock=True)
    if message is None:
        return Outcome("skipped", f"no outbound message {message_id}")
    delivery = _delivery(session, message)
    if delivery.state in DONE_STATES:
        return Outcome("skipped", f"already {delivery.state}")
    if message.status in DONE_STATES:
        # Someone else (an agent's console, an earlier version) settled it: follow them.
        delivery.state = message.status
        delivery.finished_at = utcnow()
        return Outcome("skipped", f"message already {message.status}")
    adapter = adapters.get(message.channel)
    if adapter is None:
        return _fail(session, delivery, message.id, f"no adapter for channel {message.channel!r}")
    customer = desk.recipient(session, message)
    unknown = delivery.state == "sending"
    if unknown and not adapter.can_resend(message, customer):
        return _fail(session, delivery, message.id,
                     "outcome unknown: the previous attempt stopped after calling the provider;"
                     " not re-sent so the customer cannot get it twice")
    if delivery.attempts >= MAX_ATTEMPTS:
        return _fail(session, delivery, message.id,
                     f"gave up after {delivery.attempts} attempts: {delivery.last_error or ''}")
    delivery.state = "sending"
    delivery.attempts += 1
    if unknown:
        message = replace(message, payload={**message.payload, "resend": True})
    return Attempt(message, customer, delivery.attempts, unknown)


def record_success(session: Session, message_id: int, result: DeliveryResult) -> None:
    """Store a successful send: the delivery is done and the message ``sent``/``delivered``."""
    delivery = delivery_of(session, message_id)
    if delivery is None:  # pragma: no cover - begin_attempt always creates it
        raise RuntimeError(f"no delivery for message {message_id}")
    delivery.state = result.status
    delivery.provider_message_id = result.provider_message_id
    delivery.last_error = None
    delivery.finished_at = utcnow()
    desk.set_message_status(session, message_id, result.status)


def record_failure(session: Session, message_id: int, error: DeliveryFailed) -> str:
    """Store a failed attempt. Returns ``retry`` when the job should run again (the caller
    raises so the job system backs off), ``sending`` when the outcome is unknown (also
    retried; the next attempt sees ``sending``), or ``failed``."""
    delivery = delivery_of(session, message_id)
    if delivery is None:  # pragma: no cover - begin_attempt always creates it
        raise RuntimeError(f"no delivery for message {message_id}")
    delivery.last_error = error.reason[:2000]
    if error.ambiguous:
        if delivery.attempts >= MAX_ATTEMPTS:
            _fail(session, delivery, message_id, f"outcome unknown after "
                  f"{delivery.attempts} attempts: {error.reason}")
            return "failed"
        delivery.state = "sending"
        return "sending"
    if error.retryable and delivery.attempts < MAX_ATTEMPTS:
        delivery.state = "retry"
        return "retry"
    _fail(session, delivery, message_id, error.reason)
    return "failed"
