"""Web chat routes: the customer-facing page, the embed snippet, its JSON API and live stream.

* ``GET /chat`` the chat page (``?token=`` a brand token), ``GET /chat/demo`` the demo
  customer picker (``SIYU_WEBCHAT_DEMO=1`` only), ``GET /chat/embed.js`` the snippet.
* ``POST /chat/api/session`` {token}, ``POST /chat/api/code`` {phone},
  ``POST /chat/api/verify`` {phone, code}, ``POST /chat/api/demo`` {customer_id}: identify
  the visitor; each answers ``{"session": ...}`` for the ``X-Siyu-Chat`` header.
* ``GET /chat/api/messages`` history, ``POST /chat/api/messages`` {text, client_id}.
* ``GET /chat/stream?session=&after=`` Server-Sent Events: each delivered reply as an
  ``event: message``; the stream polls the database (every 300 ms), which is simple and works
  whichever process delivered the reply.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from siyu.auth import service as auth_service
from siyu.channels.config import ChannelSettings, channel_settings_of
from siyu.channels.sms import HttpSms, SmsSender
from siyu.channels.webchat import service
from siyu.channels.webchat.tokens import ChatSession, issue_session, read_session
from siyu.config import Settings
from siyu.errors import InvalidInput, NotFound
from siyu.kit.web import get_session, parse_json
from siyu.referrals import service as referrals

_HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
router = APIRouter(prefix="/chat", tags=["webchat"], include_in_schema=False)
POLL_SECONDS = 0.3
HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 600
MAX_ID = 2**63 - 1  # ids are 64-bit
_ASSETS = {"chat.js": "text/javascript; charset=utf-8", "chat.css": "text/css; charset=utf-8"}
_NO_STORE = {"Cache-Control": "no-store"}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _cs(request: Request) -> ChannelSettings:
    return channel_settings_of(request.app.state)


def _secret(request: Request, purpose: str) -> str:
    """This install's key for ``purpose``: "chat-session" signs sessions (rotatable),
    "chat-code" hashes verification codes (stable, so codes in flight stay valid)."""
    return auth_service.purpose_key(_settings(request), purpose,
                                    engine=request.app.state.engine).hex()


def _sms(request: Request) -> SmsSender:
    sender = getattr(request.app.state, "sms_sender", None)
    if sender is not None:
        return sender  # type: ignore[no-any-return]
    cs = _cs(request)
    return HttpSms(cs.sms_url, cs.sms_token.get_secret_value(), timeout=cs.sms_timeout_seconds)


def _chat(request: Request, x_siyu_chat: str | None = Header(default=None)) -> ChatSession:
    return read_session(_secret(request, "chat-session"), x_siyu_chat,
                        max_age=_cs(request).webchat_session_seconds)


async def _json_object(request: Request) -> dict[str, Any]:
    data = parse_json(await request.body())
    if not isinstance(data, dict):
        raise InvalidInput("expected a JSON object",
                           details=[{"field": "(body)", "reason": "not an object"}])
    return data


def _session_answer(request: Request, chat: ChatSession) -> dict[str, Any]:
    return {"session": issue_session(_secret(request, "chat-session"), chat),
            "customer": {"name": chat.name}, "via": chat.via,
            "expires_in": _cs(request).webchat_session_seconds}


# -- pages ---------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def chat_page(request: Request) -> Response:
    """The chat window (mobile-first, no external assets)."""
    cs = _cs(request)
    return templates.TemplateResponse(request, "webchat/chat.html", {
        "phone_login": bool(cs.sms_url), "demo": cs.webchat_demo,
    }, headers=_NO_STORE)


@router.get("/demo", response_class=HTMLResponse)
def demo_page(request: Request, session: Session = Depends(get_session, scope="function")
              ) -> Response:
    """Pick a demo customer to chat as (demo mode only)."""
    if not _cs(request).webchat_demo:
        raise NotFound("demo chat is off (SIYU_WEBCHAT_DEMO is not set)")
    return templates.TemplateResponse(request, "webchat/demo.html", {
        "customers": service.demo_customers(session)}, headers=_NO_STORE)


@router.get("/embed.js")
def embed_js(request: Request) -> Response:
    """The embeddable snippet: a floating button that opens the chat in an iframe."""
    body = templates.get_template("webchat/embed.js").render(
        origin=str(request.base_url).rstrip("/"))
    return Response(body, media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300"})


@router.get("/assets/{name}")
def asset(name: str) -> Response:
    if name not in _ASSETS:
        raise NotFound(f"no asset {name!r}")
    return Response((_HERE / "static" / name).read_bytes(), media_type=_ASSETS[name],
                    headers={"Cache-Control": "public, max-age=300"})


# -- identify --------------------------------------------------------------------------------


@router.post("/api/session")
def start_session(request: Request, data: dict[str, Any] = Depends(_json_object),
                  session: Session = Depends(get_session, scope="function")) -> dict[str, Any]:
    """Exchange a brand token for a chat session."""
    chat = service.start_with_token(session, data.get("token"), cs=_cs(request),
                                    region=_settings(request).default_phone_region)
    return _session_answer(request, chat)


@router.post("/api/code")
def send_code(request: Request, data: dict[str, Any] = Depends(_json_object),
              session: Session = Depends(get_session, scope="function")) -> dict[str, Any]:
    """Send a 6-digit code to a phone by SMS."""
    sent = service.request_code(
        session, data.get("phone"), cs=_cs(request), secret_key=_secret(request, "chat-code"),
        sms=_sms(request), client_ip=request.client.host if request.client else None,
        region=_settings(request).default_phone_region)
    return {"phone": sent.phone[:-8] + "****" + sent.phone[-4:],
            "expires_in": sent.expires_in, "resend_in": sent.resend_in}


_VERIFY_MESSAGES = {"expired": "验证码已过期或不存在，请重新获取",
                    "wrong_code": "验证码不正确",
                    "too_many_attempts": "尝试次数过多，请重新获取验证码"}


@router.post("/api/verify")
def verify(request: Request, data: dict[str, Any] = Depends(_json_object),
           session: Session = Depends(get_session, scope="function")) -> Response:
    """Check the code; a wrong guess is counted (and committed) before answering 401."""
    outcome = service.verify_code(session, data.get("phone"), data.get("code"),
                                  cs=_cs(request), secret_key=_secret(request, "chat-code"),
                                  region=_settings(request).default_phone_region)
    if outcome.session is None:
        reason = outcome.reason or "wrong_code"
        return JSONResponse({"error": "chat_unauthorized", "message": _VERIFY_MESSAGES[reason],
                             "details": {"field": "code", "reason": reason,
                                         "attempts_left": outcome.attempts_left}},
                            status_code=401)
    if data.get("invite") is not None:
        # Signed in from a friend's invite link (/r/<code>): attribute the customer.
        ref = outcome.session.identities[0]
        referrals.accept_invite(session, outcome.session.customer_id,
                                {"kind": ref.kind, "value": ref.value}, data.get("invite"),
                                settings=_settings(request))
    return JSONResponse(_session_answer(request, outcome.session))


@router.post("/api/demo")
def demo_session(request: Request, data: dict[str, Any] = Depends(_json_object),
                 session: Session = Depends(get_session, scope="function")) -> dict[str, Any]:
    """Chat as a demo customer (demo mode only)."""
    chat = service.start_as_demo_customer(session, data.get("customer_id"), cs=_cs(request))
    return _session_answer(request, chat)


# -- messages --------------------------------------------------------------------------------


@router.get("/api/messages")
def messages(chat: ChatSession = Depends(_chat),
             session: Session = Depends(get_session, scope="function")) -> dict[str, Any]:
    """The visitor's recent messages and the cursor to stream from."""
    return {"customer": {"name": chat.name}, **service.history(session, chat)}


