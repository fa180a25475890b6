"""Staff users and API keys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime

ROLES: tuple[str, ...] = ("admin", "operator", "agent", "analyst")


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


API_SCOPES: tuple[str, ...] = ("ingest", "read", "service", "admin")


class ApiKey(TimestampMixin, Base):
    """A bearer key; only its SHA-256 is stored, the key itself is shown once at creation.

    ``scopes`` is a space-separated subset of :data:`API_SCOPES`, or NULL for a key made
    before scopes existed (or without ``--scope``): full access, as before."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(60))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    scopes: Mapped[str | None] = mapped_column(String(100))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    @property
    def scope_list(self) -> tuple[str, ...] | None:
        """The key's scopes, or None for full access."""
        return tuple(self.scopes.split()) if self.scopes is not None else None


class InstallSecret(TimestampMixin, Base):
    """The install's generated secrets on PostgreSQL (SQLite keeps them in a file beside
    the database); see :mod:`siyu.auth.secrets`."""

    __tablename__ = "install_secrets"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
