"""Console page of the appointments domain (预约日历): an advisor's week — their slots, free
or booked, with the customer (phone masked by role) and the status — and the forms to
publish slots, book a free one for a customer, confirm, cancel and record attended /
no-show. Advisors (role agent) see their own week; operators and admins pick an advisor."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.appointments import service
from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.errors import InvalidInput, SiyuError
from siyu.kit.web import get_session

_HERE = Path(__file__).resolve().parent
PATH = "/appointments"
PERMISSION = "service.agent"
# Roles that manage every advisor's calendar (an agent manages their own).
MANAGERS = ("admin", "operator")

register_nav("预约日历", PATH, PERMISSION, order=43)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _tz(request: Request) -> str:
    return str(request.app.state.settings.timezone)


def _advisors(session: Session) -> list[dict[str, Any]]:
    """Staff who can be booked: active users with the service desk's permission."""
    from siyu.auth.models import User
    from siyu.auth.service import can

    return [{"id": u.id, "name": u.display_name, "username": u.username}
            for u in session.scalars(select(User).where(User.is_active.is_(True))
                                     .order_by(User.id)) if can(u.role, PERMISSION)]


def _advisor_for(user: StaffUser, requested: int | None) -> int:
    """Whose calendar: an agent's own; a manager's choice (by default their own)."""
    if user.role in MANAGERS and requested:
        return requested
    return user.id


def _monday(week: str | None, timezone: str) -> dt.date:
    if week:
        try:
            return service.week_start(dt.date.fromisoformat(week))
        except ValueError as exc:
            raise InvalidInput("周的日期格式应为 YYYY-MM-DD", details=[
                {"field": "week", "reason": "YYYY-MM-DD"}]) from exc
    return service.week_start(dt.datetime.now(ZoneInfo(timezone)).date())


