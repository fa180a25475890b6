"""Routes of :mod:`siyu.channels.optout`: the SMS provider's signed webhook and the
unsubscribe page a marketing e-mail links to (no login: the signed link is the key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from siyu.channels import optout
from siyu.channels.config import channel_settings_of
from siyu.errors import SiyuError
from siyu.kit import signing
from siyu.kit.openapi import NO_BEARER, error_responses
from siyu.kit.web import get_session

router = APIRouter(tags=["channels"])
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
_NO_STORE = {"Cache-Control": "no-store"}


class SmsWebhookNotConfigured(SiyuError):
    status_code = 503
    code = "sms_webhook_not_configured"


class SmsWebhookRefused(SiyuError):
    status_code = 403
    code = "sms_webhook_refused"


async def _body(request: Request) -> bytes:
    return await request.body()


@router.post("/channels/sms/webhook",
             summary="SMS provider webhook: customers' replies and delivery reports",
             responses=error_responses(
                 400, 401, 403, 413, 422, 503,
                 s401="signature headers missing",
                 s403="forged signature or stale timestamp",
                 s413="body larger than 64 KiB",
                 s422="invalid event (field and reason)",
                 s503="SIYU_SMS_WEBHOOK_SECRET not set"),
             openapi_extra=NO_BEARER)
def sms_webhook(request: Request, body: bytes = Depends(_body),
                session: Session = Depends(get_session, scope="function")) -> dict[str, Any]:
    """Verify the signature (before anything is parsed), then store the event and honour
    an opt-out (a reply 退订/TD, a ``blocked`` status) at once. A replayed event id
    changes nothing (``duplicate: true``)."""
    cs = channel_settings_of(request.app.state)
    secret = cs.sms_webhook_secret.get_secret_value()
    if not secret:
        raise SmsWebhookNotConfigured(
            "SMS webhook is not configured: set SIYU_SMS_WEBHOOK_SECRET")
    try:
        signing.verify(secret, request.headers, body,
                       max_skew_seconds=cs.sms_webhook_max_skew_seconds)
    except signing.SignatureProblem as exc:
        status = 401 if exc.reason == "missing_signature" else 403
        raise SmsWebhookRefused(f"SMS webhook refused: {exc.reason}",
                                details={"reason": exc.reason}, status_code=status) from None
    event = optout.parse_sms_event(body)
    answer = optout.handle_sms_event(session, event, settings=request.app.state.settings)
    session.commit()
    return answer


def _page(request: Request, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, "channels/unsubscribe.html", context,
                                      status_code=status_code, headers=_NO_STORE)


@router.get("/unsubscribe/{token}", include_in_schema=False, response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """Ask before withdrawing: link scanners that open every URL unsubscribe nobody."""
    try:
        _cid, channel = optout.read_unsubscribe(request.app.state.settings, token)
    except optout.LinkRefused as exc:
        return _page(request, {"message": exc.message}, exc.status_code)
    return _page(request, {"token": token, "channel": optout.CHANNEL_NAMES[channel]})


@router.post("/unsubscribe/{token}", include_in_schema=False, response_class=HTMLResponse)
def unsubscribe(request: Request, token: str,
                session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    """The page's button, or a mail client's RFC 8058 one-click POST: withdraw now."""
    try:
        _cid, channel, _changed = optout.unsubscribe(session, request.app.state.settings,
                                                     token)
    except optout.LinkRefused as exc:
        return _page(request, {"message": exc.message}, exc.status_code)
    session.commit()
    return _page(request, {"done": True, "channel": optout.CHANNEL_NAMES[channel]})
