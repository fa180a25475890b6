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
the customer sees it. The others (微信客服 ``kf/send_msg``, e-mail, SMS, WeCom mass-send
tasks) are marked ``outcome_unknown`` -- a state of its own, not ``failed`` -- for a person to
look at: at-most-once, because a customer receiving a message twice is worse than an
operator re-sending one that is flagged.

**Messages without a conversation.** :func:`enqueue_message` stores any other outbound
message (a playbook step, a notification) as a delivery row keyed by the sender's
idempotency ``key`` (unique: enqueueing the same key twice stores one message) with its
content, plus a ``channels.send`` job, in the caller's transaction. The job runs the same
three steps through :func:`begin_send` / :func:`record_sent` / :func:`record_send_failure`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy import String, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.channels import desk
from siyu.channels.desk import OutboundMessage, Recipient
from siyu.channels.models import Delivery
from siyu.customers.models import Identity
from siyu.db import utcnow
from siyu.kit.bulk import id_in, pg_insert_rows

MAX_ATTEMPTS = 5
DONE_STATES = frozenset({"sent", "delivered", "created", "failed", "outcome_unknown"})
UNKNOWN_REASON = ("outcome unknown: the previous attempt stopped after calling the provider;"
                  " not re-sent so the customer cannot get it twice")


@dataclass(frozen=True)
class DeliveryResult:
    """What the provider said: ``status`` is ``sent`` (handed to the provider),
    ``delivered`` (on the customer's screen, e.g. the web chat) or ``created`` (a WeCom
    mass-send task the employee still has to confirm)."""

    status: str = "sent"
    provider_message_id: str | None = None


class DeliveryFailed(Exception):
    """The adapter could not deliver.

    ``retryable``: the provider did not take the message and sending again later is safe.
    ``ambiguous``: the provider may have taken it (timeout after the request was sent).
    Neither: permanent (unknown recipient, channel not configured); the message fails.
    ``opt_out``: the failure says the address refuses the brand (a hard bounce, a blocked
    number); the customer's marketing consent on the channel is withdrawn with this source.
    """

    def __init__(self, reason: str, *, retryable: bool = False, ambiguous: bool = False,
                 opt_out: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.ambiguous = ambiguous
        self.opt_out = opt_out


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
    desk.set_message_status(session, message_id, "failed", reason)
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
        outcome = _fail(session, delivery, message.id, UNKNOWN_REASON)
        delivery.state = "outcome_unknown"
        return Outcome("outcome_unknown", outcome.reason)
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
    desk.set_message_status(session, message_id,
                            "sent" if result.status == "created" else result.status)


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


# -- messages without a conversation ---------------------------------------------------------


def enqueue_message(
    session: Session,
    *,
    key: str,
    customer_id: int,
    channel: str,
    text: str,
    purpose: str = "marketing",
    source: str = "",
    content: dict[str, Any] | None = None,
    run_at: dt.datetime | None = None,
) -> int:
    """Store one outbound message and its ``channels.send`` job in the caller's transaction;
    returns the delivery id. ``key`` is the sender's idempotency key: a second call with the
    same key stores nothing and returns the first message's id."""
    from siyu.jobs import service as jobs

    if not key or len(key) > 200:
        raise ValueError("an outbox key is 1 to 200 characters")
    existing = session.scalar(select(Delivery.id).where(Delivery.key == key))
    if existing is not None:
        return int(existing)
    body = dict(content or {})
    body["text"] = text
    values = {"key": key, "customer_id": customer_id, "channel": channel, "purpose": purpose,
              "source": source[:60] or None, "content": body, "state": "queued",
              "attempts": 0, "created_at": utcnow(), "updated_at": utcnow()}
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert(Delivery) if dialect == "postgresql" else sqlite_insert(Delivery)
            ).values(values).on_conflict_do_nothing(index_elements=["key"])
    session.execute(stmt)
    delivery_id = int(session.scalar(select(Delivery.id).where(Delivery.key == key)) or 0)
    jobs.enqueue(session, "channels.send", {"delivery_id": delivery_id},
                 dedup_key=f"outbox:{key}"[:200], run_at=run_at)
    return delivery_id


