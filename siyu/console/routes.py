"""The console shell: login, the signed-in user, permissions, CSRF, rendering and error pages.

Each domain serves its own pages from ``<domain>/console.py`` (customers, segments, service,
kb, analytics) with the helpers here and in :mod:`siyu.console.pages`.

Handlers stay thin: they check the login and the role's permission, call a service
function with the request's session (committed by ``get_session`` after the handler) and
hand plain data to a template. State-changing forms are POSTs carrying a per-session CSRF
token. Errors raised inside console pages render as a Chinese error page, not JSON.
"""

from __future__ import annotations

import hmac
import inspect
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from siyu import __version__
from siyu.auth import mfa
from siyu.auth import service as auth_service
from siyu.auth.deps import console_user
from siyu.auth.errors import RoleForbidden
from siyu.config import Settings
from siyu.console.nav import nav_for
from siyu.errors import Forbidden, SiyuError
from siyu.kit import labels
from siyu.kit.timeutil import display
from siyu.kit.web import get_session

_HERE = Path(__file__).resolve().parent
PER_PAGE = 20
TIMELINE_LIMIT = 100
HOME = "/customers"

LABELS = labels.ALL
"""Display names for the ``label`` filter (one table: :mod:`siyu.kit.labels`)."""


# -- errors and the signed-in user -----------------------------------------------------------


class ConsoleRoute(APIRoute):
    """A console page: a SiyuError raised while serving it renders the HTML error page.

    Other domains' pages use it too: ``APIRouter(route_class=ConsoleRoute)``.
    """


class LoginRequired(Exception):
    """Raised by :func:`current_user` when nobody is signed in; answered with a redirect."""

    def __init__(self, next_path: str):
        super().__init__(next_path)
        self.next_path = next_path


class EnrolmentRequired(Exception):
    """Raised by :func:`current_user` for a user who must enrol a second factor first
    (``SIYU_REQUIRE_MFA``); answered with a redirect to the 账户安全 page."""


# The signed-in user's own page (siyu.auth.users_console), where a second factor is enrolled.
ACCOUNT = "/account"


class CsrfRejected(Forbidden):
    code = "csrf_rejected"


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    display_name: str
    role: str

    def can(self, permission: str) -> bool:
        return auth_service.can(self.role, permission)


def current_user(
    request: Request, session: Session = Depends(get_session, scope="function")
) -> StaffUser:
    """The signed-in staff user; anyone else is sent to the login page."""
    principal = console_user(request, session)
    if principal is None or principal.user_id is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target if request.method in ("GET", "HEAD") else HOME)
    user = auth_service.get_user(session, principal.user_id)
    staff = StaffUser(user.id, user.username, user.display_name, user.role)
    request.state.console_user = staff
    if (not mfa.enabled(user) and mfa.required_for(request.app.state.settings, user.role)
            and not request.url.path.startswith(ACCOUNT)):
        # A session opened before SIYU_REQUIRE_MFA applied to the role: enrol first.
        raise EnrolmentRequired()
    return staff


def permitted(permission: str) -> Callable[..., StaffUser]:
    """A dependency: the signed-in user, provided their role holds ``permission``."""

    def check(user: StaffUser = Depends(current_user)) -> StaffUser:
        if not user.can(permission):
            raise RoleForbidden("当前角色没有权限访问此页面或执行此操作")
        return user

    return check


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, csrf_token: str = Form("")) -> None:
    """Refuse a form post whose hidden token does not match the session's."""
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(
        expected.encode(), csrf_token.encode()
    ):
        raise CsrfRejected("页面已过期或请求来源无法验证，请刷新页面后重试")


