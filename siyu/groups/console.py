"""Console page 客户群 (/groups): every WeCom customer group with its members, the customers
linked, joins and leaves over the last 7 and 30 days and its group mass sends; a group's
page with a chart of its members over the last 30 days and its member list.

Everyone with ``customers.read`` opens the pages; phone numbers are masked for roles
without ``pii.read``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, permitted
from siyu.errors import NotFound
from siyu.groups import service
from siyu.groups.models import CustomerGroup
from siyu.kit import charts
from siyu.kit.web import get_session

_HERE = Path(__file__).resolve().parent
READ = "customers.read"
PATH = "/groups"
HISTORY_DAYS = 30

register_nav("客户群", PATH, READ, order=36)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
STATUS_ZH = {"active": "正常", "dismissed": "已解散"}


@router.get(PATH)
def groups_page(request: Request, user: StaffUser = Depends(permitted(READ)),
                session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    rows = service.activity(session, days=7, windows=(7, 30))
    sends = service.mass_send_counts(session)
    for r in rows:
        r["status_zh"] = STATUS_ZH.get(r["status"], r["status"])
        r["sends"] = sends.get(r["id"], {"created": 0, "sent": 0})
    active = [r for r in rows if r["status"] == "active"]
    chart = charts.stacked_bar_chart(
        [r["name"] or r["chat_id"] for r in active],
        [charts.Series("已关联客户", [r["members"] for r in active]),
         charts.Series("未关联客户", [r["external"] - r["members"] for r in active])],
        title="各群客户数") if active else None
    totals = {"groups": len(active), "customers": sum(r["external"] for r in active),
              "joined_7d": sum(r["joined_7d"] for r in rows),
              "left_7d": sum(r["left_7d"] for r in rows),
              "joined_30d": sum(r["joined_30d"] for r in rows),
              "left_30d": sum(r["left_30d"] for r in rows)}
    return pages.render(request, user, _HERE / "templates", "groups/list.html",
                        {"groups": rows, "chart": chart, "totals": totals})


@router.get(f"{PATH}/{{group_id}}")
def group_page(request: Request, group_id: int, user: StaffUser = Depends(permitted(READ)),
               session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    from siyu.privacy import service as privacy

    group = session.get(CustomerGroup, group_id) if 0 < group_id < 2**63 else None
    if group is None:
        raise NotFound("没有这个客户群")
    [figures] = [r for r in service.activity(session, days=7, windows=(7, 30))
                 if r["id"] == group.id]
    figures["status_zh"] = STATUS_ZH.get(figures["status"], figures["status"])
    tz = str(request.app.state.settings.timezone)
    history = service.member_history(session, group, days=HISTORY_DAYS, timezone=tz)
    chart = charts.line_chart([f"{d.month}-{d.day}" for d, _ in history],
                              [charts.Series("群内客户", [n for _, n in history])],
                              title=f"近 {HISTORY_DAYS} 天群内客户数", label_every=5)
    everyone = service.members(session, group, show_pii=privacy.sees_pii(user))
    context: dict[str, Any] = {
        "group": figures, "chart": chart,
        "current": [m for m in everyone if m["left_at"] is None],
        "former": [m for m in everyone if m["left_at"] is not None],
        "sends": service.mass_sends(session, group), "history_days": HISTORY_DAYS}
    return pages.render(request, user, _HERE / "templates", "groups/detail.html", context)
