"""Console pages of the segments domain: the saved segments list (人群) with sizes over time,
and the segment builder with a live count.

The pages extend the console's ``base.html``; templates live in ``segments/templates`` and
are rendered through an overlay of the console's Jinja environment (same filters, globals).
The builder's live count calls ``POST /api/v1/segments/count`` from the page with the
``X-Siyu-Console`` header; saving is a CSRF-protected form post.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.errors import SiyuError
from siyu.kit.web import get_session
from siyu.segments import service
from siyu.segments.errors import InvalidRule
from siyu.segments.rules import FIELDS

_HERE = Path(__file__).resolve().parent
PERMISSION = "segments.write"
SPARK_WIDTH, SPARK_HEIGHT = 160, 36

READ_PERMISSION = "segments.read"

register_nav("人群", "/segments", READ_PERMISSION, order=30)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

# Snippets the builder's chips insert: (field, snippet); the label is the registry's.
SNIPPETS: tuple[tuple[str, str], ...] = (
    ("orders", "orders(last 30d) >= 2"),
    ("spend", "spend between 100 and 500"),
    ("avg_order_value", "avg_order_value > 200"),
    ("last_order_days", "last_order_days > 60"),
    ("event", 'event("coupon_used", last 30d) = 0'),
    ("tag", 'tag("健身人群")'),
    ("tier", 'tier in ("金卡", "黑金")'),
    ("city", 'city = "上海"'),
    ("age", "age >= 30"),
    ("has_identity", "has(wecom_external_userid)"),
    ("consent", 'consent("sms", "marketing")'),
    ("lifecycle", 'lifecycle = "衰退期"'),
    ("rfm_tier", 'rfm_tier = "VIP"'),
    ("audience", 'audience = "理想人群"'),
    ("clv", "clv > 200"),
    ("fan_score", "fan_score >= 60"),
    ("referrals", "referrals >= 1"),
    ("attr", 'attr("points") > 1000'),
    ("attr_days", 'attr_days("member_since") > 365'),
)


def _render(request: Request, user: StaffUser, name: str, context: dict[str, Any], *,
            status_code: int = 200) -> HTMLResponse:
    return pages.render(request, user, _HERE / "templates", name, context,
                        status_code=status_code)


def sparkline(sizes: list[int], width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT
              ) -> dict[str, Any]:
    """SVG polyline points for a size history (oldest first), scaled to the box; a single
    point is drawn as a flat line."""
    if not sizes:
        return {"points": "", "last": None, "width": width, "height": height}
    values = sizes if len(sizes) > 1 else sizes * 2
    low, high = min(values), max(values)
    span = high - low or 1
    step = (width - 4) / (len(values) - 1)
    points = []
    for i, v in enumerate(values):
        x = 2 + i * step
        y = height - 3 - (v - low) / span * (height - 6) if high != low else height / 2
        points.append(f"{x:.1f},{y:.1f}")
    last_x, last_y = points[-1].split(",")
    return {"points": " ".join(points), "last": {"x": last_x, "y": last_y},
            "width": width, "height": height}


@router.get("/segments")
def segment_list(
    request: Request,
    user: StaffUser = Depends(permitted(READ_PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    items = service.list_segments(session)
    for item in items:
        sizes = [h["size"] for h in item["history"]]
        item["spark"] = sparkline(sizes)
        item["low"], item["high"] = (min(sizes), max(sizes)) if sizes else (0, 0)
    return _render(request, user, "segments/list.html",
                   {"segments": items, "can_edit": user.can(PERMISSION)})


def _builder_context(name: str = "", rule: str = "", error: SiyuError | None = None
                     ) -> dict[str, Any]:
    chips = [{"label": FIELDS[field].label_zh, "snippet": snippet}
             for field, snippet in SNIPPETS]
    error_view = None
    if error is not None:
        position = error.position if isinstance(error, InvalidRule) else None
        error_view = {"message": getattr(error, "message_zh", None) or error.message,
                      "position": position}
    return {"name": name, "rule": rule, "chips": chips, "error": error_view}


@router.get("/segments/new")
def segment_builder(
    request: Request,
    user: StaffUser = Depends(permitted(PERMISSION)),
    name: str = Query("", max_length=100),
    rule: str = Query("", max_length=4000),
) -> HTMLResponse:
    """The builder, optionally prefilled (other pages link here with a rule, e.g. the VOC
    journey map's "customers behind the darkest moment")."""
    return _render(request, user, "segments/new.html", _builder_context(name, rule))


@router.post("/segments/new")
def save_segment(
    request: Request,
    name: str = Form("", max_length=100),
    rule: str = Form("", max_length=4000),
    user: StaffUser = Depends(permitted(PERMISSION)),
    _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    try:
        segment = service.create_segment(session, name, rule, created_by=user.username,
                                         timezone=request.app.state.settings.timezone)
    except SiyuError as exc:
        # Shown on the builder with what was typed, so nothing is lost; nothing was saved.
        session.rollback()
        return _render(request, user, "segments/new.html",
                       _builder_context(name, rule, exc), status_code=exc.status_code)
    request.session["flash"] = {"kind": "ok",
                                "text": f"已保存人群「{segment.name}」，当前 {segment.size} 人"}
    return RedirectResponse("/segments", status_code=303)