def enqueue_many(session: Session, rows: list[dict[str, Any]], *,
                 now: dt.datetime | None = None) -> int:
    """:func:`enqueue_message` for a batch in two set-based statements (deliveries, then
    their jobs); rows whose key exists are skipped. Each row has the keyword arguments of
    :func:`enqueue_message` (``run_at`` optional). Returns how many were new."""
    from siyu.jobs.models import Job

    if not rows:
        return 0
    now = now or utcnow()
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = [{"key": r["key"], "customer_id": r["customer_id"], "channel": r["channel"],
               "purpose": r.get("purpose", "marketing"), "source": (r.get("source") or None),
               "content": {**(r.get("content") or {}), "text": r["text"]}, "state": "queued",
               "attempts": 0, "created_at": now, "updated_at": now} for r in rows]
    # Each statement is compiled once and executed for all its rows (SQLAlchemy batches
    # them into multi-row INSERTs); a 500-row VALUES clause compiled per chunk cost more
    # than the database.
    deliveries = Delivery.__table__
    if dialect == "postgresql":
        # one INSERT ... SELECT FROM unnest per 5,000 rows (see siyu.kit.bulk.pg_insert_rows)
        new = {str(k): int(i) for i, k in pg_insert_rows(
            session, deliveries, values, conflict=["key"], returning=["id", "key"])}
        at = {r["key"]: r.get("run_at") or now for r in rows}
        pg_insert_rows(session, Job.__table__, [
            {"name": "channels.send", "payload": {"delivery_id": i},
             "dedup_key": f"outbox:{k}"[:200], "status": "queued", "run_at": at[k],
             "attempts": 0, "max_attempts": MAX_ATTEMPTS + 1, "created_at": now}
            for k, i in new.items()], conflict=["dedup_key"])
        return len(new)
    stmt = (insert(deliveries).on_conflict_do_nothing(index_elements=["key"])  # type: ignore[arg-type]
            .returning(deliveries.c.id, deliveries.c.key))  # type: ignore[attr-defined]
    new_ids: dict[str, int] = {}
    for start in range(0, len(values), 5000):
        result = session.execute(stmt, values[start:start + 5000])
        new_ids.update({str(k): int(i) for i, k in result})
    run_at = {r["key"]: r.get("run_at") or now for r in rows}
    jobs = [{"name": "channels.send", "payload": {"delivery_id": i},
             "dedup_key": f"outbox:{k}"[:200], "status": "queued", "run_at": run_at[k],
             "attempts": 0, "max_attempts": MAX_ATTEMPTS + 1, "created_at": now}
            for k, i in new_ids.items()]
    job_insert = insert(Job.__table__).on_conflict_do_nothing(  # type: ignore[arg-type]
        index_elements=["dedup_key"])
    for start in range(0, len(jobs), 5000):
        session.execute(job_insert, jobs[start:start + 5000])
    return len(new_ids)


def _identities(session: Session, customer_id: int) -> dict[str, list[str]]:
    identities: dict[str, list[str]] = {}
    rows = session.execute(select(Identity.kind, Identity.value)
                           .where(Identity.customer_id == customer_id).order_by(Identity.id))
    for kind, value in rows:
        identities.setdefault(kind, []).append(value)
    return identities


def _as_message(delivery: Delivery) -> OutboundMessage:
    content = dict(delivery.content or {})
    return OutboundMessage(
        id=delivery.id, conversation_id=None, customer_id=int(delivery.customer_id or 0),
        channel=delivery.channel, sender=str(content.get("sender") or "system"),
        text=str(content.get("text") or ""), status=delivery.state, payload={},
        key=delivery.key or "", purpose=delivery.purpose or "marketing", content=content)


def _end(delivery: Delivery, state: str, reason: str) -> Outcome:
    delivery.state = state
    delivery.last_error = reason[:2000]
    delivery.finished_at = utcnow()
    return Outcome(state, reason)


