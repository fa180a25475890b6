"""The public invite page ``/r/<code>``: what a shared invite link opens; and the
referral report's REST route (``GET /api/v1/referrals/report``).

It needs no login. It names the sharer (all but the first character hidden), says what the
new customer and the sharer get, and leads to the web chat's phone sign-in carrying the
code; signing in there records ``invite_accepted``, which attributes the new customer
(:func:`siyu.referrals.service.accept_invite`). The brand's own mini program or app may open
the same code and report ``invite_code`` on any event instead.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require
from siyu.errors import NotFound
from siyu.kit.openapi import API_ERRORS
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


report_router = APIRouter(prefix="/api/v1", tags=["referrals"], responses=API_ERRORS)


class CodeOut(BaseModel):
    code: str
    kind: str = Field(description="personal (a customer's invite code) or channel (渠道活码)")
    name: str | None = Field(description="the channel code's name")
    referrer_id: int | None = Field(description="the sharer of a personal code")
    referrer_name: str | None
    channel: str | None
    state: str | None = Field(description="a channel code's WeCom 联系我 state")
    attributed: int
    qualified: int
    refused: int
    pending: int
    expired: int
    conversion: float | None = Field(description="qualified / attributed")


class ReferrerOut(BaseModel):
    customer_id: int
    name: str | None
    attributed: int = Field(description="friends attributed to their codes")
    qualified: int
    refused: int
    pending: int
    conversion: float
    points: int = Field(description="points their referrals earned them")
    friends_spent: float = Field(description="what the qualified friends spent (purchases)")


class ReferralReportOut(BaseModel):
    top_referrers: list[ReferrerOut]
    codes: list[CodeOut]


@report_router.get("/referrals/report", response_model=ReferralReportOut)
def referral_report(limit: int = Query(20, ge=1, le=200, description="top referrers"),
                    session: Session = Depends(get_session, scope="function"),
                    _: Principal = Depends(require("analytics.read"))) -> dict[str, Any]:
    """Top referrers (影响人群: the most qualified friends first) and conversion by code
    (personal and channel codes, the most qualified first)."""
    return {"top_referrers": [asdict(r) for r in service.top_referrers(session, limit=limit)],
            "codes": [asdict(c) for c in service.report(session)]}
