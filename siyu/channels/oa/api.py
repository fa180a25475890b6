"""``/channels/oa/callback``: the official account's server URL (its own protocol, no API key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from siyu.channels.config import channel_settings_of
from siyu.channels.oa import inbound
from siyu.config import Settings
from siyu.kit.openapi import NO_BEARER, error_responses
from siyu.kit.web import get_session

# The platform signs its calls (signature over the token); no bearer key.
router = APIRouter(prefix="/channels/oa", tags=["channels"],
                   responses=error_responses(400, 403, 413, 503))


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/callback", response_class=PlainTextResponse,
            summary="Official account server verification", openapi_extra=NO_BEARER)
def verify(request: Request) -> PlainTextResponse:
    """The platform checks the server URL: answer ``echostr`` once the signature holds."""
    protocol = inbound.make_protocol(channel_settings_of(request.app.state))
    return PlainTextResponse(inbound.verify_url(protocol, dict(request.query_params)))


async def _body(request: Request) -> bytes:
    return await request.body()


@router.post("/callback", response_class=PlainTextResponse,
             summary="Official account message and event callback", openapi_extra=NO_BEARER)
def receive(request: Request, body: bytes = Depends(_body),
            session: Session = Depends(get_session, scope="function")) -> PlainTextResponse:
    """Verify and store a message or event; the bot answers later through the outbox.

    Answers ``success`` once the callback is committed (the session's scope is the function,
    so the commit happens before the response is sent).
    """
    protocol = inbound.make_protocol(channel_settings_of(request.app.state))
    message = inbound.open_callback(protocol, body, dict(request.query_params))
    inbound.handle(session, message, settings=_settings(request))
    return PlainTextResponse("success")