def begin_send(session: Session, delivery_id: int, adapters: dict[str, ChannelAdapter]
               ) -> Attempt | Outcome:
    """:func:`begin_attempt` for a message stored by :func:`enqueue_message`."""
    stmt = select(Delivery).where(Delivery.id == delivery_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    delivery = session.scalars(stmt).first()
    if delivery is None or delivery.key is None:
        return Outcome("skipped", f"no outbox message {delivery_id}")
    if delivery.state in DONE_STATES:
        return Outcome("skipped", f"already {delivery.state}")
    adapter = adapters.get(delivery.channel)
    if adapter is None:
        return _end(delivery, "failed", f"no adapter for channel {delivery.channel!r}")
    message = _as_message(delivery)
    if delivery.purpose == "marketing" and delivery.customer_id is not None:
        # (a message to a customer group has no one customer whose consent decides)
        from siyu.privacy import service as privacy

        # a consent withdrawn (or a person erased) after queueing stops the message now
        blocked = privacy.contact_blocked(session, message.customer_id,
                                          channel=delivery.channel)
        if blocked is not None:
            return _end(delivery, "failed", f"not sent: {blocked}")
    customer = Recipient(message.customer_id, _identities(session, message.customer_id))
    unknown = delivery.state == "sending"
    if unknown and not adapter.can_resend(message, customer):
        return _end(delivery, "outcome_unknown", UNKNOWN_REASON)
    if delivery.attempts >= MAX_ATTEMPTS:
        return _end(delivery, "failed", f"gave up after {delivery.attempts} attempts: "
                    f"{delivery.last_error or ''}")
    delivery.state = "sending"
    delivery.attempts += 1
    if unknown:
        message = replace(message, payload={"resend": True})
    return Attempt(message, customer, delivery.attempts, unknown)


def record_sent(session: Session, delivery_id: int, result: DeliveryResult) -> None:
    """Store the provider's acceptance of an outbox message."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:  # pragma: no cover - begin_send found it
        raise RuntimeError(f"no delivery {delivery_id}")
    delivery.state = result.status
    delivery.provider_message_id = result.provider_message_id
    delivery.last_error = None
    delivery.finished_at = utcnow()


def record_send_failure(session: Session, delivery_id: int, error: DeliveryFailed) -> str:
    """:func:`record_failure` for an outbox message: ``retry``, ``sending`` (unknown
    outcome, retried; the next attempt decides), ``outcome_unknown`` or ``failed``."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:  # pragma: no cover - begin_send found it
        raise RuntimeError(f"no delivery {delivery_id}")
    delivery.last_error = error.reason[:2000]
    if error.ambiguous:
        if delivery.attempts >= MAX_ATTEMPTS:
            _end(delivery, "outcome_unknown", f"outcome unknown after {delivery.attempts} "
                 f"attempts: {error.reason}")
            return "outcome_unknown"
        delivery.state = "sending"
        return "sending"
    if error.retryable and delivery.attempts < MAX_ATTEMPTS:
        delivery.state = "retry"
        return "retry"
    _end(delivery, "failed", error.reason)
    if error.opt_out and delivery.customer_id is not None:
        from siyu.channels import optout

        optout.opt_out(session, delivery.customer_id, channel=delivery.channel,
                       source=error.opt_out)
    return "failed"


def deliveries_by_key(session: Session, keys: list[str]) -> dict[str, tuple[str, str | None]]:
    """``{key: (state, last_error)}`` of the outbox messages with these keys."""
    out: dict[str, tuple[str, str | None]] = {}
    for start in range(0, len(keys), 500):
        rows = session.execute(select(Delivery.key, Delivery.state, Delivery.last_error)
                               .where(Delivery.key.in_(keys[start:start + 500])))
        out.update({str(k): (s, e) for k, s, e in rows})
    return out


def contact_log(session: Session, customer_id: int, *, limit: int = 50
                ) -> list[dict[str, Any]]:
    """The customer's latest outbox messages (not desk replies), newest first."""
    rows = session.scalars(select(Delivery).where(Delivery.customer_id == customer_id,
                                                  Delivery.key.is_not(None))
                           .order_by(Delivery.id.desc()).limit(limit))
    return [{"id": d.id, "channel": d.channel, "purpose": d.purpose, "source": d.source,
             "state": d.state, "subject": (d.content or {}).get("subject"),
             "text": (d.content or {}).get("text"), "error": d.last_error,
             "at": d.created_at.isoformat() if d.created_at else None,
             "finished_at": d.finished_at.isoformat() if d.finished_at else None}
            for d in rows]


def delivery_ids(session: Session, keys: list[str]) -> dict[str, int]:
    """``{key: delivery id}`` of the outbox messages with these keys."""
    out: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        rows = session.execute(select(Delivery.key, Delivery.id)
                               .where(id_in(Delivery.key, keys[start:start + 500], session,
                                            String)))
        out.update({str(k): int(i) for k, i in rows})
    return out


def recent_marketing(session: Session, customer_ids: list[int], *, since: dt.datetime
                     ) -> dict[int, list[tuple[str, dt.datetime, int, bool]]]:
    """The customers' outbox messages (not desk replies, not failed) since ``since``:
    ``{customer_id: [(channel, created_at, sender priority, is marketing)]}`` -- what the
    contact policy counts caps and platform windows on."""
    out: dict[int, list[tuple[str, dt.datetime, int, bool]]] = {}
    for start in range(0, len(customer_ids), 500):
        rows = session.execute(
            select(Delivery.customer_id, Delivery.channel, Delivery.created_at,
                   Delivery.purpose, Delivery.content)
            .where(id_in(Delivery.customer_id, customer_ids[start:start + 500], session),
                   Delivery.key.is_not(None), Delivery.created_at >= since,
                   Delivery.state != "failed"))
        for cid, channel, at, purpose, content in rows:
            priority = int((content or {}).get("priority") or 0)
            out.setdefault(int(cid), []).append((channel, at, priority, purpose == "marketing"))
    return out


def count_by_state(session: Session, source: str) -> dict[str, int]:
    """A sender's outbox messages by outcome: ``sent`` (sent, delivered or a created
    mass-send task), ``pending``, ``failed``, ``outcome_unknown``."""
    from sqlalchemy import func

    out = {"sent": 0, "pending": 0, "failed": 0, "outcome_unknown": 0}
    rows = session.execute(select(Delivery.state, func.count()).where(Delivery.source == source)
                           .group_by(Delivery.state))
    for state, n in rows:
        bucket = ("sent" if state in ("sent", "delivered", "created") else
                  state if state in ("failed", "outcome_unknown") else "pending")
        out[bucket] += int(n)
    return out


def texts_by_id(session: Session, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(select(Delivery.id, Delivery.content)
                               .where(Delivery.id.in_(ids[start:start + 500])))
        for i, content in rows:
            c = content or {}
            subject = c.get("subject")
            text = str(c.get("text") or "")
            out[int(i)] = f"{subject}\n{text}" if subject else text
    return out


def states_by_id(session: Session, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(select(Delivery.id, Delivery.state)
                               .where(Delivery.id.in_(ids[start:start + 500])))
        out.update({int(i): s for i, s in rows})
    return out
