"""Channel jobs: ``channels.deliver`` sends one outbound message (see :mod:`.outbox`)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import outbox
from siyu.channels.config import get_channel_settings
from siyu.channels.outbox import ChannelAdapter, DeliveryFailed, Outcome
from siyu.config import get_settings
from siyu.jobs.service import job

log = logging.getLogger("siyu.channels")
_lock = threading.Lock()
_adapters: dict[str, ChannelAdapter] | None = None


class RetryDelivery(Exception):
    """Raised after a retryable failure was recorded, so the job system retries with backoff."""


def build_adapters() -> dict[str, ChannelAdapter]:
    """One adapter per channel, configured from the environment."""
    from siyu.channels import optout
    from siyu.channels.email import SmtpAdapter
    from siyu.channels.oa.adapter import OaAdapter
    from siyu.channels.phone.adapter import PhoneAdapter
    from siyu.channels.sms import SmsAdapter
    from siyu.channels.webhook import WebhookAdapter
    from siyu.channels.wecom.adapter import WeComAdapter
    from siyu.channels.wecom.mass import WeComGroupMassAdapter, WeComMassAdapter
    from siyu.channels.wecom.welcome import WeComWelcomeAdapter

    settings, channel_settings = get_settings(), get_channel_settings()
    adapters: list[ChannelAdapter] = [
        outbox.WebChatAdapter(),
        WeComAdapter(settings, channel_settings),
        WeComMassAdapter(settings, channel_settings),
        WeComGroupMassAdapter(settings, channel_settings),
        WeComWelcomeAdapter(settings, channel_settings),
        SmtpAdapter(channel_settings, unsubscribe_link=lambda cid: optout.unsubscribe_url(
            settings, channel_settings.public_url, cid, "email")),
        SmsAdapter(channel_settings),
        WebhookAdapter(settings, channel_settings),
        OaAdapter(settings, channel_settings),
        PhoneAdapter(),
    ]
    return {a.channel: a for a in adapters}


def adapters() -> dict[str, ChannelAdapter]:
    """The process's adapters (built on first use)."""
    global _adapters
    with _lock:
        if _adapters is None:
            _adapters = build_adapters()
        return _adapters


def use_adapters(value: dict[str, ChannelAdapter] | None) -> None:
    """Replace the process's adapters (``None``: rebuild from the environment on next use)."""
    global _adapters
    with _lock:
        _adapters = value


@job("channels.deliver")
def deliver(session: Session, payload: dict[str, Any]) -> None:
    """Deliver message ``payload["message_id"]``: idempotent, see :mod:`siyu.channels.outbox`.

    Commits twice on purpose: the ``sending`` mark before the provider is called, and the
    outcome after.
    """
    message_id = int(payload["message_id"])
    registry = adapters()
    step = outbox.begin_attempt(session, message_id, registry)
    session.commit()
    if isinstance(step, Outcome):
        if step.status == "failed":
            log.warning("message %s not delivered: %s", message_id, step.reason)
        return
    adapter = registry[step.message.channel]
    try:
        result = adapter.send(step.message, step.customer)
    except DeliveryFailed as exc:
        error = exc
    except Exception as exc:  # a bug in an adapter may strike after the provider was called
        log.exception("adapter %s crashed on message %s", adapter.channel, message_id)
        error = DeliveryFailed(f"adapter error: {type(exc).__name__}", ambiguous=True)
    else:
        outbox.record_success(session, message_id, result)
        session.commit()
        return
    state = outbox.record_failure(session, message_id, error)
    session.commit()
    if state == "failed":
        log.warning("message %s failed on %s: %s", message_id, adapter.channel, error.reason)
        return
    raise RetryDelivery(f"message {message_id}: {error.reason}")


def _run_adapter(adapter: ChannelAdapter, step: outbox.Attempt) -> outbox.DeliveryResult | \
        DeliveryFailed:
    try:
        return adapter.send(step.message, step.customer)
    except DeliveryFailed as exc:
        return exc
    except Exception as exc:  # a bug in an adapter may strike after the provider was called
        log.exception("adapter %s crashed on delivery %s", adapter.channel, step.message.id)
        return DeliveryFailed(f"adapter error: {type(exc).__name__}", ambiguous=True)


@job("channels.send")
def send(session: Session, payload: dict[str, Any]) -> None:
    """Send outbox message ``payload["delivery_id"]`` (a message without a conversation,
    stored by :func:`siyu.channels.outbox.enqueue_message`); idempotent like
    :func:`deliver`, committing the ``sending`` mark before the provider is called."""
    delivery_id = int(payload["delivery_id"])
    registry = adapters()
    step = outbox.begin_send(session, delivery_id, registry)
    session.commit()
    if isinstance(step, Outcome):
        if step.status in ("failed", "outcome_unknown"):
            log.warning("outbox message %s not sent: %s", delivery_id, step.reason)
        return
    adapter = registry[step.message.channel]
    result = _run_adapter(adapter, step)
    if not isinstance(result, DeliveryFailed):
        outbox.record_sent(session, delivery_id, result)
        if result.status == "created":  # read the employee's confirmation back later
            _schedule_mass_results(session)
        session.commit()
        return
    state = outbox.record_send_failure(session, delivery_id, result)
    session.commit()
    if state in ("failed", "outcome_unknown"):
        log.warning("outbox message %s %s on %s: %s", delivery_id, state, adapter.channel,
                    result.reason)
        return
    raise RetryDelivery(f"outbox message {delivery_id}: {result.reason}")


MASS_RESULTS_EVERY = dt.timedelta(minutes=10)


def _schedule_mass_results(session: Session) -> None:
    from siyu.db import utcnow
    from siyu.jobs import service as jobs

    at = utcnow() + MASS_RESULTS_EVERY
    bucket = int(at.timestamp() // MASS_RESULTS_EVERY.total_seconds())
    jobs.enqueue(session, "channels.mass_results", {}, dedup_key=f"mass_results:{bucket}",
                 run_at=at)


@job("channels.mass_results")
def mass_results(session: Session, payload: dict[str, Any]) -> None:
    """Read back created WeCom mass-send tasks (``get_groupmsg_send_result``); again later
    while some are still waiting for the employee."""
    from siyu.channels.wecom.mass import WeComMassAdapter, refresh_results, waiting_count

    registry = adapters()
    adapter = registry.get("wecom_mass") or registry.get("wecom_group_mass")
    if isinstance(adapter, WeComMassAdapter):
        refresh_results(session, adapter)
        if waiting_count(session):
            _schedule_mass_results(session)
