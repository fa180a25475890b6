"""The console page 内容 (/content): content items with recipients, clicks, click-through
and conversion, a click-through chart, and a form to add an item."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.channels.config import channel_settings_of
from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.content import service
from siyu.errors import SiyuError
from siyu.kit import charts
from siyu.kit.web import get_session

_HERE = Path(__file__).resolve().parent
READ_PERMISSION = "analytics.read"
WRITE_PERMISSION = "segments.write"

register_nav("内容", "/content", READ_PERMISSION, order=37)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _page(request: Request, user: StaffUser, session: Session, *, error: str | None = None,
          form: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    items = service.item_stats(session, base_url=channel_settings_of(request.app.state)
                               .public_url)
    sent = [i for i in items if i.recipients]
    chart = charts.bar_chart([(i.name, round((i.click_through or 0) * 100, 1)) for i in sent],
                             title="各内容点击率（%）") if sent else None
    return pages.render(request, user, _HERE / "templates_console", "content/list.html", {
        "items": items, "kinds": service.KINDS, "chart": chart, "error": error,
        "form": form or {}, "can_edit": user.can(WRITE_PERMISSION)}, status_code=status_code)


@router.get("/content")
def content_list(request: Request, user: StaffUser = Depends(permitted(READ_PERMISSION)),
                 session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    return _page(request, user, session)


@router.post("/content")
def content_create(
    request: Request,
    name: str = Form("", max_length=200), kind: str = Form("", max_length=20),
    url: str = Form("", max_length=1000), sku: str = Form("", max_length=100),
    user: StaffUser = Depends(permitted(WRITE_PERMISSION)),
    _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    try:
        item = service.create_item(session, name, kind, url, sku=sku.strip() or None)
    except SiyuError as exc:
        session.rollback()
        return _page(request, user, session, error=_zh(exc),
                     form={"name": name, "kind": kind, "url": url, "sku": sku},
                     status_code=exc.status_code)
    request.session["flash"] = {"kind": "ok", "text": f"已添加内容「{item.name}」"}
    return RedirectResponse("/content", status_code=303)


_FIELDS_ZH = {"name": "名称", "kind": "类型", "url": "链接", "sku": "商品编码"}
_REASONS_ZH = {"required": "必填", "already used by another content item": "已被其他内容使用",
               "must be an http(s) address or a mini-program path starting with /":
               "须为 http(s) 网址或以 / 开头的小程序页面路径",
               "at most 100 characters": "最多 100 个字",
               "at most 500 characters": "最多 500 个字符",
               "a text of at most 64 characters": "最多 64 个字符"}


def _zh(exc: SiyuError) -> str:
    """The service's field errors in Chinese (an unknown kind: choose one of the three)."""
    parts = []
    for d in exc.details if isinstance(exc.details, list) else []:
        field, reason = d.get("field"), str(d.get("reason"))
        text = _REASONS_ZH.get(reason) or ("请选择文章、商品卡片或小程序页面" if field == "kind"
                                           else reason)
        parts.append(f"{_FIELDS_ZH.get(field, field)}：{text}")
    return "；".join(parts) or exc.message