@router.get(PATH)
def calendar_page(request: Request, week: str | None = Query(None, max_length=10),
                  advisor: int | None = Query(None, ge=1, le=2**63 - 1),
                  user: StaffUser = Depends(permitted(PERMISSION)),
                  session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    from siyu.privacy import service as privacy

    tz = _tz(request)
    monday = _monday(week, tz)
    advisor_id = _advisor_for(user, advisor)
    advisors = _advisors(session)
    days = service.week(session, advisor_id, monday, show_pii=privacy.sees_pii(user),
                        timezone=tz)
    now = dt.datetime.now(dt.UTC)
    for item in (i for d in days for i in d["items"]):
        starts = dt.datetime.fromisoformat((item["appointment"] or item["slot"])["starts_at"])
        item["past"] = starts <= now
    free = [i["slot"] for d in days for i in d["items"]
            if i["slot"] is not None and i["appointment"] is None and not i["past"]]
    booked = sum(1 for d in days for i in d["items"] if i["appointment"] is not None
                 and i["appointment"]["status"] != "cancelled")
    name = next((a["name"] for a in advisors if a["id"] == advisor_id), user.display_name)
    return pages.render(request, user, _HERE / "templates", "appointments/calendar.html", {
        "days": days, "monday": monday, "sunday": monday + dt.timedelta(days=6),
        "prev_week": (monday - dt.timedelta(days=7)).isoformat(),
        "next_week": (monday + dt.timedelta(days=7)).isoformat(),
        "this_week": monday.isoformat(), "today": dt.datetime.now(ZoneInfo(tz)).date(),
        "advisor_id": advisor_id, "advisor_name": name, "advisors": advisors,
        "manager": user.role in MANAGERS, "types": service.service_types(session),
        "free": free, "booked": booked,
    })


def _back(request: Request, text: str, kind: str, advisor_id: int, week: str) -> Response:
    request.session["flash"] = {"kind": kind, "text": text}
    query = f"?advisor={advisor_id}" + (f"&week={week}" if week else "")
    return RedirectResponse(f"{PATH}{query}", status_code=303)


def _apply(request: Request, session: Session, action: Any, advisor_id: int, week: str
           ) -> Response:
    try:
        text = action()
        session.commit()
    except SiyuError as exc:
        session.rollback()
        return _back(request, f"未完成：{exc.message}", "error", advisor_id, week)
    return _back(request, text, "ok", advisor_id, week)


@router.post(f"{PATH}/service-types")
def add_service_type(request: Request, name: str = Form("", max_length=60),
                     minutes: int = Form(15, ge=5, le=480), advisor: int = Form(0),
                     week: str = Form("", max_length=10),
                     user: StaffUser = Depends(permitted(PERMISSION)),
                     _: None = Depends(check_csrf),
                     session: Session = Depends(get_session, scope="function")) -> Response:
    advisor_id = _advisor_for(user, advisor)

    def run() -> str:
        row = service.save_service_type(session, name, minutes)
        return f"已保存服务「{row.name}」（{row.minutes} 分钟）"

    return _apply(request, session, run, advisor_id, week)


@router.post(f"{PATH}/slots")
def publish(request: Request, service_type_id: int = Form(0, ge=0, le=2**63 - 1),
            day: str = Form("", max_length=10), start: str = Form("", max_length=5),
            count: int = Form(1, ge=1, le=48), every: int = Form(30, ge=5, le=480),
            location: str = Form("", max_length=100), advisor: int = Form(0),
            week: str = Form("", max_length=10),
            user: StaffUser = Depends(permitted(PERMISSION)), _: None = Depends(check_csrf),
            session: Session = Depends(get_session, scope="function")) -> Response:
    """Publish ``count`` slots on ``day`` from ``start``, ``every`` minutes apart."""
    advisor_id = _advisor_for(user, advisor)

    def run() -> str:
        try:
            first = dt.datetime.combine(dt.date.fromisoformat(day),
                                        dt.time.fromisoformat(start), ZoneInfo(_tz(request)))
        except ValueError as exc:
            raise InvalidInput("请填写日期和开始时间") from exc
        ids = service.publish_slots(
            session, advisor_id, service_type_id,
            [first + dt.timedelta(minutes=every * n) for n in range(count)],
            location=location.strip() or None)
        skipped = count - len(ids)
        return f"已发布 {len(ids)} 个时段" + (f"，{skipped} 个时间已有时段" if skipped else "")

    shown = service.week_start(dt.date.fromisoformat(day)).isoformat() if _is_date(day) \
        else week
    return _apply(request, session, run, advisor_id, shown)


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


@router.post(f"{PATH}/book")
def book_for_customer(request: Request, slot_id: int = Form(0, ge=0, le=2**63 - 1),
                      customer: str = Form("", max_length=100),
                      note: str = Form("", max_length=500), advisor: int = Form(0),
                      week: str = Form("", max_length=10),
                      user: StaffUser = Depends(permitted(PERMISSION)),
                      _: None = Depends(check_csrf),
                      session: Session = Depends(get_session, scope="function")) -> Response:
    """An advisor books a free slot for a customer (named by siyu id or phone number):
    confirmed at once, since the advisor agreed the time with them."""
    advisor_id = _advisor_for(user, advisor)

    def run() -> str:
        from siyu.privacy.service import resolve_ref

        ref = customer.strip()
        if ref.isdigit() and len(ref) == 11:
            ref = f"phone:{ref}"
        cid = resolve_ref(session, request.app.state.settings, ref) if ref else None
        if cid is None:
            raise InvalidInput("没有找到这位客户（请填写客户编号或手机号）")
        appt = service.book(session, slot_id, cid, channel="console", booked_by=user.id,
                            note=note.strip() or None, confirm=True, timezone=_tz(request))
        view = service.describe(session, [appt], show_pii=False, timezone=_tz(request))[0]
        return f"已为{view['customer']}预约 {view['label']} 的「{view['service']}」"

    return _apply(request, session, run, advisor_id, week)


_DONE = {"confirmed": "已确认预约", "cancelled": "已取消预约", "attended": "已记录到店",
         "no_show": "已记录未到店"}


@router.post(PATH + "/{appointment_id}/status")
def change_status(request: Request, appointment_id: int,
                  status: str = Form("", max_length=20), advisor: int = Form(0),
                  week: str = Form("", max_length=10),
                  user: StaffUser = Depends(permitted(PERMISSION)),
                  _: None = Depends(check_csrf),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    advisor_id = _advisor_for(user, advisor)

    def run() -> str:
        appt = service.get(session, appointment_id)
        if user.role not in MANAGERS and appt.advisor_id != user.id:
            from siyu.auth.errors import RoleForbidden

            raise RoleForbidden("只能处理自己的预约")
        service.set_status(session, appointment_id, status, reason=f"控制台：{user.display_name}",
                           timezone=_tz(request))
        return _DONE.get(status, "已更新")

    return _apply(request, session, run, advisor_id, week)
