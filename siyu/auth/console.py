"""The auth domain's console pages: signing in (password, then a second factor when the
user has or must have one) and out. The logic is in :mod:`siyu.auth.login`."""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.auth import login as login_service
from siyu.auth import mfa
from siyu.auth import sessions as auth_sessions
from siyu.auth.deps import console_user
from siyu.auth.errors import InvalidTotp, LoginFailed, LoginThrottled
from siyu.auth.models import User
from siyu.console.routes import ConsoleRoute, check_csrf, render_page, safe_next
from siyu.errors import SiyuError
from siyu.kit.web import get_session

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


@router.get("/login")
def login_page(
    request: Request,
    next_path: str = Query("", alias="next", max_length=2000),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    if console_user(request, session) is not None:
        return redirect(safe_next(next_path))
    return render_page(request, "login.html",
                   {"next": safe_next(next_path), "error": None, "username": ""})


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _login_refused(request: Request, template: str, context: dict[str, Any],
                   exc: SiyuError) -> HTMLResponse:
    response = render_page(request, template, {**context, "error": exc.message},
                       status_code=exc.status_code)
    retry = exc.details.get("retry_after") if isinstance(exc.details, dict) else None
    if retry:
        response.headers["Retry-After"] = str(retry)
    return response


def _open_session(request: Request, session: Session, user: User, next_path: str
                  ) -> RedirectResponse:
    token = login_service.complete(session, request.app.state.settings, user,
                                   ip=_client_ip(request),
                                   user_agent=request.headers.get("user-agent"))
    # A fresh cookie (and CSRF token) at sign-in, so nothing from before carries over.
    request.session.clear()
    request.session[auth_sessions.COOKIE_KEY] = token
    request.session["csrf"] = secrets.token_urlsafe(32)
    return redirect(safe_next(next_path))


@router.post("/login")
def login(
    request: Request,
    username: str = Form("", max_length=60),
    password: str = Form("", max_length=200),
    next_path: str = Form("", alias="next", max_length=2000),
    _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    settings = request.app.state.settings
    try:
        ok = login_service.check_password(session, settings, username, password,
                                          ip=_client_ip(request))
    except (LoginFailed, LoginThrottled) as exc:
        return _login_refused(request, "login.html",
                              {"next": safe_next(next_path), "username": username}, exc)
    if ok.next == "session":
        return _open_session(request, session, ok.user, next_path)
    if ok.next == "enrol" and mfa.pending_secret(settings, ok.user) is None:
        mfa.begin_enrolment(session, settings, ok.user)
    request.session.clear()
    request.session["csrf"] = secrets.token_urlsafe(32)
    request.session["mfa"] = {"uid": ok.user.id, "at": int(time.time()),
                              "next": safe_next(next_path)}
    return redirect("/login/code")


def _pending(request: Request, session: Session) -> tuple[User, str] | None:
    state = request.session.get("mfa")
    if not isinstance(state, dict):
        return None
    user = login_service.pending_user(session, state.get("uid"), state.get("at"))
    if user is None:
        return None
    return user, safe_next(state.get("next") if isinstance(state.get("next"), str) else None)


def _code_context(request: Request, user: User) -> dict[str, Any]:
    settings = request.app.state.settings
    enrolling = not mfa.enabled(user)
    return {"enrolling": enrolling, "error": None,
            "secret": mfa.pending_secret(settings, user) if enrolling else None,
            "otpauth": mfa.provisioning_uri(settings, user) if enrolling else None}


@router.get("/login/code")
def login_code_page(request: Request,
                    session: Session = Depends(get_session, scope="function")) -> Response:
    pending = _pending(request, session)
    if pending is None:
        return redirect("/login")
    return render_page(request, "login_code.html", _code_context(request, pending[0]))


@router.post("/login/code")
def login_code(
    request: Request,
    code: str = Form("", max_length=20),
    _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    pending = _pending(request, session)
    if pending is None:
        return redirect("/login")
    user, next_path = pending
    settings = request.app.state.settings
    context = _code_context(request, user)
    try:
        if context["enrolling"]:
            login_service.confirm_enrolment(session, settings, user, code,
                                            ip=_client_ip(request))
        else:
            login_service.check_code(session, settings, user, code, ip=_client_ip(request))
    except LoginThrottled as exc:
        return _login_refused(request, "login_code.html", context, exc)
    except InvalidTotp as exc:
        return _login_refused(request, "login_code.html", context,
                              InvalidTotp(exc.message, status_code=401))
    return _open_session(request, session, user, next_path)


@router.post("/logout")
def logout(request: Request, _: None = Depends(check_csrf),
           session: Session = Depends(get_session, scope="function")) -> RedirectResponse:
    principal = console_user(request, session)
    user = session.get(User, principal.user_id) if principal and principal.user_id else None
    login_service.logout(session, user, request.session.get(auth_sessions.COOKIE_KEY),
                         ip=_client_ip(request))
    request.session.clear()
    return redirect("/login")