def safe_next(value: str | None) -> str:
    """``value`` if it is a path on this site, else the home page (no open redirects)."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)
    ):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout", "/login/code"):
        return HOME
    return value


# -- rendering -------------------------------------------------------------------------------


def _format_money(value: float | int | None) -> str:
    return "—" if value is None else f"¥{value:,.2f}"


def _make_templates(settings: Settings) -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    tz_name = settings.timezone
    env.filters["localtime"] = lambda value: display(value, tz_name)
    env.filters["money"] = _format_money
    env.filters["label"] = lambda value, table=None: (
        labels.label(str(value), table) if value else "—")
    env.filters["attr_value"] = labels.attribute_value
    env.filters["source_label"] = labels.source
    env.globals["static"] = lambda name: f"/static/console/{name}?v={__version__}"
    return Jinja2Templates(env=env)


def _render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    user: StaffUser | None = getattr(request.state, "console_user", None)
    base: dict[str, Any] = {
        "user": user,
        "nav": nav_for(user.role, request.url.path) if user else [],
        "csrf_token": csrf_token(request),
        "flash": request.session.pop("flash", None),
    }
    templates: Jinja2Templates = request.app.state.console_templates
    response = templates.TemplateResponse(request, name, {**base, **context},
                                          status_code=status_code)
    # Pages carry personal data and state-changing forms: keep them out of caches and frames.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def render_page(request: Request, name: str, context: dict[str, Any], *,
                status_code: int = 200) -> HTMLResponse:
    """A page of the console's own templates, signed in or not (the sign-in pages)."""
    return _render(request, name, context, status_code=status_code)


def _flash(request: Request, text: str, kind: str = "ok") -> None:
    request.session["flash"] = {"kind": kind, "text": text}


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# -- pages -----------------------------------------------------------------------------------

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/")
def home() -> RedirectResponse:
    return _redirect(HOME)


# The sign-in pages (/login, /login/code, /logout) are the auth domain's: siyu.auth.console.


# -- mounting --------------------------------------------------------------------------------

_TITLES = {400: "请求有误", 401: "需要登录", 403: "没有权限", 404: "找不到页面", 409: "操作冲突",
           413: "内容过大", 422: "输入有误", 429: "请求过于频繁"}


def _is_console(request: Request) -> bool:
    return isinstance(request.scope.get("route"), ConsoleRoute)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The friendly error page, with the navigation when someone is signed in."""
    title = _TITLES.get(status_code, "出错了")
    return _render(request, "error.html",
                   {"status": status_code, "title": title, "message": message},
                   status_code=status_code)


async def _delegate(handler: Callable[..., Any] | None, request: Request, exc: Exception,
                    fallback: Response) -> Response:
    if handler is None:
        return fallback
    result = handler(request, exc)
    if inspect.isawaitable(result):
        result = await result
    response: Response = result
    return response


_HTTP_ERROR_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def _install_error_pages(app: FastAPI) -> None:
    """Render console errors as pages while the API keeps its JSON errors."""
    api_siyu_handler = app.exception_handlers.get(SiyuError)
    api_validation_handler = app.exception_handlers.get(RequestValidationError)

    async def siyu_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SiyuError)
        if _is_console(request):
            return error_page(request, exc.status_code, exc.message)
        return await _delegate(api_siyu_handler, request, exc,
                               JSONResponse(exc.to_dict(), status_code=exc.status_code))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _is_console(request):
            return error_page(request, 422, "请求参数不正确，请检查后重试")
        return await _delegate(api_validation_handler, request, exc,
                               JSONResponse({"error": "invalid_input"}, status_code=422))

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return _redirect(f"/login?next={quote(safe_next(exc.next_path), safe='/')}")

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if exc.status_code == 404 and not path.startswith(("/api/", "/static/")):
            return error_page(request, 404, "您访问的页面不存在，请检查地址或从导航进入")
        # The API's one error body (siyu.kit.openapi.ErrorOut), also for the errors the
        # framework raises itself (an unknown path, a body it cannot parse).
        code = _HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "message": str(exc.detail)},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    app.add_exception_handler(StarletteHTTPException, not_found)
    app.add_exception_handler(SiyuError, siyu_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    async def enrolment_required(request: Request, exc: Exception) -> Response:
        request.session["flash"] = {"kind": "info",
                                    "text": "您的角色必须开启两步验证，请先完成开启后再继续使用"}
        return _redirect(f"{ACCOUNT}#mfa")

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(EnrolmentRequired, enrolment_required)


def mount(app: FastAPI) -> None:
    """Attach the console's pages, static files and error pages to ``app``."""
    app.state.console_templates = _make_templates(app.state.settings)
    app.mount("/static/console", StaticFiles(directory=_HERE / "static"),
              name="console-static")
    app.include_router(router)
    _install_error_pages(app)
