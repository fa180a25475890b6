"""Console pages of the playbooks domain (自动化剧本): the list with live counters, the
editor (a structured form and the YAML file side by side, validated as you type through
``POST /api/v1/playbooks/validate``, with the stored version's dry-run preview), and a page
per playbook with its funnel and uplift. Two cards on the customer 360 show the contact
log (sent, deferred, suppressed with reasons) and open tasks.

Previews and dry-run texts pass through :func:`siyu.privacy.service.masker`, so operators
without the PII permission see masked values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.panels import register_customer_panel
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.content.service import CONVERSION_DAYS
from siyu.errors import SiyuError
from siyu.kit import charts
from siyu.kit.timeutil import display
from siyu.kit.web import get_session
from siyu.playbooks import clock, service
from siyu.playbooks import policy as pol
from siyu.privacy.service import masker

_HERE = Path(__file__).resolve().parent
READ_PERMISSION = "segments.read"
WRITE_PERMISSION = "segments.write"
PREVIEW_DAYS = 7
PREVIEW_ROWS = 50

STATUS_ZH = {"active": "运行中", "draft": "草稿", "paused": "已暂停"}
TRIGGER_ZH = {"event": "事件", "order_status": "订单状态", "scenario": "进入场景",
              "scenario_left": "离开场景", "segment_entered": "进入人群",
              "segment_left": "离开人群", "schedule": "定时", "inactive_days": "沉默天数",
              "date": "日期"}
OUTCOME_ZH = {"queued": "已发送", "sent": "已发送", "delivered": "已送达", "created": "已创建",
              "pending": "待发送", "would_send": "将发送", "deferred": "延后",
              "suppressed": "不发送", "failed": "失败", "outcome_unknown": "结果未知",
              "done": "完成", "holdout": "对照组", "waiting": "等待中", "exited": "已退出"}
TASK_KIND_ZH = {"call": "电话回访", "chat": "私聊", "appointment": "预约邀请"}
KIND_ZH = {"send": "发送", "wait": "等待", "wait_for": "等待事件", "branch": "分支",
           "task": "任务", "tag": "打标签", "points": "积分", "webhook": "Webhook",
           "exit": "退出", "goal": "达成目标"}

NEW_TEMPLATE = """name: 新剧本
status: draft
priority: 50
trigger: {event: signup}
audience: 'has(email)'
reentry: once
holdout: 0.1
steps:
  - send:
      channel: email
      purpose: marketing
      subject: "{{ customer.name }}，欢迎加入"
      template: "您好 {{ customer.name }}，感谢关注！"
"""

register_nav("自动化剧本", "/playbooks", READ_PERMISSION, order=35)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _render(request: Request, user: StaffUser, name: str, context: dict[str, Any], *,
            status_code: int = 200) -> HTMLResponse:
    return pages.render(request, user, _HERE / "templates_console", name,
                        {"status_zh": STATUS_ZH, "trigger_zh": TRIGGER_ZH,
                         "trigger_text": trigger_text,
                         "outcome_zh": OUTCOME_ZH, **context}, status_code=status_code)


def trigger_text(kind: str, value: Any) -> str:
    """A trigger as the list shows it: 事件：添加企业微信, 日期：生日, 沉默天数：60 天."""
    from siyu.kit.labels import label

    name = TRIGGER_ZH.get(kind, kind)
    if value is None or value in ("", "None"):
        return name
    shown = {"event": lambda v: label(v, "event"),
             "order_status": lambda v: label(v, "order_status"),
             "date": lambda v: label(v), "inactive_days": lambda v: f"{v} 天"}.get(
                 kind, str)(str(value))
    return f"{name}：{shown}"


def step_label(path: str) -> str:
    """A step's address in the file as people read it: ``1.then.0`` is 1→满足→0."""
    return path.replace(".then.", "→满足→").replace(".else.", "→不满足→")


def funnel_stages(stats: dict[str, Any]) -> list[tuple[str, float]]:
    """The funnel of a playbook: runs entered, treated (not in holdout), then each send
    step's reached runs, and goals reached by treated runs."""
    treated = stats["entered"] - stats["holdout"]
    stages: list[tuple[str, float]] = [("进入", float(stats["entered"])),
                                       ("实验组", float(treated))]
    for step in stats["steps"]:
        if step["kind"] != "send":
            continue
        sent = sum(n for outcome, n in step["outcomes"].items()
                   if outcome in ("queued", "sent", "delivered", "created"))
        stages.append((f"步骤 {step_label(step['path'])} 发送", float(sent)))
    conversion = stats["conversion"]["treated"]
    stages.append(("达成目标", float(round((conversion or 0.0) * treated))))
    return stages


def _error_view(exc: SiyuError) -> dict[str, Any]:
    details = exc.details if isinstance(exc.details, list) else []
    return {"message": exc.message, "problems": details}


