"""The audit log and what keeps it append-only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime, utcnow


class AuditEntry(Base):
    """Who did what, to what, when and from where; never the personal data itself.

    The database refuses UPDATE and DELETE on this table (triggers, migration 0010); only
    the retention purge may delete, while it holds an :class:`AuditPurgePermit` row in its
    own transaction, and it records itself as an entry.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    target: Mapped[str | None] = mapped_column(String(120))
    detail: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    ip: Mapped[str | None] = mapped_column(String(64))


class AuditPurgePermit(Base):
    """Present only inside the retention purge's transaction: the audit triggers let
    deletes through while a row exists (no other transaction ever sees one committed)."""

    __tablename__ = "audit_purge_permits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reason: Mapped[str] = mapped_column(String(60))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Suppression(Base):
    """Do not contact: the keyed hash (HMAC-SHA256 under the do-not-contact purpose key) of
    one identity of an erased person, so that a new record carrying it is not marketed to,
    without keeping the value itself."""

    __tablename__ = "privacy_suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
