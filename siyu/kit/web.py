"""Web plumbing: the per-request unit of work, JSON bodies and the body-size guard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from siyu.errors import InvalidInput, PayloadTooLarge, SiyuError
from siyu.kit.perf import paused_gc


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed when the handler returns, else rolled back.

    Declare it as ``Depends(get_session, scope="function")``: with the default request scope
    FastAPI runs the commit after the response has been sent, so a failed commit would
    still have answered 200.
    """
    factory: sessionmaker[Session] = request.app.state.sessions
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class InvalidJson(SiyuError):
    status_code = 400
    code = "invalid_json"


def parse_json(body: bytes) -> Any:
    """Parse a request body, naming the position of a syntax error."""
    if not body:
        raise InvalidJson("request body is empty; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJson(f"malformed JSON: {exc}") from None


async def read_batch(request: Request, key: str) -> list[Any]:
    """Read ``{"<key>": [...]}`` from the body and return the list."""
    body = await request.body()
    with paused_gc():
        data = parse_json(body)
    if not isinstance(data, dict) or key not in data:
        raise InvalidInput(f"expected a JSON object with a {key!r} list",
                           details={"field": key, "reason": "missing"})
    unknown = set(data) - {key}
    if unknown:
        raise InvalidInput(f"unknown top-level field(s): {', '.join(sorted(unknown))}",
                           details={"field": sorted(unknown)[0], "reason": "unknown field"})
    records = data[key]
    if not isinstance(records, list):
        raise InvalidInput(f"{key!r} must be a list", details={"field": key, "reason": "type"})
    return records


class BodySizeLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before they are buffered."""

    def __init__(self, app: ASGIApp, limit: int, setting: str = "SIYU_MAX_BODY_BYTES"):
        self.app = app
        self.limit = limit
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _send_error(send, PayloadTooLarge(self._message()))
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise PayloadTooLarge(self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"request body is larger than {self.limit} bytes ({self.setting})"


async def _send_error(send: Send, error: SiyuError) -> None:
    body = orjson.dumps(error.to_dict())
    await send({"type": "http.response.start", "status": error.status_code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# -- the edges: response headers and the access log ------------------------------------------

# Pages whose own scripts come from a CDN with inline bootstrapping (FastAPI's API docs):
# they get every header but the script policy.
_CSP_EXEMPT = ("/docs", "/redoc")
# Pages a brand may frame on its own site (the web chat window inside embed.js's iframe).
_EMBEDDABLE = ("/chat",)


def content_security_policy(nonce: str, frame_ancestors: str) -> str:
    """The policy for siyu's pages: scripts and styles only from siyu itself or carrying
    this response's nonce (no inline ``style=`` attributes either), no plug-ins, forms and
    fetches to siyu only, framed only by ``frame_ancestors``."""
    return ("default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            f"style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
            f"form-action 'self'; frame-ancestors {frame_ancestors}")


class SecurityHeaders:
    """Adds CSP (with a per-response script nonce, ``request.state.csp_nonce``),
    ``frame-ancestors``, ``Referrer-Policy`` and ``X-Content-Type-Options`` to every response.

    The console is never framed (``'none'``, and ``X-Frame-Options: DENY`` for old
    browsers); the web chat only by ``embed_origins`` (``SIYU_CHAT_EMBED_ORIGINS``).
    """

    def __init__(self, app: ASGIApp, embed_origins: tuple[str, ...] = ()):
        self.app = app
        self.chat_ancestors = " ".join(("'self'", *embed_origins))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import secrets

        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        path: str = scope.get("path", "")
        embeddable = path == "/chat" or path.startswith(tuple(p + "/" for p in _EMBEDDABLE))
        ancestors = self.chat_ancestors if embeddable else "'none'"
        headers = [(b"x-content-type-options", b"nosniff"),
                   (b"referrer-policy", b"strict-origin-when-cross-origin")]
        if path in _CSP_EXEMPT:
            headers.append((b"content-security-policy",
                            f"frame-ancestors {ancestors}".encode()))
        else:
            headers.append((b"content-security-policy",
                            content_security_policy(nonce, ancestors).encode()))
        if not embeddable:
            headers.append((b"x-frame-options", b"DENY"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in headers if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


class AccessLog:
    """One line per request on the ``siyu.access`` logger: method, path, status, duration in
    ms, principal. The query string is never logged (it may carry a chat session, a signed
    link's token or a phone number), and neither are headers; the principal is the id the
    auth dependencies leave in ``request.state.principal`` (``user:7``, ``api_key:3``),
    never a token."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import logging
        import time

        started = time.perf_counter()
        status = 500
        state = scope.setdefault("state", {})

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            ms = round((time.perf_counter() - started) * 1000, 1)
            logging.getLogger("siyu.access").info(
                "%s %s %s %sms %s", scope.get("method"), scope.get("path"), status, ms,
                state.get("principal", "-"),
                extra={"method": scope.get("method"), "path": scope.get("path"),
                       "status": status, "duration_ms": ms,
                       "principal": state.get("principal")})


class CallbackBodyLimit:
    """Refuse bodies over a per-path limit with 413 before anything reads them: the channel
    callbacks (``limits`` maps a path to its cap) take far less than the API's batches."""

    def __init__(self, app: ASGIApp, limits: dict[str, int]):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        await BodySizeLimit(self.app, limit, setting="the channel's callback cap")(
            scope, receive, send)
