"""Console pages of the service desk: the agent inbox (queue with SLA timers, my
conversations), a conversation with the customer 360 beside it, bot decisions, suggested
replies and the agent actions (take, reply, transfer, close), the agent's online/away
toggle, and the service metrics page.

Pages refresh themselves by polling: the inbox reloads every few seconds, the conversation
asks the JSON API for messages newer than the last shown and reloads when some arrive.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.customers.service import customer_cards, get_customer_360
from siyu.db import utcnow
from siyu.errors import SiyuError
from siyu.kit.charts import bar_chart
from siyu.kit.web import get_session
from siyu.privacy import service as privacy
from siyu.service import inbox, metrics, service

_HERE = Path(__file__).resolve().parent
PERMISSION = "service.agent"
CHANNELS_ZH = {"webchat": "网页聊天", "wecom": "企业微信", "wechat": "微信", "sms": "短信",
               "app": "App", "mini_program": "小程序", "phone": "电话"}

register_nav("客服工作台", "/service", PERMISSION, order=40)
register_nav("客服指标", "/service/metrics", PERMISSION, order=41)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _render(request: Request, user: StaffUser, name: str, context: dict[str, Any], *,
            status_code: int = 200) -> HTMLResponse:
    return pages.render(request, user, _HERE / "templates", name, context,
                        status_code=status_code)


def _with_sla(rows: list[dict[str, Any]], sla_seconds: int) -> list[dict[str, Any]]:
    now = utcnow()
    for row in rows:
        since = row.get("waiting_since")
        waited = None
        if since:
            start = dt.datetime.fromisoformat(since)
            if start.tzinfo is None:
                start = start.replace(tzinfo=dt.UTC)
            waited = max(0, int((now - start).total_seconds()))
        row["waited_s"] = waited
        row["breach"] = waited is not None and waited > sla_seconds
    return rows


@router.get("/service")
def inbox_page(
    request: Request,
    user: StaffUser = Depends(permitted(PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    q = service.queue(session, user_id=user.id)
    sla = request.app.state.settings.service_sla_seconds
    agent = inbox.agent_settings(session, user.id)
    cards = customer_cards(session, [c["customer_id"] for c in q["waiting"] + q["mine"]],
                           show_pii=user.can("pii.read"))
    return _render(request, user, "service/inbox.html", {
        "customers": cards,
        "waiting": _with_sla(q["waiting"], sla), "mine": _with_sla(q["mine"], sla),
        "status": agent["status"], "agent": agent, "skill_groups": service.SKILL_GROUPS,
        "sla_seconds": sla, "channels": CHANNELS_ZH,
        "intents": inbox.intent_titles(session, [c["last_intent"] for c in q["waiting"]])})


@router.get("/service/conversations/{conversation_id}")
def conversation_page(
    conversation_id: int,
    request: Request,
    before: int | None = Query(None, ge=1, le=2**63 - 1),
    user: StaffUser = Depends(permitted(PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    try:
        detail = inbox.conversation_detail(session, conversation_id, before_id=before)
    except SiyuError:
        return _render(request, user, "service/missing.html", {"id": conversation_id},
                       status_code=404)
    customer = get_customer_360(session, detail["conversation"]["customer_id"],
                                show_pii=privacy.sees_pii(user))
    try:
        suggestions = inbox.suggest_replies(session, conversation_id)
    except SiyuError:
        suggestions = []
    last_id = detail["messages"][-1]["id"] if detail["messages"] else 0
    return _render(request, user, "service/conversation.html", {
        **detail, "customer": customer, "suggestions": suggestions,
        "activity": inbox.recent_activity(session, customer["id"]),
        "agents": inbox.transfer_targets(session, exclude_user_id=user.id),
        "last_id": last_id, "before": before})


def _flash(request: Request, text: str, kind: str = "ok") -> None:
    request.session["flash"] = {"kind": kind, "text": text}


def _act(request: Request, conversation_id: int, message: str, kind: str = "ok"
         ) -> RedirectResponse:
    _flash(request, message, kind)
    return RedirectResponse(f"/service/conversations/{conversation_id}", status_code=303)


@router.post("/service/conversations/{conversation_id}/take")
def take_action(
    conversation_id: int, request: Request,
    user: StaffUser = Depends(permitted(PERMISSION)), _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    try:
        service.take(session, conversation_id, user.id)
        session.commit()
    except SiyuError as exc:
        session.rollback()
        return _act(request, conversation_id, f"无法接入：{exc.message}", "error")
    return _act(request, conversation_id, "已接入该会话")


@router.post("/service/conversations/{conversation_id}/reply")
def reply_action(
    conversation_id: int, request: Request, text: str = Form("", max_length=2000),
    user: StaffUser = Depends(permitted(PERMISSION)), _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    if not text.strip():
        return _act(request, conversation_id, "回复内容不能为空", "error")
    try:
        service.agent_reply(session, conversation_id, user.id, text.strip())
        session.commit()
    except SiyuError as exc:
        session.rollback()
        return _act(request, conversation_id, f"发送失败：{exc.message}", "error")
    return _act(request, conversation_id, "已发送")


@router.post("/service/conversations/{conversation_id}/transfer")
def transfer_action(
    conversation_id: int, request: Request, to_user_id: int = Form(...),
    user: StaffUser = Depends(permitted(PERMISSION)), _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    try:
        service.transfer(session, conversation_id, to_user_id=to_user_id, by_user_id=user.id)
        session.commit()
    except SiyuError as exc:
        session.rollback()
        return _act(request, conversation_id, f"转接失败：{exc.message}", "error")
    return _act(request, conversation_id, "已转接")


@router.post("/service/conversations/{conversation_id}/close")
def close_action(
    conversation_id: int, request: Request,
    user: StaffUser = Depends(permitted(PERMISSION)), _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    try:
        service.close(session, conversation_id, actor=f"user:{user.id}")
        session.commit()
    except SiyuError as exc:
        session.rollback()
        return _act(request, conversation_id, f"无法结束：{exc.message}", "error")
    return _act(request, conversation_id, "会话已结束，已向客户发送满意度评价")


@router.post("/service/status")
def status_action(
    request: Request, status: str = Form(..., max_length=10),
    user: StaffUser = Depends(permitted(PERMISSION)), _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    try:
        service.set_agent_status(session, user.id, status)
        session.commit()
        _flash(request, {"online": "已上线", "away": "已设为离开", "offline": "已下线"}[status])
    except SiyuError as exc:
        session.rollback()
        _flash(request, f"状态未更新：{exc.message}", "error")
    return RedirectResponse("/service", status_code=303)


@router.post("/service/skills")
def skills_action(
    request: Request, skills: list[str] = Form([]), capacity: int = Form(5),
    user: StaffUser = Depends(permitted(PERMISSION)), _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    try:
        service.set_agent_status(session, user.id, capacity=capacity, skills=skills)
        session.commit()
        labels = "、".join(service.SKILL_GROUPS[s] for s in sorted(set(skills))) or "综合"
        _flash(request, f"已保存：技能组 {labels}，同时接待 {capacity} 个")
    except SiyuError as exc:
        session.rollback()
        _flash(request, f"未保存：{exc.message}", "error")
    return RedirectResponse("/service", status_code=303)


@router.get("/service/metrics")
def metrics_page(
    request: Request,
    user: StaffUser = Depends(permitted(PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    m = metrics.summary(session, days=30)
    agent_chart = bar_chart([(r["name"], r["csat"]) for r in m["csat_by_agent"]],
                            title="各客服满意度") if m["csat_by_agent"] else None
    intent_chart = bar_chart([(r["name"], r["csat"]) for r in m["csat_by_intent"]],
                             title="各意图满意度") if m["csat_by_intent"] else None
    rm = m["resolution_minutes"]
    resolution_chart = bar_chart(
        [(name, rm[by]) for name, by in (("机器人解决", "bot"), ("人工处理", "agent"))
         if rm[by] is not None], title="解决用时中位数（分钟）") if any(rm.values()) else None
    return _render(request, user, "service/metrics.html", {
        "m": m, "agent_chart": agent_chart, "intent_chart": intent_chart,
        "resolution_chart": resolution_chart})


@router.get("/service/conversations/{conversation_id}/poll")
def poll_conversation(
    conversation_id: int, after: int = 0,
    user: StaffUser = Depends(permitted(PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> JSONResponse:
    try:
        return JSONResponse(inbox.new_messages(session, conversation_id, after),
                            headers={"Cache-Control": "no-store"})
    except SiyuError as exc:
        return JSONResponse({"error": exc.message}, status_code=404)
