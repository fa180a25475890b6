"""Routes of tracked content: the public short links (``/c/<token>``: a recipient's link;
``/c/i/<code>``: the item's anonymous link), which record the click and redirect, and the
REST routes to list items with their figures and create one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require
from siyu.channels.config import channel_settings_of
from siyu.content import service
from siyu.errors import NotFound
from siyu.kit.openapi import API_ERRORS
from siyu.kit.web import get_session

links = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/api/v1", tags=["content"], responses=API_ERRORS)
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_INVALID = ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            '<title>链接无效</title></head><body><p id="result">这个链接不存在或已失效。</p>'
            '</body></html>')


def _go(url: str) -> Response:
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)


@links.get("/c/{token}")
def recipient_link(token: str, session: Session = Depends(get_session, scope="function")
                   ) -> Response:
    try:
        return _go(service.click(session, token))
    except NotFound:
        return HTMLResponse(_INVALID, status_code=404, headers=_NO_STORE)


@links.get("/c/i/{code}")
def anonymous_link(code: str, session: Session = Depends(get_session, scope="function")
                   ) -> Response:
    try:
        return _go(service.anonymous_click(session, code))
    except NotFound:
        return HTMLResponse(_INVALID, status_code=404, headers=_NO_STORE)


class ContentIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: str = Field(description="article, product or miniprogram")
    url: str = Field(min_length=1, max_length=500)
    sku: str | None = Field(default=None, max_length=64)


class ContentOut(BaseModel):
    id: int
    name: str
    kind: str
    url: str
    anonymous_link: str
    recipients: int
    clickers: int
    clicks: int
    anonymous_clicks: int
    converted: int
    click_through: float | None
    conversion: float | None


def _base(request: Request) -> str:
    return channel_settings_of(request.app.state).public_url


@router.get("/content", response_model=list[ContentOut])
def list_content(request: Request, session: Session = Depends(get_session, scope="function"),
                 _: Principal = Depends(require("analytics.read"))) -> list[dict[str, Any]]:
    """Content items with recipients, clicks, click-through and conversion."""
    return [s.to_dict() for s in service.item_stats(session, base_url=_base(request))]


@router.post("/content", response_model=ContentOut, status_code=201)
def create_content(body: ContentIn, request: Request,
                   session: Session = Depends(get_session, scope="function"),
                   _: Principal = Depends(require("segments.write"))) -> dict[str, Any]:
    """Create a content item (templates link to it by name: ``content("名称")``)."""
    item = service.create_item(session, body.name, body.kind, body.url, sku=body.sku)
    session.commit()
    [stats] = [s for s in service.item_stats(session, base_url=_base(request))
               if s.id == item.id]
    return stats.to_dict()
