"""``/channels/phone/webhook``: the call centre's webhook (signed, its own protocol)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from siyu.channels.config import channel_settings_of
from siyu.channels.phone import calls, generic, protocol, survey
from siyu.config import Settings
from siyu.errors import SiyuError
from siyu.kit.openapi import NO_BEARER, error_responses
from siyu.kit.web import get_session

# The call centre signs its calls (siyu.channels.phone.protocol); no bearer key.
router = APIRouter(prefix="/channels/phone", tags=["channels"],
                   responses=error_responses(400, 401, 403, 404, 409, 413, 422, 503))
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
_NO_STORE = {"Cache-Control": "no-store"}


class PhoneNotConfigured(SiyuError):
    status_code = 503
    code = "phone_not_configured"


async def _body(request: Request) -> bytes:
    return await request.body()


def _verified(state: Any, headers: dict[str, str], body: bytes) -> None:
    cs = channel_settings_of(state)
    secret = cs.phone_secret.get_secret_value()
    if not secret:
        raise PhoneNotConfigured("phone webhook is not configured: set SIYU_PHONE_SECRET")
    protocol.verify(secret, headers, body, max_skew_seconds=cs.phone_max_skew_seconds)


def receive(state: Any, headers: dict[str, str], body: bytes, session: Session
            ) -> dict[str, Any]:
    """One signed request of the call centre: verify the signature (before anything is
    parsed), apply the event, answer the actions. The webhook and the console's phone
    simulator both come through here."""
    _verified(state, headers, body)
    settings: Settings = state.settings
    return calls.handle(session, protocol.parse_event(body), settings=settings,
                        channel=channel_settings_of(state))


@router.post("/webhook", summary="Call centre webhook: one call event in, next actions out",
             openapi_extra=NO_BEARER)
def webhook(request: Request, body: bytes = Depends(_body),
            session: Session = Depends(get_session, scope="function")) -> dict[str, Any]:
    """Verify the signature (before anything is parsed), apply the event, answer the
    actions; a refused event stores nothing."""
    return receive(request.app.state, dict(request.headers), body, session)


@router.post("/generic/webhook", summary="A generic call centre's callbacks, mapped",
             openapi_extra=NO_BEARER)
def generic_webhook(request: Request, body: bytes = Depends(_body),
                    session: Session = Depends(get_session, scope="function")
                    ) -> dict[str, Any]:
    """The same call through :mod:`siyu.channels.phone.generic`'s callback format."""
    _verified(request.app.state, dict(request.headers), body)
    settings: Settings = request.app.state.settings
    event = protocol.parse_event(generic.to_event(body))
    return generic.to_commands(calls.handle(session, event, settings=settings,
                                            channel=channel_settings_of(request.app.state)))


# -- the after-call survey a caller opens from the SMS (no login: the signed link is the key)


def _csat_page(request: Request, context: dict[str, Any], status_code: int = 200
               ) -> HTMLResponse:
    return templates.TemplateResponse(request, "phone/csat.html", context,
                                      status_code=status_code, headers=_NO_STORE)


@router.get("/csat/{token}", include_in_schema=False, response_class=HTMLResponse)
def csat_page(request: Request, token: str,
              session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    try:
        call = survey.read(session, request.app.state.settings, token)
    except survey.CsatLinkRefused as exc:
        return _csat_page(request, {"message": exc.message}, exc.status_code)
    if call.csat is not None:
        return _csat_page(request, {"message": "您已经评价过这次通话，感谢您的反馈",
                                    "score": call.csat})
    return _csat_page(request, {"token": token, "scores": range(5, 0, -1)})


@router.post("/csat/{token}", include_in_schema=False, response_class=HTMLResponse)
def csat_answer(request: Request, token: str, score: int = Form(ge=1, le=5),
                session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    """Store the score (once) and thank the caller."""
    try:
        call = survey.answer(session, request.app.state.settings, token, score)
    except survey.CsatLinkRefused as exc:
        return _csat_page(request, {"message": exc.message}, exc.status_code)
    return _csat_page(request, {"message": "感谢您的评价！", "score": call.csat})