@router.get("/playbooks")
def playbook_list(
    request: Request,
    user: StaffUser = Depends(permitted(READ_PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    return _render(request, user, "playbooks/list.html",
                   {"playbooks": service.list_playbooks(session),
                    "can_edit": user.can(WRITE_PERMISSION)})


def _editor(request: Request, user: StaffUser, session: Session, *, name: str | None,
            source: str, error: SiyuError | None = None, status_code: int = 200
            ) -> HTMLResponse:
    preview: list[dict[str, Any]] = []
    preview_error = None
    if name is not None:
        try:
            preview = _preview(session, request, user, name)
        except SiyuError as exc:
            preview_error = exc.message
    return _render(request, user, "playbooks/edit.html", {
        "name": name, "source": source, "preview": preview, "preview_error": preview_error,
        "preview_days": PREVIEW_DAYS, "error": _error_view(error) if error else None,
        "triggers": TRIGGER_ZH}, status_code=status_code)


def _preview(session: Session, request: Request, user: StaffUser, name: str
             ) -> list[dict[str, Any]]:
    """The stored version's dry-run (rolled back: nothing sent), texts masked by role."""
    rows = service.dry_run(session, name, days=PREVIEW_DAYS, now=clock.now(),
                           timezone=str(request.app.state.settings.timezone))
    mask = masker(user.role)
    out = []
    for row in rows[:PREVIEW_ROWS]:
        out.append({**row, "text": mask.text(row["text"]) if row["text"] else None,
                    "outcome_zh": OUTCOME_ZH.get(row["outcome"], row["outcome"]),
                    "reason_zh": pol.REASONS.get(row["reason"] or "", row["reason"] or "")})
    return out


@router.get("/playbooks/new")
def playbook_new(
    request: Request,
    user: StaffUser = Depends(permitted(WRITE_PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    return _editor(request, user, session, name=None, source=NEW_TEMPLATE)


@router.get("/playbooks/{name}/edit")
def playbook_edit(
    name: str,
    request: Request,
    user: StaffUser = Depends(permitted(WRITE_PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    shown = service.show(session, name)
    return _editor(request, user, session, name=name, source=shown["source"])


@router.post("/playbooks/save")
def playbook_save(
    request: Request,
    source: str = Form("", max_length=200_000),
    user: StaffUser = Depends(permitted(WRITE_PERMISSION)),
    _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    try:
        result = service.apply(session, source, file="console.yaml",
                               actor=f"user:{user.username}")
    except SiyuError as exc:
        # Nothing was stored; the editor comes back with what was typed.
        session.rollback()
        return _editor(request, user, session, name=None, source=source, error=exc,
                       status_code=exc.status_code)
    text = (f"已保存剧本「{result['name']}」第 {result['version']} 版" if result["changed"]
            else f"剧本「{result['name']}」没有变化")
    request.session["flash"] = {"kind": "ok", "text": text}
    return RedirectResponse(f"/playbooks/{result['name']}", status_code=303)


@router.get("/playbooks/{name}")
def playbook_detail(
    name: str,
    request: Request,
    user: StaffUser = Depends(permitted(READ_PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> HTMLResponse:
    shown = service.show(session, name)
    stats = service.stats(session, name)
    chart = charts.funnel(funnel_stages(stats), title=f"{name} 漏斗")
    steps = []
    for step in stats["steps"]:
        steps.append({"path": step_label(step["path"]),
                      "kind": KIND_ZH.get(step["kind"], step["kind"]),
                      "outcomes": [(OUTCOME_ZH.get(o, o), n)
                                   for o, n in sorted(step["outcomes"].items())]})
    suppressed = [(pol.REASONS.get(r, r), n) for r, n in sorted(stats["suppressed"].items())]
    content = [{**row, "step": step_label(row["step"])} for row in stats["content"]]
    return _render(request, user, "playbooks/detail.html", {
        "playbook": shown, "stats": stats, "funnel": chart, "steps": steps,
        "suppressed": suppressed, "can_edit": user.can(WRITE_PERMISSION),
        "content": content, "uses_content": bool(content) or uses_content(shown["spec"]),
        "conversion_days": CONVERSION_DAYS})


def uses_content(spec: dict[str, Any]) -> bool:
    """Whether a step's template or subject links to a content item (``content("名称")``)."""
    from siyu.playbooks.spec import flatten
    from siyu.playbooks.templates import content_names

    return any(content_names(step[field]) for _path, step in flatten(spec.get("steps") or [])
               for field in ("template", "subject") if isinstance(step.get(field), str))


@router.post("/playbooks/{name}/status")
def playbook_status(
    name: str,
    request: Request,
    status: str = Form("", max_length=10),
    user: StaffUser = Depends(permitted(WRITE_PERMISSION)),
    _: None = Depends(check_csrf),
    session: Session = Depends(get_session, scope="function"),
) -> Response:
    if status not in ("active", "paused"):
        request.session["flash"] = {"kind": "error", "text": "状态只能是运行中或已暂停"}
    else:
        service.set_status(session, name, status)
        request.session["flash"] = {"kind": "ok",
                                    "text": f"剧本「{name}」已{STATUS_ZH[status]}"}
    return RedirectResponse(f"/playbooks/{name}", status_code=303)


# -- customer 360 cards ------------------------------------------------------------------------


def contact_rows(session: Session, customer_id: int) -> list[dict[str, str]]:
    """The contact log as 360 card rows: when and which playbook step, the outcome and why."""
    from siyu.kit.labels import label

    tz = get_settings().timezone
    rows = []
    for item in service.contact_log(session, customer_id, limit=20):
        outcome = OUTCOME_ZH.get(item["outcome"], item["outcome"])
        channel = label(item["channel"], "channel") if item["channel"] else ""
        rows.append({"label": f"{display(item['at'], tz)} {item['playbook']}",
                     "value": f"{channel} {outcome}".strip(),
                     "why": item["reason_zh"] or item["reason"] or ""})
    return rows


def task_rows(session: Session, customer_id: int) -> list[dict[str, str]]:
    tz = get_settings().timezone
    rows = []
    for task in service.open_tasks(session, customer_id=customer_id, limit=20):
        kind = TASK_KIND_ZH.get(task["kind"], task["kind"])
        rows.append({"label": f"{task['playbook']} · {kind}",
                     "value": f"截止 {display(task['due_at'], tz)}",
                     "why": task["note"] or ""})
    return rows


register_customer_panel("playbook_contacts", "触达记录", contact_rows, "customers.read",
                        order=60, empty="暂无剧本触达")
register_customer_panel("playbook_tasks", "待办任务", task_rows, "customers.read",
                        order=61, empty="暂无待办任务")
