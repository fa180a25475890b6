"""The public invite page ``/r/<code>``: what a shared invite link opens; and the REST
routes (``/api/v1``): the referral report, a customer's personal invite code and link, and
the channel codes (渠道活码: list with their figures, create).

Reading the report and the channel codes needs ``analytics.read``; a customer's invite code
``customers.read`` (it is created on first ask, as the CLI does); creating a channel code
``segments.write`` (administrators and operators, who write segments and playbooks;
full-access API keys). Bad input answers 422 naming the field.

It needs no login. It names the sharer (all but the first character hidden), says what the
new customer and the sharer get, and leads to the web chat's phone sign-in carrying the
code; signing in there records ``invite_accepted``, which attributes the new customer
(:func:`siyu.referrals.service.accept_invite`). The brand's own mini program or app may open
the same code and report ``invite_code`` on any event instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require
from siyu.errors import NotFound
from siyu.kit.openapi import API_ERRORS, error_responses
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


CustomerId = PathParam(ge=1, le=2**63 - 1, description="siyu customer id")


class InviteCodeOut(BaseModel):
    customer_id: int = Field(description="the customer (the kept one after a merge)")
    code: str
    link: str = Field(description="the invite link to share: <public URL>/r/<code>")


class ChannelCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="e.g. 静安嘉里中心店 门店活码")
    channel: Literal["store", "campaign", "advisor"] = Field(
        description="store (门店), campaign (活动) or advisor (顾问)")
    advisor_user_id: int | None = Field(
        default=None, ge=1, le=2**63 - 1,
        description="the staff user who receives the contacts (their username is their "
                    "WeCom userid); required for advisor codes and when WeCom is configured")
    state: str | None = Field(
        default=None, min_length=1, max_length=30, pattern=r"^[A-Za-z0-9_\-]+$",
        description="the WeCom 联系我 state (default <channel>_<code>)")


class ChannelCodeOut(BaseModel):
    id: int
    code: str
    name: str | None
    channel: str | None = Field(description="store, campaign or advisor")
    channel_label: str
    state: str | None = Field(description="the WeCom 联系我 state its contacts come back with")
    advisor_user_id: int | None
    advisor_name: str | None
    wecom_config_id: str | None = Field(description="the WeCom 联系我 configuration, when "
                                                    "siyu created one")
    wecom_qr_code: str | None = Field(description="WeCom's QR code image URL")
    created_at: dt.datetime
    attributed: int = Field(description="contacts attributed to the code")
    qualified: int
    pending: int
    expired: int
    refused: int
    conversion: float | None = Field(description="qualified / attributed")


class ChannelCodesOut(BaseModel):
    items: list[ChannelCodeOut]


def _live_customer(session: Session, customer_id: int) -> int:
    from siyu.customers import service as customers

    return customers.live_customer_id(session, customer_id)


def public_base(request: Request) -> str:
    """Where customers reach siyu (``SIYU_PUBLIC_URL``), else the address of this request."""
    from siyu.channels.config import channel_settings_of

    return channel_settings_of(request.app.state).public_url or str(request.base_url)


@report_router.get("/customers/{customer_id}/referral-code", response_model=InviteCodeOut)
def customer_invite_code(request: Request, customer_id: int = CustomerId,
                         session: Session = Depends(get_session, scope="function"),
                         _: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    """The customer's personal invite code and link, created on first ask (the same code
    on every later ask)."""
    cid = _live_customer(session, customer_id)
    row = service.personal_code(session, cid)
    session.commit()
    return {"customer_id": cid, "code": row.code,
            "link": service.invite_link(row, public_base(request))}


@report_router.get("/referrals/channel-codes", response_model=ChannelCodesOut)
def list_channel_codes(session: Session = Depends(get_session, scope="function"),
                       _: Principal = Depends(require("analytics.read"))) -> dict[str, Any]:
    """Every channel code (the newest first) with its attributed contacts: attributed,
    qualified, pending, expired, refused and the conversion."""
    return {"items": [asdict(c) for c in service.channel_codes(session)]}


@report_router.post("/referrals/channel-codes", response_model=ChannelCodeOut,
                    status_code=201, responses=error_responses(502))
def create_channel_code(body: ChannelCodeIn, request: Request,
                        session: Session = Depends(get_session, scope="function"),
                        _: Principal = Depends(require("segments.write"))) -> dict[str, Any]:
    """Create a channel code (渠道活码). When WeCom is configured, siyu also creates its
    联系我 QR code for the advisor (``externalcontact/add_contact_way``, whose ``state``
    attributes each new contact to the code); WeCom's refusal answers 502 and nothing is
    kept."""
    row = service.create_channel_code(session, body.name, state=body.state,
                                      channel=body.channel,
                                      advisor_id=body.advisor_user_id,
                                      settings=request.app.state.settings)
    session.commit()
    [out] = [c for c in service.channel_codes(session) if c.id == row.id]
    return asdict(out)
