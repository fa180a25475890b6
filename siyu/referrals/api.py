"""The public invite page ``/r/<code>``: what a shared invite link opens.

It needs no login. It names the sharer (all but the first character hidden), says what the
new customer and the sharer get, and leads to the web chat's phone sign-in carrying the
code; signing in there records ``invite_accepted``, which attributes the new customer
(:func:`siyu.referrals.service.accept_invite`). The brand's own mini program or app may open
the same code and report ``invite_code`` on any event instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from siyu.errors import NotFound
from siyu.kit.web import get_session
from siyu.referrals import service

router = APIRouter(tags=["referrals"])
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@router.get("/r/{code}", include_in_schema=False, response_class=HTMLResponse)
def invite(request: Request, code: str,
           session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    context: dict[str, Any]
    try:
        context = service.invite_page(session, code)
    except NotFound:
        return templates.TemplateResponse(request, "referrals/invite.html", {"missing": True},
                                          status_code=404, headers=_NO_STORE)
    return templates.TemplateResponse(request, "referrals/invite.html", context,
                                      headers=_NO_STORE)
