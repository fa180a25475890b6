"""The console's user management page (用户管理, administrators only) and every user's own
账户安全 page (the TOTP second factor).

Handlers stay thin: each form calls the service function the CLI (``siyu user ...``) calls,
in :mod:`siyu.auth.users` and :mod:`siyu.auth.mfa`, which also write the audit log and keep
the rules (there is always an active administrator; a role change, disabling, a second
factor reset end the user's sessions at once).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.auth import mfa, sessions, users
from siyu.auth.errors import InvalidTotp
from siyu.auth.models import ROLES
from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, current_user, permitted
from siyu.errors import NotFound, SiyuError
from siyu.kit.labels import label
from siyu.kit.web import get_session

_HERE = Path(__file__).resolve().parent
PERMISSION = "users.manage"
# Every role may see its own account page; the entry is shown to all of them.
ACCOUNT_PERMISSION = "customers.read"

register_nav("用户管理", "/users", PERMISSION, order=88)
register_nav("账户安全", "/account", ACCOUNT_PERMISSION, order=99)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

# Service messages are Chinese with an English gloss in parentheses for the shell; the
# console shows the Chinese.
_GLOSS = re.compile(r"（[\x20-\x7e]*）$")


def chinese(message: str) -> str:
    """``message`` without its trailing English gloss."""
    return _GLOSS.sub("", message).strip()


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


# -- 用户管理 ------------------------------------------------------------------------------


def _users_page(request: Request, user: StaffUser, session: Session, *,
                error: str | None = None, form: dict[str, str] | None = None,
                status_code: int = 200) -> HTMLResponse:
    rows = users.overview(session, request.app.state.settings)
    return pages.render(request, user, _HERE / "templates", "auth/users.html", {
        "rows": rows, "roles": ROLES, "error": error,
        "active_admins": sum(1 for r in rows if r.role == "admin" and r.active),
        "form": form or {"username": "", "display_name": "", "role": "agent"},
    }, status_code=status_code)


@router.get("/users")
def users_page(request: Request, user: StaffUser = Depends(permitted(PERMISSION)),
               session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    return _users_page(request, user, session)


def _apply(request: Request, user: StaffUser, session: Session, action: Callable[[], str]
           ) -> Response:
    """Run ``action`` (returns the success message); a refused one re-renders the page with
    the reason and its status code, having changed nothing."""
    try:
        done = action()
        session.commit()
    except SiyuError as exc:
        session.rollback()
        return _users_page(request, user, session, error=chinese(exc.message),
                           status_code=exc.status_code)
    request.session["flash"] = {"kind": "ok", "text": done}
    return RedirectResponse("/users", status_code=303)


@router.post("/users")
def create_user(
    request: Request,
    username: str = Form("", max_length=200),
    display_name: str = Form("", max_length=200),
    role: str = Form("", max_length=40),
    password: str = Form("", max_length=200),
    _: None = Depends(check_csrf),
    user: StaffUser = Depends(permitted(PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    try:
        created = users.create(session, user, username.strip(), password, role,
                               display_name.strip() or None, ip=_ip(request))
        session.commit()
    except SiyuError as exc:
        session.rollback()
        form = {"username": username, "display_name": display_name, "role": role}
        return _users_page(request, user, session, error=chinese(exc.message), form=form,
                           status_code=exc.status_code)
    request.session["flash"] = {"kind": "ok",
                                "text": f"已创建用户 {created.username}，请把初始密码告知本人"}
    return RedirectResponse("/users", status_code=303)


def _name(session: Session, user_id: int) -> str:
    return users.by_id(session, user_id).username


@router.post("/users/{user_id}/role")
def change_role(
    request: Request, user_id: int,
    role: str = Form("", max_length=40),
    _: None = Depends(check_csrf),
    user: StaffUser = Depends(permitted(PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    def act() -> str:
        changed = users.set_role(session, user, _name(session, user_id), role, ip=_ip(request))
        return f"{changed.username} 的角色已改为{_role_label(role)}，其登录会话已结束"

    return _apply(request, user, session, act)


def _role_label(role: str) -> str:
    return label(role, "role")


def _disable(session: Session, request: Request, user: StaffUser, name: str) -> str:
    users.disable(session, user, name, ip=_ip(request))
    return f"已停用 {name}，其登录会话已全部结束"


def _enable(session: Session, request: Request, user: StaffUser, name: str) -> str:
    users.enable(session, user, name, ip=_ip(request))
    return f"已启用 {name}"


def _revoke(session: Session, request: Request, user: StaffUser, name: str) -> str:
    ended = users.revoke(session, user, name, ip=_ip(request))
    return f"已结束 {name} 的 {ended} 个登录会话"


def _unlock(session: Session, request: Request, user: StaffUser, name: str) -> str:
    users.unlock(session, request.app.state.settings, user, name)
    return f"已解除 {name} 的登录锁定"


def _reset_mfa(session: Session, request: Request, user: StaffUser, name: str) -> str:
    had = users.reset_mfa(session, user, name, ip=_ip(request))
    return (f"已重置 {name} 的两步验证，其登录会话已结束" if had
            else f"{name} 尚未开启两步验证")


# The buttons of a user's row that need no form field: action -> what it does and says.
_ACTIONS: dict[str, Callable[[Session, Request, StaffUser, str], str]] = {
    "disable": _disable, "enable": _enable, "revoke": _revoke, "unlock": _unlock,
    "mfa-reset": _reset_mfa,
}


@router.post("/users/{user_id}/{action}")
def user_action(
    request: Request, user_id: int, action: str,
    _: None = Depends(check_csrf),
    user: StaffUser = Depends(permitted(PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    """Disable, enable, end the sessions of, unlock, or reset the second factor of a user
    (registered after ``/role``, which takes a form field)."""
    run = _ACTIONS.get(action)
    if run is None:
        raise NotFound(f"no user action {action!r}")
    return _apply(request, user, session,
                  lambda: run(session, request, user, _name(session, user_id)))


# -- 账户安全 ------------------------------------------------------------------------------


def _account_page(request: Request, user: StaffUser, session: Session, *,
                  error: str | None = None, status_code: int = 200) -> HTMLResponse:
    settings = request.app.state.settings
    me = users.by_id(session, user.id)
    enrolled = mfa.enabled(me)
    pending = None if enrolled else mfa.pending_secret(settings, me)
    return pages.render(request, user, _HERE / "templates", "auth/account.html", {
        "enrolled": enrolled, "required": mfa.required_for(settings, me.role),
        "secret": pending, "otpauth": mfa.provisioning_uri(settings, me) if pending else None,
        "sessions": sessions.list_for(session, settings, me.id), "error": error,
    }, status_code=status_code)


@router.get("/account")
def account_page(request: Request, user: StaffUser = Depends(current_user),
                 session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    return _account_page(request, user, session)


def _account_done(request: Request, text: str) -> Response:
    request.session["flash"] = {"kind": "ok", "text": text}
    return RedirectResponse("/account", status_code=303)


@router.post("/account/mfa/start")
def start_enrolment(
    request: Request,
    _: None = Depends(check_csrf),
    user: StaffUser = Depends(current_user),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    me = users.by_id(session, user.id)
    try:
        mfa.begin_enrolment(session, request.app.state.settings, me)
    except InvalidTotp as exc:
        session.rollback()
        return _account_page(request, user, session, error=chinese(exc.message),
                             status_code=exc.status_code)
    return RedirectResponse("/account", status_code=303)


@router.post("/account/mfa/confirm")
def confirm_enrolment(
    request: Request,
    code: str = Form("", max_length=20),
    _: None = Depends(check_csrf),
    user: StaffUser = Depends(current_user),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    me = users.by_id(session, user.id)
    try:
        mfa.confirm_enrolment(session, request.app.state.settings, me, code)
    except InvalidTotp as exc:
        session.rollback()
        return _account_page(request, user, session, error=chinese(exc.message),
                             status_code=exc.status_code)
    users.record_enrolment(session, user, me, ip=_ip(request))
    return _account_done(request, "两步验证已开启：以后登录时需输入验证器 App 中的验证码")


@router.post("/account/mfa/remove")
def remove_factor(
    request: Request,
    code: str = Form("", max_length=20),
    _: None = Depends(check_csrf),
    user: StaffUser = Depends(current_user),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    """Turn one's own factor off with a current code (not when the role requires one)."""
    settings = request.app.state.settings
    me = users.by_id(session, user.id)
    try:
        users.remove_own_mfa(session, settings, me, code, ip=_ip(request))
    except InvalidTotp as exc:
        session.rollback()
        return _account_page(request, user, session, error=chinese(exc.message),
                             status_code=exc.status_code)
    return _account_done(request, "两步验证已关闭")
