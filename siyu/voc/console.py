"""Console pages of VOC (客户之声): the dashboard (NPS / CSAT / CES trends, key drivers with
their quadrant, the journey map with its highlight and darkest moments and before/after),
drill-down from a category to its subcategories to the verbatims, and the survey builder
with a preview of the survey page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.errors import SiyuError
from siyu.kit import charts
from siyu.kit.web import get_session
from siyu.voc import analysis, journey, service, surveys
from siyu.voc.models import ExperienceChange, Survey

_HERE = Path(__file__).resolve().parent
READ = "analytics.read"
WRITE = "kb.write"

register_nav("客户之声", "/voc", READ, order=40)
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _drivers(session: Session) -> dict[str, Any] | None:
    primary = analysis.primary_driver_survey(session)
    if primary is None:
        return None
    try:
        out = analysis.survey_drivers(session, primary[0], primary[1])
    except SiyuError:
        return None
    out["survey"] = primary[0]
    survey = session.scalar(select(Survey).where(Survey.name == primary[0]))
    out["survey_title"] = survey.title if survey and survey.title else primary[0]
    return out


def dashboard_context(session: Session) -> dict[str, Any]:
    tree = service.factor_tree(session)
    trend = analysis.trends(session)
    drv = _drivers(session)
    change = session.scalar(select(ExperienceChange).order_by(ExperienceChange.date.desc()))
    jmap = journey.journey_map(session, change_step=change.step if change else None,
                               change_date=change.date if change else None,
                               change_label=change.label if change else None)
    counts = analysis.mention_counts(session)
    figs: dict[str, Any] = {}
    months = [m[2:] for m in trend["months"]]
    for key, title in (("nps", "NPS 净推荐值"), ("csat", "CSAT 满意率 %"),
                       ("ces", "CES 费力度（7=最容易）")):
        values = trend[key]
        if any(v is not None for v in values):
            idx = [i for i, v in enumerate(values) if v is not None]
            figs[key] = charts.line_chart([months[i] for i in idx], [
                charts.Series(title, [max(float(values[i]), 0.0) for i in idx])], title=title)
    if drv:
        figs["drivers"] = charts.bar_chart(
            [(d["factor"], round(100 * d["share"], 1)) for d in drv["drivers"]],
            title="关键驱动因素（占 R² 的百分比）", value_format="{}%", color=charts.PALETTE[3])
        figs["quadrant"] = charts.quadrant_chart(
            [(d["factor"], d["importance"], d["performance"]) for d in drv["drivers"]],
            title="重要度 × 表现", x_label="重要度（占 R² 的份额）", y_label="表现（0–1）",
            quadrant_labels=("保持优势", "维持现状", "次要改进", "优先改进"),
            links=[f"/voc/factors/{d['factor']}" for d in drv["drivers"]])
        quad: dict[str, list[str]] = {"优先改进": [], "保持优势": [], "次要改进": [],
                                      "维持现状": []}
        for d in drv["drivers"]:
            quad[d["quadrant"]].append(d["factor"])
        drv["quadrants"] = quad
    steps = [s for s in jmap["steps"] if s["satisfaction"] is not None]
    if steps:
        figs["journey"] = charts.bar_chart(
            [(s["step"], round(100 * s["satisfaction"], 1)) for s in steps],
            title="各旅程环节满意度（0–100）", color=charts.PALETTE[1])
    categories = [{"name": n.name, "children": [c.name for c in tree.nodes if c.parent == n.name],
                   "negative": sum(counts.get(c.name, {}).get("negative", 0)
                                   for c in tree.nodes if n.name in tree.path(c.name)),
                   "positive": sum(counts.get(c.name, {}).get("positive", 0)
                                   for c in tree.nodes if n.name in tree.path(c.name))}
                  for n in tree.nodes if n.parent is None]
    return {"trend": trend, "drivers": drv, "journey": jmap, "charts": figs,
            "categories": categories, "change": change}


@router.get("/voc")
def dashboard(request: Request, user: StaffUser = Depends(permitted(READ)),
              session: Session = Depends(get_session)) -> HTMLResponse:
    ctx = dashboard_context(session)
    darkest, ctx["darkest_segment"] = ctx["journey"].get("darkest"), None
    if darkest and user.can("segments.write"):
        rule = f"voc_low({json.dumps(darkest, ensure_ascii=False)}, last 30d)"
        ctx["darkest_segment"] = "/segments/new?" + urlencode(
            {"name": f"{darkest}不满客户", "rule": rule})
    return pages.render(request, user, _HERE / "templates", "voc/dashboard.html", ctx)


@router.get("/voc/factors/{name}")
def factor_page(request: Request, name: str, sentiment: str | None = None,
                user: StaffUser = Depends(permitted(READ)),
                session: Session = Depends(get_session)) -> HTMLResponse:
    tree = service.factor_tree(session)
    known = {n.name for n in tree.nodes}
    drv = _drivers(session)
    importance: dict[str, float] = {}
    if drv:
        for c in drv["categories"]:
            stack = [c]
            while stack:
                node = stack.pop()
                importance[node["name"]] = node["share"]
                stack.extend(node["children"])
    counts = analysis.mention_counts(session)
    children = [{"name": c.name, "share": importance.get(c.name),
                 **counts.get(c.name, {"positive": 0, "negative": 0})}
                for c in tree.nodes if c.parent == name]
    children.sort(key=lambda c: -(c["share"] or 0))
    sign = {"negative": -1, "positive": 1}.get(sentiment or "")
    rows = analysis.verbatims(session, name, tree=tree, sentiment=sign)
    return pages.render(request, user, _HERE / "templates", "voc/factor.html", {
        "name": name, "known": name in known, "path": tree.path(name) if name in known else
        [name], "children": children, "verbatims": rows, "share": importance.get(name),
        "sentiment": sentiment})


@router.get("/voc/surveys")
def surveys_page(request: Request, user: StaffUser = Depends(permitted(READ)),
                 session: Session = Depends(get_session)) -> HTMLResponse:
    rows = [{"survey": s, "questions": len(surveys.questions(session, s.id)),
             "responses": surveys.response_count(session, s.id)}
            for s in session.scalars(select(Survey).order_by(Survey.id))]
    return pages.render(request, user, _HERE / "templates", "voc/surveys.html", {
        "rows": rows, "can_write": user.can(WRITE), "kinds": list(surveys.QUESTION_KINDS)})


def parse_question_lines(text: str) -> list[surveys.QuestionSpec]:
    """Builder syntax, one question a line: ``kind | key | title [| option1, option2]``."""
    specs = []
    for i, line in enumerate(ln for ln in text.splitlines() if ln.strip()):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 3:
            raise surveys.InvalidInput(f"第 {i + 1} 题格式应为：类型 | 编号 | 题目", details=[
                {"field": f"questions[{i}]", "reason": "kind | key | title [| options]"}])
        options = [o.strip() for o in parts[3].replace("，", ",").split(",")
                   if o.strip()] if len(parts) > 3 else []
        specs.append(surveys.QuestionSpec(parts[1], parts[0], parts[2], options=options,
                                          factor=parts[1] if parts[0] == "rating" else None))
    return specs


@router.post("/voc/surveys/preview")
def preview(request: Request, name: str = Form(""), title: str = Form(""),
            questions_text: str = Form("", alias="questions"),
            user: StaffUser = Depends(permitted(WRITE)), _csrf: None = Depends(check_csrf)
            ) -> HTMLResponse:
    """The survey page as a customer would see it, before anything is stored."""
    try:
        specs = parse_question_lines(questions_text)
        error = None
    except SiyuError as exc:
        specs, error = [], exc.message
    qs = [{"key": q.key, "kind": q.kind, "title": q.title, "options": q.options,
           "required": q.required,
           "scale_min": surveys.scale_of(q.kind)[0] if surveys.QUESTION_KINDS.get(q.kind)
           else None,
           "scale_max": surveys.scale_of(q.kind)[1] if surveys.QUESTION_KINDS.get(q.kind)
           else None} for q in specs]
    return pages.render(request, user, _HERE / "templates", "voc/preview.html", {
        "survey": {"title": title or name or "问卷预览", "intro": None}, "questions": qs,
        "answers": {}, "completed": False, "preview": True, "error": error,
        "form": {"name": name, "title": title, "questions": questions_text}})


@router.post("/voc/surveys")
def create(request: Request, name: str = Form(...), title: str = Form(""),
           touchpoint: str = Form(""), journey_step: str = Form(""),
           questions_text: str = Form("", alias="questions"),
           user: StaffUser = Depends(permitted(WRITE)), _csrf: None = Depends(check_csrf),
           session: Session = Depends(get_session, scope="function")) -> RedirectResponse:
    try:
        surveys.create_survey(session, name=name, title=title or None,
                              questions_=parse_question_lines(questions_text),
                              touchpoint=touchpoint or None, journey_step=journey_step or None)
        request.session["flash"] = {"kind": "ok", "text": f"问卷 {name} 已创建"}
    except SiyuError as exc:
        session.rollback()
        request.session["flash"] = {"kind": "error", "text": exc.message}
    return RedirectResponse("/voc/surveys", status_code=303)
