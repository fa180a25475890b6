"""Web chat tokens: how a brand's site tells siyu who is chatting, and the chat session.

**Brand token** (issued by the brand's own server, never by the browser): a JSON Web Token
signed with HMAC-SHA256 (``alg: HS256``) using ``SIYU_WEBCHAT_SECRET``, so any JWT library
in any language can mint one. Claims:

* ``identities`` (required): an object of identity kind to value, e.g.
  ``{"phone": "13800138000", "external_id": "C10086"}``; kinds as in the customer API
  (``phone``, ``email``, ``external_id``, ``app_user_id``, ``wechat_openid``,
  ``wechat_unionid``, ``wecom_external_userid``, ``wecom_userid``). The brand vouches for
  them: they are linked to one customer as if the brand had imported them.
* ``exp`` (required): unix time after which the token is refused; at most
  ``SIYU_WEBCHAT_TOKEN_MAX_SECONDS`` (7 days) ahead.
* ``name`` (optional): the customer's display name for the chat header.

Open the chat with ``/chat?token=<JWT>`` (or pass it to the embed snippet). Python:
:func:`mint_token`; shell: ``siyu channels webchat-token --phone 13800138000``.

**Chat session** (issued by siyu once the visitor is identified by a brand token, a phone
code or a demo pick): an ``itsdangerous`` signed, timestamped value under
``SIYU_SECRET_KEY`` carrying the customer id and identities. The page keeps it in
``sessionStorage`` and sends it in the ``X-Siyu-Chat`` header (``?session=`` for the event
stream), not in a cookie: the chat runs in an iframe on the brand's site, where browsers
drop third-party cookies.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from siyu.customers.errors import InvalidIdentity
from siyu.customers.identity import IdentityRef, normalize_identity
from siyu.errors import SiyuError

_SESSION_SALT = "siyu.webchat.session"


class ChatAuthError(SiyuError):
    """The visitor is not (or no longer) identified."""

    status_code = 401
    code = "chat_unauthorized"


class WebChatNotConfigured(SiyuError):
    status_code = 503
    code = "webchat_not_configured"


@dataclass(frozen=True)
class BrandClaims:
    identities: tuple[IdentityRef, ...]
    expires_at: int
    name: str | None = None


@dataclass(frozen=True)
class ChatSession:
    """An identified chat visitor."""

    customer_id: int
    identities: tuple[IdentityRef, ...]
    via: str
    name: str | None = None


def mint_token(secret: str, identities: Mapping[str, str], *, ttl_seconds: int = 3600,
               name: str | None = None, now: float | None = None) -> str:
    """Sign a brand token for ``identities`` valid ``ttl_seconds`` (what a brand's server
    does; see the module docstring for the format)."""
    if not secret:
        raise WebChatNotConfigured("SIYU_WEBCHAT_SECRET is not set")
    if not identities:
        raise ValueError("a web chat token needs at least one identity")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"identities": dict(identities), "iat": issued,
                              "exp": issued + int(ttl_seconds)}
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str, *, max_lifetime: int, region: str = "CN",
                 now: float | None = None) -> BrandClaims:
    """Check a brand token and return its normalised identities.

    Raises:
        ChatAuthError: bad signature, expired, lifetime beyond ``max_lifetime``, or claims
            that are missing or invalid (the message names the claim).
        WebChatNotConfigured: ``secret`` is empty.
    """
    if not secret:
        raise WebChatNotConfigured("web chat tokens are not accepted: SIYU_WEBCHAT_SECRET is "
                                   "not set")
    current = time.time() if now is None else now
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"require": ["exp"], "verify_exp": False})
    except jwt.InvalidTokenError as exc:
        raise ChatAuthError(f"invalid web chat token: {exc}",
                            details={"field": "token", "reason": str(exc)}) from None
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= current:
        raise ChatAuthError("web chat token has expired",
                            details={"field": "token.exp", "reason": "expired"})
    if exp - current > max_lifetime:
        raise ChatAuthError(f"web chat token is valid for more than {max_lifetime} seconds",
                            details={"field": "token.exp", "reason": "too far in the future"})
    raw = claims.get("identities")
    if not isinstance(raw, dict) or not raw:
        raise ChatAuthError("web chat token has no identities",
                            details={"field": "token.identities", "reason": "required"})
    refs = []
    for kind, value in raw.items():
        try:
            refs.append(IdentityRef(kind, normalize_identity(kind, value, region),
                                    verified=kind == "phone"))
        except InvalidIdentity as exc:
            raise ChatAuthError(f"web chat token: {exc.message}",
                                details={"field": f"token.identities.{kind}",
                                         "reason": exc.message}) from None
    name = claims.get("name")
    return BrandClaims(tuple(refs), exp, name if isinstance(name, str) and name else None)


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SESSION_SALT)


def issue_session(secret_key: str, session: ChatSession) -> str:
    """Sign a chat session for the page to send back."""
    return _serializer(secret_key).dumps({
        "c": session.customer_id, "v": session.via, "n": session.name,
        "i": [[r.kind, r.value, r.verified] for r in session.identities],
    })


def read_session(secret_key: str, value: str | None, *, max_age: int) -> ChatSession:
    """The chat session signed by :func:`issue_session`; :class:`ChatAuthError` if it is
    missing, forged or older than ``max_age`` seconds."""
    if not value:
        raise ChatAuthError("chat session missing: identify first",
                            details={"field": "X-Siyu-Chat", "reason": "missing"})
    try:
        data = _serializer(secret_key).loads(value, max_age=max_age)
    except SignatureExpired:
        raise ChatAuthError("chat session expired: identify again",
                            details={"field": "X-Siyu-Chat", "reason": "expired"}) from None
    except BadSignature:
        raise ChatAuthError("chat session is not valid",
                            details={"field": "X-Siyu-Chat", "reason": "bad signature"}) from None
    return ChatSession(int(data["c"]), tuple(IdentityRef(k, v, bool(ver))
                                             for k, v, ver in data["i"]), str(data["v"]),
                       data.get("n"))
