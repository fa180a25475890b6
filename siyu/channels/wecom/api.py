"""``/channels/wecom/callback``: WeCom's callback URL (its own protocol, no API key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.orm import Session

from siyu.channels.wecom import inbound
from siyu.config import Settings
from siyu.kit.openapi import NO_BEARER, error_responses
from siyu.kit.web import get_session

# WeCom signs its calls (msg_signature over the token); no bearer key.
router = APIRouter(prefix="/channels/wecom", tags=["channels"],
                   responses=error_responses(400, 403, 413, 503))


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _params(request: Request) -> dict[str, str | None]:
    return dict(request.query_params)


@router.get("/callback", response_class=PlainTextResponse, summary="WeCom URL verification",
            openapi_extra=NO_BEARER)
def verify(request: Request) -> PlainTextResponse:
    """WeCom checks the callback URL: answer the decrypted ``echostr`` as plain text."""
    crypto = inbound.make_crypto(_settings(request))
    return PlainTextResponse(inbound.verify_url(crypto, _params(request)))


async def _body(request: Request) -> bytes:
    return await request.body()


@router.post("/callback", summary="WeCom encrypted message callback",
             response_class=PlainTextResponse, openapi_extra=NO_BEARER)
def receive(request: Request, body: bytes = Depends(_body),
            session: Session = Depends(get_session, scope="function")) -> Response:
    """Verify, decrypt and store a message; the bot answers later through the outbox.

    Answers an empty 200 once the message is committed (WeCom retries otherwise): the
    session's scope is the function, so the commit happens before the response is sent.
    """
    settings = _settings(request)
    message = inbound.decrypt(inbound.make_crypto(settings), body, _params(request))
    inbound.handle_message(session, message, settings=settings)
    return Response(status_code=200, media_type="text/plain")
