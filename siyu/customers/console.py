"""Console pages of the customers domain: the customer list, the 360 view with tags and
merge undo, and the merge-review queue (合并审核).

The pages extend the console's ``base.html``; templates live in ``customers/templates`` and
render through an overlay of the console's Jinja environment (same filters and globals).
Handlers check the role's permission, call one service function with the request's session
(committed by ``get_session`` after the handler) and hand plain data to a template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.panels import customer_panels
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.customers import identity, timeline
from siyu.customers import service as customers
from siyu.customers.errors import CustomerNotFound
from siyu.errors import InvalidInput
from siyu.kit import masking
from siyu.kit.paging import page_window
from siyu.kit.web import get_session
from siyu.privacy import service as privacy

_HERE = Path(__file__).resolve().parent
PER_PAGE = 20
TIMELINE_PER_PAGE = 15
CONFLICTS_PER_PAGE = 10
LIST_PATH = "/customers"

register_nav("客户", LIST_PATH, "customers.read", order=10)
register_nav("合并审核", "/merges/conflicts", "customers.write", order=20)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _render(request: Request, user: StaffUser, name: str, context: dict[str, Any]
            ) -> HTMLResponse:
    return pages.render(request, user, _HERE / "templates", name, context)


def _flash(request: Request, text: str, kind: str = "ok") -> None:
    request.session["flash"] = {"kind": kind, "text": text}


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _customer_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise CustomerNotFound(f"客户 {text} 不存在")
    return int(text)


def _mask_text(text: str) -> str:
    """Mask phone numbers and e-mail addresses inside free text such as merge reasons."""
    return masking.mask_text(text)


def _identity_text(kind: str, value: str, show_pii: bool) -> str:
    return privacy.Masker(show_pii).identity(kind, value)


def _pager(total: int, page: int, filters: dict[str, str]) -> dict[str, Any]:
    window = page_window(total, page, PER_PAGE)
    kept = {k: v for k, v in filters.items() if v}

    def url(number: int) -> str:
        return f"{LIST_PATH}?{urlencode({**kept, 'page': number})}"

    return {
        "page": window.page, "pages": window.pages, "total": total,
        "first": window.first, "last": window.last,
        "prev_url": url(min(page - 1, window.pages)) if page > 1 else None,
        "next_url": url(page + 1) if page < window.pages else None,
        "last_url": url(window.pages) if window.beyond_end else None,
    }


@router.get("/customers")
def customer_list(
    request: Request,
    q: str = Query("", max_length=100),
    tag: str = Query("", max_length=60),
    tier: str = Query("", max_length=30),
    city: str = Query("", max_length=50),
    page: int = Query(1, ge=1, le=100_000),
    user: StaffUser = Depends(permitted("customers.read")),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    filters = {"q": q.strip(), "tag": tag.strip(), "tier": tier.strip(), "city": city.strip()}
    result = customers.list_customers(
        session, q=filters["q"] or None, tag=filters["tag"] or None,
        tier=filters["tier"] or None, city=filters["city"] or None, page=page,
        per_page=PER_PAGE, show_pii=privacy.sees_pii(user),
        region=request.app.state.settings.default_phone_region,
    )
    return _render(request, user, "customers/list.html", {
        "items": result.items, "filters": filters, "options": customers.filter_options(session),
        "pager": _pager(result.total, page, filters),
    })


@router.get("/customers/{customer_id}")
def customer_detail(
    request: Request,
    customer_id: str,
    kind: str = Query("", max_length=20, alias="tl"),
    page: int = Query(1, ge=1, le=100_000),
    user: StaffUser = Depends(permitted("customers.read")),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    show_pii = privacy.sees_pii(user)
    view = customers.get_customer_360(session, _customer_id(customer_id), show_pii=show_pii)
    mask = (lambda text: text) if show_pii else _mask_text
    identities = [
        {**i, "display": customers.display_phone(i["value"])
         if show_pii and i["kind"] == "phone" else i["value"]}
        for i in view["identities"]
    ]
    merges = [{**m, "reason": mask(m["reason"]), "reason_label": mask(m["reason_label"])}
              for m in view["merges"]]
    category = kind if kind in timeline.CATEGORIES else None
    tl = timeline.timeline_page(session, view["id"], category=category, page=page,
                                per_page=TIMELINE_PER_PAGE)
    masker = privacy.Masker(show_pii)
    entries = [{**e, "summary": mask(e["summary"]),
                **({"data": masker.deep(e["data"])} if "data" in e else {})}
               for e in tl.entries]
    privacy.audit_pii_read(session, user, f"customer:{view['id']}",
                           ip=request.client.host if request.client else None)
    base = f"/customers/{view['id']}"

    def tl_url(cat: str | None, number: int = 1) -> str:
        query = {k: v for k, v in (("tl", cat), ("page", number if number > 1 else None)) if v}
        return f"{base}?{urlencode(query)}#timeline" if query else f"{base}#timeline"

    return _render(request, user, "customers/detail.html", {
        "c": view, "identities": identities, "merges": merges,
        "timeline_days": timeline.by_day(entries, request.app.state.settings.timezone),
        "timeline_tabs": [{"key": None, "label": "全部", "count": tl.counts["all"],
                           "url": tl_url(None), "active": category is None}] + [
            {"key": key, "label": label, "count": tl.counts[key], "url": tl_url(key),
             "active": category == key} for key, label in timeline.CATEGORIES.items()],
        "timeline_pager": {"page": tl.page, "pages": tl.pages, "total": tl.total,
                           "prev_url": tl_url(category, tl.page - 1) if tl.page > 1 else None,
                           "next_url": tl_url(category, tl.page + 1)
                           if tl.page < tl.pages else None},
        "can_edit_tags": user.can("customers.write"),
        "can_undo_merge": user.can("merges.undo"),
        "panels": customer_panels(session, view["id"], user.role),
    })


@router.post("/customers/{customer_id}/tags")
def add_tag(
    request: Request,
    customer_id: str,
    tag: str = Form("", max_length=60),
    user: StaffUser = Depends(permitted("customers.write")),
    _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> RedirectResponse:
    cid = _customer_id(customer_id)
    customers.add_tag(session, cid, tag, source=user.username)
    _flash(request, f"已添加标签「{tag.strip()}」")
    return _redirect(f"/customers/{cid}")


@router.post("/customers/{customer_id}/tags/remove")
def remove_tag(
    request: Request,
    customer_id: str,
    tag: str = Form("", max_length=60),
    user: StaffUser = Depends(permitted("customers.write")),
    _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> RedirectResponse:
    cid = _customer_id(customer_id)
    if customers.remove_tag(session, cid, tag):
        _flash(request, f"已移除标签「{tag}」")
    else:
        _flash(request, f"该客户没有标签「{tag}」", "error")
    return _redirect(f"/customers/{cid}")


@router.post("/merges/{merge_id}/undo")
def undo_merge(
    request: Request,
    merge_id: int,
    user: StaffUser = Depends(permitted("merges.undo")),
    _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> RedirectResponse:
    merge = identity.undo_merge(session, merge_id, actor=user.username)
    privacy.record_audit(session, actor=user, action="merge.undo", target=f"merge:{merge.id}",
                         detail={"kept_id": merge.kept_id, "merged_id": merge.merged_id},
                         ip=request.client.host if request.client else None)
    _flash(request, f"已撤销合并，客户 #{merge.merged_id} 已恢复为独立客户")
    return _redirect(f"/customers/{merge.kept_id}")


@router.get("/merges/conflicts")
def conflict_queue(
    request: Request,
    page: int = Query(1, ge=1, le=100_000),
    user: StaffUser = Depends(permitted("customers.write")),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    show_pii = privacy.sees_pii(user)
    total = customers.count_conflicts(session)
    pages_ = max(1, -(-total // CONFLICTS_PER_PAGE))
    page = min(page, pages_)
    rows = customers.list_conflicts(session, limit=CONFLICTS_PER_PAGE,
                                    offset=(page - 1) * CONFLICTS_PER_PAGE)
    cards = customers.customer_cards(
        session, [cid for c in rows for cid in (c["customer_a_id"], c["customer_b_id"])],
        show_pii=show_pii,
    )
    items = []
    for c in rows:
        shared_kind, _, shared_value = c["shared"].partition(":")
        items.append({
            **c,
            "a": cards.get(c["customer_a_id"]), "b": cards.get(c["customer_b_id"]),
            "shared_kind": shared_kind,
            "shared_value": _identity_text(shared_kind, shared_value, show_pii),
            "value_a": _identity_text(c["conflict_kind"], c["value_a"], show_pii),
            "value_b": _identity_text(c["conflict_kind"], c["value_b"], show_pii),
        })
    path = "/merges/conflicts"
    return _render(request, user, "merges/conflicts.html", {"conflicts": items, "pager": {
        "page": page, "pages": pages_, "total": total,
        "first": (page - 1) * CONFLICTS_PER_PAGE + 1 if total else 0,
        "last": min(page * CONFLICTS_PER_PAGE, total),
        "prev_url": f"{path}?page={page - 1}" if page > 1 else None,
        "next_url": f"{path}?page={page + 1}" if page < pages_ else None}})


@router.post("/merges/conflicts/{conflict_id}")
def resolve_conflict(
    request: Request,
    conflict_id: int,
    decision: str = Form(""),
    user: StaffUser = Depends(permitted("customers.write")),
    _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> RedirectResponse:
    if decision not in ("merge", "keep_apart"):
        raise InvalidInput("请选择“合并”或“保持独立”")
    identity.resolve_conflict(session, conflict_id, decision=decision, actor=user.username)
    privacy.record_audit(session, actor=user, action=f"merge.conflict.{decision}",
                         target=f"merge_conflict:{conflict_id}",
                         ip=request.client.host if request.client else None)
    _flash(request, "已合并这两位客户" if decision == "merge" else "已标记为两位不同的客户")
    return _redirect("/merges/conflicts")
