"""The console page 邀请与渠道码 (/referrals): the top referrers (影响人群: who brings the
most friends who go on to buy), conversion by code (personal invite codes and channel
codes, 渠道活码), and a chart of the channel codes' conversion."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, permitted
from siyu.kit import charts
from siyu.kit.web import get_session
from siyu.referrals import service

_HERE = Path(__file__).resolve().parent
PATH = "/referrals"
READ = "analytics.read"
TOP = 20
CODE_ROWS = 50

register_nav("邀请与渠道码", PATH, READ, order=39)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get(PATH)
def referral_report(request: Request, user: StaffUser = Depends(permitted(READ)),
                    session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    codes = service.report(session)
    channel = [c for c in codes if c.kind == "channel"]
    personal = [c for c in codes if c.kind == "personal"]
    chart = charts.bar_chart([(c.name or c.code, round((c.conversion or 0) * 100, 1))
                              for c in channel], title="渠道码转化率（%）",
                             label_width=170) if channel else None
    totals = {"attributed": sum(c.attributed for c in codes),
              "qualified": sum(c.qualified for c in codes),
              "refused": sum(c.refused for c in codes),
              "codes": len(codes), "sharers": len(personal)}
    return pages.render(request, user, _HERE / "templates", "referrals/report.html", {
        "referrers": service.top_referrers(session, limit=TOP), "channel": channel,
        "personal": personal[:CODE_ROWS], "more_personal": max(0, len(personal) - CODE_ROWS),
        "chart": chart, "totals": totals})