@router.post("/api/messages")
def send(request: Request, chat: ChatSession = Depends(_chat),
         data: dict[str, Any] = Depends(_json_object),
         session: Session = Depends(get_session, scope="function")) -> dict[str, Any]:
    """Send the visitor's message to the service desk (the bot answers via the stream)."""
    posted = service.post_message(session, chat, data.get("text"), data.get("client_id"),
                                  cs=_cs(request))
    return {"message_id": posted.message_id, "conversation_id": posted.conversation_id,
            "duplicate": posted.duplicate}


@router.get("/stream")
async def stream(
    request: Request,
    session_token: str | None = Query(default=None, alias="session"),
    after: int = Query(default=0, ge=0, le=MAX_ID),
    timeout: int = Query(default=MAX_STREAM_SECONDS, ge=1, le=MAX_STREAM_SECONDS),
    last_event_id: str | None = Header(default=None),
) -> StreamingResponse:
    """Server-Sent Events of delivered replies; ends after ``timeout`` seconds (the browser's
    EventSource reconnects with ``Last-Event-ID``, the cursor)."""
    chat = read_session(_secret(request, "chat-session"), session_token,
                        max_age=_cs(request).webchat_session_seconds)
    if last_event_id and last_event_id.isdigit():
        # The browser echoes the id we sent; anything beyond a 64-bit id was not ours.
        if len(last_event_id) > 19 or int(last_event_id) > MAX_ID:
            raise InvalidInput("Last-Event-ID: out of range (at most 2^63-1)", details=[
                {"field": "Last-Event-ID", "reason": "number out of range"}])
        after = max(after, int(last_event_id))
    factory = request.app.state.sessions

    def poll(cursor: int, seen: set[int]) -> tuple[list[dict[str, Any]], int]:
        with factory() as db:
            return service.poll_replies(db, chat.customer_id, cursor, seen)

    async def events() -> Any:
        cursor, seen = after, set[int]()
        yield b"retry: 2000\n\n"
        started = last_beat = time.monotonic()
        while time.monotonic() - started < timeout:
            fresh, cursor = await anyio.to_thread.run_sync(poll, cursor, seen)
            for message in fresh:
                yield (b"id: " + str(cursor).encode() + b"\nevent: message\ndata: "
                       + orjson.dumps(message) + b"\n\n")
            if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                yield b": ping\n\n"
            await asyncio.sleep(POLL_SECONDS)
        yield b"event: end\ndata: {}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
