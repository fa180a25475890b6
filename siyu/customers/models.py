"""Customer data model: one row per person, however many channels they reach us through."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime, utcnow

IDENTITY_KINDS: tuple[str, ...] = (
    "phone",
    "email",
    "wecom_userid",
    "wecom_external_userid",
    "wechat_openid",
    "wechat_unionid",
    "app_user_id",
    "external_id",
    # A call centre's voiceprint match (its enrolment id): confirms a caller on the phone
    # channel when verified (siyu.channels.phone.identify).
    "voiceprint_id",
)

GENDERS: tuple[str, ...] = ("male", "female", "unknown")


class Customer(TimestampMixin, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(100))
    gender: Mapped[str | None] = mapped_column(String(10))
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    city: Mapped[str | None] = mapped_column(String(50), index=True)
    tier: Mapped[str | None] = mapped_column(String(30), index=True)
    acquisition_channel: Mapped[str | None] = mapped_column(String(30))
    advisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Identity(TimestampMixin, Base):
    """A (kind, value) pair that names a customer in one channel; unique across customers."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    value: Mapped[str] = mapped_column(String(200))
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class Tag(TimestampMixin, Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="manual", server_default="manual")


class CustomerTag(TimestampMixin, Base):
    __tablename__ = "customer_tags"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(30), default="manual", server_default="manual")

    __table_args__ = (Index("ix_customer_tags_tag_id", "tag_id"),)


class Consent(TimestampMixin, Base):
    """One consent decision; the latest per (customer, channel, purpose) is in force."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_lookup", "customer_id", "channel", "purpose", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(30))
    purpose: Mapped[str] = mapped_column(String(30))
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    source: Mapped[str | None] = mapped_column(String(60))


class Referral(TimestampMixin, Base):
    """Who brought whom, when and through which channel."""

    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("referrer_id", "referred_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    referrer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    referred_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str | None] = mapped_column(String(30))


class Merge(TimestampMixin, Base):
    """A record that ``merged_id`` was folded into ``kept_id``, with what moved, for undo."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kept_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    moved: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor: Mapped[str | None] = mapped_column(String(60))
    undone_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    undone_by: Mapped[str | None] = mapped_column(String(60))


class MergeConflict(TimestampMixin, Base):
    """Two customers that share an identity but differ on one that names a single person.

    They are not merged automatically; a person decides in the console.
    """

    __tablename__ = "merge_conflicts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_a_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    customer_b_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    shared_kind: Mapped[str] = mapped_column(String(30))
    shared_value: Mapped[str] = mapped_column(String(200))
    conflict_kind: Mapped[str] = mapped_column(String(30))
    value_a: Mapped[str] = mapped_column(String(200))
    value_b: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(12), default="open", server_default="open")
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(60))
