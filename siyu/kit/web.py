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

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

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
        return f"request body is larger than {self.limit} bytes (SIYU_MAX_BODY_BYTES)"


async def _send_error(send: Send, error: SiyuError) -> None:
    body = orjson.dumps(error.to_dict())
    await send({"type": "http.response.start", "status": error.status_code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
