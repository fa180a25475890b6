"""Routes of tracked content: the public short links (``/c/<token>``: a recipient's link;
``/c/i/<code>``: the item's anonymous link), which record the click and redirect, and the
REST routes to list items with their figures and create one."""

from __future__ import annotations

from collections.abc import Callable

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


def _follow(target: Callable[[], str]) -> Response:
    """Record the click ``target`` makes and redirect to the item; a link that names
    nothing answers a page that says so."""
    try:
        return RedirectResponse(target(), status_code=302, headers=_NO_STORE)
    except NotFound:
        return HTMLResponse(_INVALID, status_code=404, headers=_NO_STORE)


@links.get("/c/{token}")
def recipient_link(token: str, session: Session = Depends(get_session, scope="function")
                   ) -> Response:
    return _follow(lambda: service.click(session, token))


@links.get("/c/i/{code}")
def anonymous_link(code: str, session: Session = Depends(get_session, scope="function")
                   ) -> Response:
    return _follow(lambda: service.anonymous_click(session, code))


class ContentIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: str = Field(description="article, product or miniprogram")
    url: str = Field(min_length=1, max_length=500)
    sku: str | None = Field(default=None, max_length=64)


def _base(request: Request) -> str:
    return channel_settings_of(request.app.state).public_url


@router.get("/content", response_model=list[service.ItemStats])
def list_content(request: Request, session: Session = Depends(get_session, scope="function"),
                 _: Principal = Depends(require("analytics.read"))) -> list[service.ItemStats]:
    """Content items with recipients, clicks, click-through and conversion."""
    return service.item_stats(session, base_url=_base(request))


@router.post("/content", response_model=service.ItemStats, status_code=201)
def create_content(body: ContentIn, request: Request,
                   session: Session = Depends(get_session, scope="function"),
                   _: Principal = Depends(require("segments.write"))) -> service.ItemStats:
    """Create a content item (templates link to it by name: ``content("名称")``)."""
    item = service.create_item(session, body.name, body.kind, body.url, sku=body.sku)
    session.commit()
    [stats] = [s for s in service.item_stats(session, base_url=_base(request))
               if s.id == item.id]
    return stats
