"""``/channels/phone/webhook``: the call centre's webhook (signed, its own protocol)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from siyu.channels.config import channel_settings_of
from siyu.channels.phone import calls, generic, protocol
from siyu.config import Settings
from siyu.errors import SiyuError
from siyu.kit.web import get_session

router = APIRouter(prefix="/channels/phone", tags=["channels"])


class PhoneNotConfigured(SiyuError):
    status_code = 503
    code = "phone_not_configured"


async def _body(request: Request) -> bytes:
    return await request.body()


def _verified(request: Request, body: bytes) -> None:
    cs = channel_settings_of(request.app.state)
    secret = cs.phone_secret.get_secret_value()
    if not secret:
        raise PhoneNotConfigured("phone webhook is not configured: set SIYU_PHONE_SECRET")
    protocol.verify(secret, dict(request.headers), body,
                    max_skew_seconds=cs.phone_max_skew_seconds)


@router.post("/webhook", summary="Call centre webhook: one call event in, next actions out")
def webhook(request: Request, body: bytes = Depends(_body),
            session: Session = Depends(get_session, scope="function")) -> dict[str, Any]:
    """Verify the signature (before anything is parsed), apply the event, answer the
    actions; a refused event stores nothing."""
    _verified(request, body)
    settings: Settings = request.app.state.settings
    return calls.handle(session, protocol.parse_event(body), settings=settings)


@router.post("/generic/webhook", summary="A generic call centre's callbacks, mapped")
def generic_webhook(request: Request, body: bytes = Depends(_body),
                    session: Session = Depends(get_session, scope="function")
                    ) -> dict[str, Any]:
    """The same call through :mod:`siyu.channels.phone.generic`'s callback format."""
    _verified(request, body)
    settings: Settings = request.app.state.settings
    event = protocol.parse_event(generic.to_event(body))
    return generic.to_commands(calls.handle(session, event, settings=settings))
