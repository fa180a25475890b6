"""The console page 邀请与渠道码 (/referrals): the top referrers (影响人群: who brings the
most friends who go on to buy), the channel codes (渠道活码) with their attributed contacts
and conversion, and a chart of it, the personal invite codes' conversion; and, for roles
that write segments and playbooks (``segments.write``: administrators and operators), a
form to create a channel code — with its WeCom 联系我 QR code when WeCom is configured."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.errors import InvalidInput, SiyuError
from siyu.kit import charts
from siyu.kit.web import get_session
from siyu.referrals import service, wecom

_HERE = Path(__file__).resolve().parent
PATH = "/referrals"
READ = "analytics.read"
WRITE = "segments.write"
TOP = 20
CODE_ROWS = 50

register_nav("邀请与渠道码", PATH, READ, order=39)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _advisors(session: Session) -> list[tuple[int, str]]:
    from siyu.auth.models import User

    return [(int(i), f"{name}（{username}）") for i, name, username in session.execute(
        select(User.id, User.display_name, User.username).where(User.is_active.is_(True))
        .order_by(User.display_name, User.id))]


@router.get(PATH)
def referral_report(request: Request, user: StaffUser = Depends(permitted(READ)),
                    session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    codes = service.report(session)
    channel = service.channel_codes(session)
    personal = [c for c in codes if c.kind == "personal"]
    converting = [c for c in channel if c.attributed]
    chart = charts.bar_chart([(c.name or c.code, round((c.conversion or 0) * 100, 1))
                              for c in converting], title="渠道码转化率（%）",
                             label_width=170) if converting else None
    totals = {"attributed": sum(c.attributed for c in codes),
              "qualified": sum(c.qualified for c in codes),
              "refused": sum(c.refused for c in codes),
              "codes": len(codes), "sharers": len(personal)}
    can_write = user.can(WRITE)
    return pages.render(request, user, _HERE / "templates", "referrals/report.html", {
        "referrers": service.top_referrers(session, limit=TOP), "channel": channel,
        "personal": personal[:CODE_ROWS], "more_personal": max(0, len(personal) - CODE_ROWS),
        "chart": chart, "totals": totals, "rules": service.Rules.from_settings(),
        "can_write": can_write, "kinds": service.CHANNEL_KINDS,
        "advisors": _advisors(session) if can_write else [],
        "with_wecom": wecom.configured(request.app.state.settings)})


def _done(request: Request, text: str, kind: str = "ok") -> Response:
    request.session["flash"] = {"kind": kind, "text": text}
    return RedirectResponse(f"{PATH}#channel", status_code=303)


@router.post(f"{PATH}/channel-codes")
def create_channel_code(request: Request, name: str = Form("", max_length=200),
                        channel: str = Form("", max_length=20),
                        advisor_user_id: str = Form("", max_length=20),
                        state: str = Form("", max_length=60),
                        user: StaffUser = Depends(permitted(WRITE)),
                        _: None = Depends(check_csrf),
                        session: Session = Depends(get_session, scope="function")) -> Response:
    """Create a channel code from the page's form; a problem comes back as a Chinese message
    above the form, nothing written."""
    try:
        advisor = advisor_user_id.strip()
        if advisor and not advisor.isdigit():
            raise InvalidInput("顾问：请从列表中选择",
                               details=[{"field": "advisor_user_id", "reason": "choice"}])
        row = service.create_channel_code(
            session, name, state=state.strip() or None, channel=channel.strip(),
            advisor_id=int(advisor) if advisor else None,
            settings=request.app.state.settings)
        session.commit()
    except SiyuError as exc:
        session.rollback()
        message = exc.message if isinstance(exc, InvalidInput) else (
            f"企业微信没有创建「联系我」二维码：{exc.message}")
        return _done(request, f"未创建渠道码：{message}", "error")
    qr = "，已生成企业微信「联系我」二维码" if row.wecom_config_id else ""
    return _done(request, f"已创建渠道码「{row.name}」（{row.code}，企业微信渠道参数 "
                          f"{row.state}）{qr}")
