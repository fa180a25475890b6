"""Server-side console sessions.

The console's signed cookie carries a random session token; the ``user_sessions`` row
(holding only the token's SHA-256) is looked up on every request with one indexed query
joined to the user. Deleting the row ends the session at once on every server process:
logout deletes its own, a password change, a role change and disabling a user delete all
of that user's. A session ends after ``SIYU_SESSION_IDLE_MINUTES`` without a request and
``SIYU_SESSION_MAX_HOURS`` after sign-in; ``last_seen_at`` is written at most once a minute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from siyu.auth.models import User, UserSession
from siyu.config import Settings
from siyu.db import utcnow

# The cookie key holding the token (the signed cookie also holds the CSRF token).
COOKIE_KEY = "sid"
TOUCH_EVERY = dt.timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, settings: Settings, user: User, *, ip: str | None = None,
          user_agent: str | None = None, now: dt.datetime | None = None) -> str:
    """Open a session for ``user``; returns the token for the cookie (never stored)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(UserSession(
        token_hash=_digest(token), user_id=user.id, created_at=now, last_seen_at=now,
        expires_at=now + dt.timedelta(hours=settings.session_max_hours),
        ip=(ip or None) and ip[:64], user_agent=(user_agent or None) and user_agent[:200]))
    session.flush()
    return token


def resolve(session: Session, settings: Settings, token: object,
            *, now: dt.datetime | None = None) -> User | None:
    """The active user whose live session ``token`` names, or None (an unknown, ended,
    idle or expired session; a disabled user). Ended sessions are deleted on the way."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    found = session.execute(
        select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == _digest(token))).first()
    if found is None:
        return None
    row, user = found
    now = now or utcnow()
    idle = dt.timedelta(minutes=settings.session_idle_minutes)
    if not user.is_active or now >= row.expires_at or now - row.last_seen_at >= idle:
        session.delete(row)
        session.flush()
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return user


def end(session: Session, token: object) -> None:
    """End the session ``token`` names (logout)."""
    if isinstance(token, str):
        session.execute(delete(UserSession).where(UserSession.token_hash == _digest(token)))


def end_all(session: Session, user_id: int) -> int:
    """End every session of the user; returns how many there were."""
    result = session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


def end_everyone(session: Session) -> int:
    """End every console session (after the session key was rotated)."""
    result = session.execute(delete(UserSession))
    return int(getattr(result, "rowcount", 0) or 0)


def end_one(session: Session, user_id: int, session_id: int) -> bool:
    """End one of the user's sessions by its id (as :func:`list_for` shows it)."""
    result = session.execute(delete(UserSession).where(UserSession.id == session_id,
                                                       UserSession.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class SessionInfo:
    id: int
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    ip: str | None
    user_agent: str | None


def _live(settings: Settings, now: dt.datetime) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    idle = dt.timedelta(minutes=settings.session_idle_minutes)
    return UserSession.expires_at > now, UserSession.last_seen_at > now - idle


def list_for(session: Session, settings: Settings, user_id: int,
             *, now: dt.datetime | None = None) -> list[SessionInfo]:
    """The user's live sessions, newest first."""
    now = now or utcnow()
    rows = session.scalars(select(UserSession).where(UserSession.user_id == user_id,
                                                     *_live(settings, now))
                           .order_by(UserSession.id.desc()))
    return [SessionInfo(r.id, r.created_at, r.last_seen_at, r.expires_at, r.ip, r.user_agent)
            for r in rows]


def live_counts(session: Session, settings: Settings,
                *, now: dt.datetime | None = None) -> dict[int, int]:
    """Live sessions per user id."""
    now = now or utcnow()
    rows = session.execute(select(UserSession.user_id, func.count())
                           .where(*_live(settings, now)).group_by(UserSession.user_id))
    return {int(user_id): int(count) for user_id, count in rows}


def purge_ended(session: Session, settings: Settings, *, now: dt.datetime | None = None
                ) -> int:
    """Delete sessions past their idle or absolute limit."""
    now = now or utcnow()
    idle = dt.timedelta(minutes=settings.session_idle_minutes)
    result = session.execute(delete(UserSession).where(
        (UserSession.expires_at <= now) | (UserSession.last_seen_at <= now - idle)))
    return int(getattr(result, "rowcount", 0) or 0)
