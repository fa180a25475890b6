"""Request dependencies: who is calling, and may they."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from siyu.auth import service, sessions
from siyu.auth.errors import InvalidApiKey, RoleForbidden, ScopeForbidden
from siyu.errors import Unauthorized
from siyu.kit.web import get_session

CONSOLE_HEADER = "x-siyu-console"


# What an API key's scope lets it do. ``admin`` (and a key without scopes) may do anything.
SCOPE_PERMISSIONS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"customers.write"}),
    "read": frozenset({"customers.read", "analytics.read", "segments.read"}),
    "service": frozenset({"customers.read", "service.agent"}),
}
# The scope a route needs when it does not name one: from the permission it checks.
_DEFAULT_SCOPE: dict[str, str] = {"customers.read": "read", "analytics.read": "read",
                                  "segments.read": "read", "service.agent": "service"}


def scope_for(permission: str) -> str:
    """The scope a route checking ``permission`` needs by default (``admin`` for writes)."""
    return _DEFAULT_SCOPE.get(permission, "admin")


@dataclass(frozen=True)
class Principal:
    """The caller: an API key or a console user with a role.

    ``scopes`` is an API key's scopes, or None for a full-access key (and for users, whose
    role decides)."""

    kind: str
    name: str
    role: str
    user_id: int | None = None
    scopes: tuple[str, ...] | None = None

    @property
    def full_access(self) -> bool:
        return self.kind == "api_key" and (self.scopes is None or "admin" in self.scopes)

    def can(self, permission: str) -> bool:
        if self.kind != "api_key":
            return service.can(self.role, permission)
        return self.full_access or any(permission in SCOPE_PERMISSIONS.get(s, frozenset())
                                       for s in self.scopes or ())

    def has_scope(self, *accepted: str) -> bool:
        """Whether an API key may call a route needing one of ``accepted`` (users: yes)."""
        return self.kind != "api_key" or self.full_access or any(
            s in accepted for s in self.scopes or ())


def console_user(request: Request, session: Session) -> Principal | None:
    """The user of the request's console session: the signed cookie names a server-side
    session (siyu.auth.sessions), looked up in the database on every request so that an
    ended session is refused at once by every server process."""
    if "session" not in request.scope:
        return None
    token = request.session.get(sessions.COOKIE_KEY)
    if token is None:
        return None
    user = sessions.resolve(session, request.app.state.settings, token)
    if user is None:
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
        if service.use_is_due(key):
            # Its own short transaction, committed now: the route's unit of work neither
            # waits on it nor can lose it.
            with request.app.state.sessions() as own:
                service.note_api_key_use(own, key.id)
                own.commit()
        request.state.principal = f"api_key:{key.id}"  # for the access log (siyu.kit.web)
        scopes = key.scope_list
        # A narrower key reads like an analyst (masked PII); see siyu.privacy.service.sees_pii.
        role = "admin" if scopes is None or "admin" in scopes else "analyst"
        return Principal("api_key", key.name, role, scopes=scopes)
    if request.headers.get(CONSOLE_HEADER):
        user = console_user(request, session)
        if user is not None:
            return user
    if auth:
        raise InvalidApiKey("Authorization must be 'Bearer <API key>'")
    raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")


def _check_scope(principal: Principal, accepted: tuple[str, ...]) -> None:
    if not principal.has_scope(*accepted):
        needed = " or ".join(repr(s) for s in accepted)
        raise ScopeForbidden(
            f"this API key lacks scope {needed} (it has: {', '.join(principal.scopes or ())});"
            f" create one with: siyu apikey create NAME --scope {accepted[0]}",
            details={"needed": list(accepted), "has": list(principal.scopes or ())})


def require(permission: str, scope: str | tuple[str, ...] | None = None
            ) -> Callable[[Principal], Principal]:
    """A route's guard: the caller's role holds ``permission`` and, for an API key, the key
    holds ``scope`` (one of them, when a tuple; by default :func:`scope_for` the permission)."""
    accepted = (scope,) if isinstance(scope, str) else scope or (scope_for(permission),)

    def check(principal: Principal = Depends(api_principal)) -> Principal:
        _check_scope(principal, accepted)
        if not principal.can(permission):
            raise RoleForbidden(f"role {principal.role!r} may not {permission}")
        return principal

    return check


def require_scope(*accepted: str) -> Callable[[Principal], Principal]:
    """A guard for routes that check their permissions themselves: only the key's scope."""

    def check(principal: Principal = Depends(api_principal)) -> Principal:
        _check_scope(principal, accepted)
        return principal

    return check
