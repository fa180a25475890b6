"""Staff users and API keys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
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
    # The TOTP second factor (siyu.auth.mfa): the secret encrypted with the install's
    # stable ``totp`` key; confirmed once the user entered a first code; the last time
    # step accepted, so a code is never accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(Integer)


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


class UserSession(Base):
    """A signed-in console session (siyu.auth.sessions). The cookie carries a random token;
    only its SHA-256 is stored, so the table cannot be replayed as cookies. Deleting the row
    ends the session on every server process at once."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class LoginThrottle(Base):
    """Failed sign-ins counted per account name and per address (siyu.auth.throttle), in
    the database so that every server process agrees. Both are stored as keyed hashes: a
    name typed at the login page may be anything (even a password)."""

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("scope", "key_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(10))
    key_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
