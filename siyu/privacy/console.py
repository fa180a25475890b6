"""Console page of the audit log (审计日志), for administrators."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, permitted
from siyu.kit.web import get_session
from siyu.privacy import service

_HERE = Path(__file__).resolve().parent
SHOWN = 200

register_nav("审计日志", "/audit", service.AUDIT_PERMISSION, order=90)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/audit")
def audit_page(
    request: Request,
    since: str = Query("", max_length=40),
    actor: str = Query("", max_length=100),
    action: str = Query("", max_length=60),
    user: StaffUser = Depends(permitted(service.AUDIT_PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    filters = {"since": since.strip(), "actor": actor.strip(), "action": action.strip()}
    moment = service.parse_since(filters["since"]) if filters["since"] else None
    entries = service.list_audit(session, since=moment, actor=filters["actor"] or None,
                                 action=filters["action"] or None, limit=SHOWN)
    return pages.render(request, user, _HERE / "templates", "privacy/audit.html", {
        "entries": [service.entry_dict(e) for e in entries], "filters": filters,
        "shown": SHOWN, "total": service.count_audit(session)})
