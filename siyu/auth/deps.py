"""Request dependencies: who is calling, and may they."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from siyu.auth import service
from siyu.auth.errors import InvalidApiKey, RoleForbidden
from siyu.auth.models import User
from siyu.errors import Unauthorized
from siyu.kit.web import get_session

CONSOLE_HEADER = "x-siyu-console"


@dataclass(frozen=True)
class Principal:
    """The caller: an API key (full access) or a console user with a role."""

    kind: str
    name: str
    role: str
    user_id: int | None = None

    def can(self, permission: str) -> bool:
        return self.kind == "api_key" or service.can(self.role, permission)


def console_user(request: Request, session: Session) -> Principal | None:
    user_id = request.session.get("uid") if "session" in request.scope else None
    if not isinstance(user_id, int):
        return None
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    request.state.principal = f"user:{user.id}"  # for the access log (siyu.kit.web)
    return Principal("user", user.username, user.role, user.id)


def api_principal(
    request: Request, session: Session = Depends(get_session, scope="function")
) -> Principal:
    """A bearer API key, or a logged-in console user calling from the console's own pages
    (which send the ``X-Siyu-Console`` header that cross-site forms cannot)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        key = service.check_api_key(session, auth[7:].strip())
        request.state.principal = f"api_key:{key.id}"  # for the access log (siyu.kit.web)
        return Principal("api_key", key.name, "admin")
    if request.headers.get(CONSOLE_HEADER):
        user = console_user(request, session)
        if user is not None:
            return user
    if auth:
        raise InvalidApiKey("Authorization must be 'Bearer <API key>'")
    raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")


def require(permission: str) -> Callable[[Principal], Principal]:
    def check(principal: Principal = Depends(api_principal)) -> Principal:
        if not principal.can(permission):
            raise RoleForbidden(f"role {principal.role!r} may not {permission}")
        return principal

    return check
