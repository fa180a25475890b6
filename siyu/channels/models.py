"""Channel tables: the delivery record of each outbound message, phone verification codes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime, utcnow

DELIVERY_STATES = ("queued", "sending", "sent", "delivered", "created", "retry", "failed",
                   "outcome_unknown")


class Delivery(TimestampMixin, Base):
    """How the delivery of one outbound message went; one row per message.

    ``state`` is ``sending`` while an attempt is under way (committed *before* the provider
    is called), then ``sent`` / ``delivered`` (done), ``retry`` (the provider refused it in a
    way that is safe to repeat) or ``failed`` (permanent). A retry that finds ``sending``
    knows the previous attempt died mid-call and that its outcome is unknown; where sending
    again could reach the customer twice the delivery ends ``outcome_unknown`` (a state of
    its own: counted and shown, never blindly re-sent).

    Two kinds of rows: a service-desk reply (``message_id`` set, the text lives in the
    service domain's message) and any other outbound message (``key`` set, e.g. a playbook
    step; text, subject and addressing live in ``content``), which starts ``queued``.
    ``created`` is a WeCom customer mass-send task waiting for the employee to confirm it.
    """

    __tablename__ = "channel_deliveries"
    __table_args__ = (Index("ix_channel_deliveries_customer", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The service domain's message id; no foreign key so the two domains migrate apart.
    message_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    # The sender's idempotency key for a message without a conversation: one send per key.
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"))
    purpose: Mapped[str | None] = mapped_column(String(20))
    # Who asked for it, e.g. ``playbook`` (the contact log groups by it).
    source: Mapped[str | None] = mapped_column(String(60))
    content: Mapped[dict[str, Any] | None] = mapped_column()
    channel: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class VerificationCode(TimestampMixin, Base):
    """A one-time code sent by SMS to prove a phone number for the web chat.

    Only an HMAC of the code is stored; a code expires, allows a few wrong guesses and is
    consumed by the first correct one.
    """

    __tablename__ = "channel_verification_codes"
    __table_args__ = (Index("ix_channel_verification_codes_phone_created", "phone",
                            "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    client_ip: Mapped[str | None] = mapped_column(String(64))


class AccessToken(TimestampMixin, Base):
    """A provider's access token, shared by every worker process (see
    :mod:`siyu.channels.oa.tokens`).

    ``key`` names the credentials (provider, app id and a digest of the secret, never the
    secret). The token is stored encrypted. ``lease_until`` / ``lease_owner`` mark the one
    worker fetching a fresh token; ``version`` grows at each change so claims are conditional
    updates that only one worker can win.
    """

    __tablename__ = "channel_access_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=0)
    refreshes: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)
