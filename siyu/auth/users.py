"""Managing staff users: roles, disabling, sessions, locks and second factors, each change
written to the audit log. The CLI (``siyu user ...``) and the console's 用户管理 page call
these; a role change and disabling end the user's sessions at once.

There is always at least one active administrator: the last one can be neither disabled
nor given another role, and ``siyu user unlock|enable|set-password|mfa-reset`` on the
server's shell gets an administrator back in whatever happened in the browser.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.auth import mfa, service, sessions, throttle
from siyu.auth.errors import InvalidTotp, InvalidUser, LastAdmin, UserNotFound
from siyu.auth.models import ROLES, User
from siyu.config import Settings
from siyu.privacy import service as privacy


def by_name(session: Session, username: str) -> User:
    """The user (active or not) called ``username``."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise UserNotFound(f"没有用户 {username!r}（user not found）")
    return user


def by_id(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"没有编号为 {user_id} 的用户（user not found）")
    return user


def _keep_an_admin(session: Session, user: User) -> None:
    others = session.scalar(select(func.count()).select_from(User).where(
        User.role == "admin", User.is_active.is_(True), User.id != user.id))
    if user.role == "admin" and user.is_active and not others:
        raise LastAdmin("至少需要保留一位启用中的管理员：请先为其他用户设置管理员角色"
                        "（the last active admin cannot be disabled or demoted）")


def _audit(session: Session, actor: Any, action: str, user: User, ip: str | None,
           **detail: Any) -> None:
    privacy.record_audit(session, actor=actor, action=action, target=f"user:{user.username}",
                         detail=detail or None, ip=ip)


def create(session: Session, actor: Any, username: str, password: str, role: str,
           display_name: str | None = None, *, ip: str | None = None) -> User:
    user = service.create_user(session, username, password, role, display_name)
    _audit(session, actor, "user.create", user, ip, role=role)
    return user


def set_role(session: Session, actor: Any, username: str, role: str,
             *, ip: str | None = None) -> User:
    """Give the user another role; their sessions end (they sign in again as the new role)."""
    if role not in ROLES:
        raise InvalidUser(f"角色：必须是 {'、'.join(ROLES)} 之一（role must be one of "
                          f"{', '.join(ROLES)}）",
                          details={"field": "role", "reason": "unknown role"})
    user = by_name(session, username)
    if user.role == role:
        return user
    if role != "admin":
        _keep_an_admin(session, user)
    before, user.role = user.role, role
    ended = sessions.end_all(session, user.id)
    _audit(session, actor, "user.role", user, ip, before=before, after=role,
           sessions_ended=ended)
    return user


def disable(session: Session, actor: Any, username: str, *, ip: str | None = None) -> User:
    """Refuse the user's sign-ins and end their sessions."""
    user = by_name(session, username)
    _keep_an_admin(session, user)
    if user.is_active:
        user.is_active = False
    ended = sessions.end_all(session, user.id)
    _audit(session, actor, "user.disable", user, ip, sessions_ended=ended)
    return user


def enable(session: Session, actor: Any, username: str, *, ip: str | None = None) -> User:
    user = by_name(session, username)
    user.is_active = True
    _audit(session, actor, "user.enable", user, ip)
    return user


def change_password(session: Session, actor: Any, username: str, password: str,
                    *, ip: str | None = None) -> User:
    """A new password; every session of the user ends."""
    user = service.set_password(session, username, password)
    _audit(session, actor, "user.password", user, ip)
    return user


def revoke(session: Session, actor: Any, username: str, session_id: int | None = None,
           *, ip: str | None = None) -> int:
    """End one of the user's sessions (by id) or all of them; returns how many ended."""
    user = by_name(session, username)
    if session_id is None:
        ended = sessions.end_all(session, user.id)
    else:
        ended = int(sessions.end_one(session, user.id, session_id))
        if not ended:
            raise UserNotFound(f"用户 {user.username} 没有编号为 {session_id} 的会话"
                               "（session not found）")
    _audit(session, actor, "user.sessions.revoke", user, ip, sessions_ended=ended,
           session_id=session_id)
    return ended


def unlock(session: Session, settings: Settings, actor: Any, username: str,
           *, address: str | None = None) -> int:
    """Clear the sign-in lock of a name (any name, existing or not) and of an address."""
    removed = throttle.clear(session, settings, username, address)
    privacy.record_audit(session, actor=actor, action="user.unlock",
                         target=f"user:{username.strip()[:60]}",
                         detail={"address": bool(address), "cleared": removed})
    return removed


def reset_mfa(session: Session, actor: Any, username: str, *, ip: str | None = None) -> bool:
    """Remove the user's second factor (a lost phone); they enrol again if required."""
    user = by_name(session, username)
    had = mfa.remove(session, user)
    ended = sessions.end_all(session, user.id)
    _audit(session, actor, "user.mfa.reset", user, ip, sessions_ended=ended)
    return had


def record_enrolment(session: Session, actor: Any, user: User, *, ip: str | None = None
                     ) -> None:
    """Audit a second factor the user just confirmed (:func:`mfa.confirm_enrolment`)."""
    _audit(session, actor, "user.mfa.enrol", user, ip)


def remove_own_mfa(session: Session, settings: Settings, user: User, code: str,
                   *, ip: str | None = None) -> None:
    """The user turns their own factor off, proving it with a current code; refused while
    ``SIYU_REQUIRE_MFA`` requires one of their role (an administrator resets a lost one)."""
    if mfa.required_for(settings, user.role):
        raise InvalidTotp("您的角色必须开启两步验证，不能关闭；如手机丢失，请联系管理员重置",
                          details={"field": "totp", "reason": "required"})
    if not mfa.verify(session, settings, user, code):
        raise InvalidTotp("验证码：不正确或已使用，请输入验证器 App 中当前的 6 位数字",
                          details={"field": "code", "reason": "wrong code"})
    mfa.remove(session, user)
    _audit(session, f"user:{user.username}", "user.mfa.remove", user, ip)


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    last_login_at: dt.datetime | None
    sessions: int
    mfa: bool

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name,
                "role": self.role, "active": self.active,
                "last_login_at": self.last_login_at.isoformat() if self.last_login_at
                else None, "sessions": self.sessions, "mfa": self.mfa}


def overview(session: Session, settings: Settings) -> list[UserRow]:
    """Every user with role, status, last sign-in, live sessions and second factor."""
    counts = sessions.live_counts(session, settings)
    return [UserRow(u.id, u.username, u.display_name, u.role, u.is_active, u.last_login_at,
                    counts.get(u.id, 0), mfa.enabled(u)) for u in service.list_users(session)]
