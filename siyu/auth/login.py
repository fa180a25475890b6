"""Signing in to the console: throttling, the password, the second factor, the session,
and the audit log (who, when, from where; never the password or what was typed as a name
that does not exist).

1. :func:`check_password`: a locked name or address is refused with 429 before any
   password is checked (the same for every name); otherwise the password is checked with
   the same hashing work for unknown names, and a failure is counted.
2. When the user has a second factor, or must have one (``SIYU_REQUIRE_MFA``), the
   console asks for a code (:func:`check_code`) or enrols one (:func:`confirm_enrolment`)
   before a session exists.
3. :func:`complete` opens the server-side session and clears the name's failure count.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth import mfa, service, sessions, throttle
from siyu.auth.errors import InvalidTotp, LoginFailed
from siyu.auth.models import User
from siyu.config import Settings
from siyu.db import utcnow
from siyu.privacy import service as privacy

# How long a correct password waits for its second factor.
SECOND_FACTOR_SECONDS = 300

Next = Literal["session", "code", "enrol"]


@dataclass(frozen=True)
class PasswordOk:
    user: User
    next: Next


def _actor(user: User | None) -> str:
    return f"user:{user.username}" if user is not None else "anonymous"


def _refuse_if_locked(session: Session, settings: Settings, username: str,
                      ip: str | None, now: dt.datetime) -> None:
    wait = throttle.remaining_lock(session, settings, username, ip, now)
    if not wait:
        return
    wait = throttle.record_failure(session, settings, username, ip, now)
    user = session.scalar(select(User).where(User.username == username))
    privacy.record_audit(session, actor=_actor(user), action="login.throttled",
                         detail={"retry_after_s": int(wait.total_seconds())}, ip=ip)
    raise throttle.refusal(wait)


def check_password(session: Session, settings: Settings, username: str, password: str,
                   *, ip: str | None, now: dt.datetime | None = None) -> PasswordOk:
    """The first step. Raises :class:`LoginThrottled` (429) or :class:`LoginFailed` (401,
    the same words for an unknown name, a disabled user and a wrong password)."""
    now = now or utcnow()
    username = username.strip()
    _refuse_if_locked(session, settings, username, ip, now)
    user, outcome = service.check_credentials(session, username, password)
    if user is None or outcome != "ok":
        throttle.record_failure(session, settings, username, ip, now)
        privacy.record_audit(session, actor=_actor(user), action="login.failure",
                             detail={"reason": outcome}, ip=ip)
        raise LoginFailed(service.LOGIN_FAILED)
    if mfa.enabled(user):
        return PasswordOk(user, "code")
    if mfa.required_for(settings, user.role):
        return PasswordOk(user, "enrol")
    return PasswordOk(user, "session")


def pending_user(session: Session, user_id: object, started: object,
                 *, now: dt.datetime | None = None) -> User | None:
    """The user whose password was right moments ago (state kept in the signed cookie),
    while the second factor is still awaited."""
    now = now or utcnow()
    if not isinstance(user_id, int) or not isinstance(started, int | float):
        return None
    if not 0 <= now.timestamp() - started <= SECOND_FACTOR_SECONDS:
        return None
    user = session.get(User, user_id)
    return user if user is not None and user.is_active else None


def _wrong_code(session: Session, settings: Settings, user: User, ip: str | None,
                now: dt.datetime) -> InvalidTotp:
    throttle.record_failure(session, settings, user.username, ip, now)
    privacy.record_audit(session, actor=_actor(user), action="login.failure",
                         detail={"reason": "wrong_code"}, ip=ip)
    return InvalidTotp("验证码不正确或已使用，请输入验证器 App 中当前的 6 位数字",
                       details={"field": "code", "reason": "wrong code"})


def check_code(session: Session, settings: Settings, user: User, code: str,
               *, ip: str | None, now: dt.datetime | None = None) -> None:
    """The second step for an enrolled user: a current code (throttled like passwords)."""
    now = now or utcnow()
    _refuse_if_locked(session, settings, user.username, ip, now)
    if not mfa.verify(session, settings, user, code, now=now):
        raise _wrong_code(session, settings, user, ip, now)


def confirm_enrolment(session: Session, settings: Settings, user: User, code: str,
                      *, ip: str | None, now: dt.datetime | None = None) -> None:
    """The second step for a user who must enrol: the first code confirms the factor."""
    now = now or utcnow()
    _refuse_if_locked(session, settings, user.username, ip, now)
    try:
        mfa.confirm_enrolment(session, settings, user, code, now=now)
    except InvalidTotp:
        raise _wrong_code(session, settings, user, ip, now) from None
    privacy.record_audit(session, actor=_actor(user), action="user.mfa.enrol",
                         target=f"user:{user.username}", ip=ip)


def complete(session: Session, settings: Settings, user: User, *, ip: str | None,
             user_agent: str | None, now: dt.datetime | None = None) -> str:
    """Open the session (returns the cookie's token), clear the name's failure count and
    record the sign-in."""
    now = now or utcnow()
    throttle.record_success(session, settings, user.username)
    user.last_login_at = now
    token = sessions.start(session, settings, user, ip=ip, user_agent=user_agent, now=now)
    privacy.record_audit(session, actor=_actor(user), action="login.success",
                         detail={"second_factor": mfa.enabled(user)}, ip=ip)
    return token


def logout(session: Session, user: User | None, token: object, *, ip: str | None) -> None:
    sessions.end(session, token)
    if user is not None:
        privacy.record_audit(session, actor=_actor(user), action="logout", ip=ip)
