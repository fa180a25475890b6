"""Console page of the knowledge base (知识库): intents with their examples and answer
templates, FAQ entries, keyword rules, and 「训练并评估」 which trains the intent model and shows
its cross-validated accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.errors import NotFound, SiyuError
from siyu.kb import service
from siyu.kb.models import KEYWORD_MATCHES, FaqEntry, Intent, IntentExample, KeywordRule
from siyu.kit import csvsafe
from siyu.kit.web import get_session

_HERE = Path(__file__).resolve().parent
PERMISSION = "kb.write"
EXAMPLES_SHOWN = 8

register_nav("知识库", "/kb", PERMISSION, order=45)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def overview(session: Session) -> dict[str, Any]:
    """Everything the page shows."""
    counts = dict(session.execute(select(IntentExample.intent_id, func.count())
                                  .group_by(IntentExample.intent_id)).all())
    intents = []
    for intent in session.scalars(select(Intent).order_by(Intent.name)):
        examples = list(session.scalars(select(IntentExample.text)
                                        .where(IntentExample.intent_id == intent.id)
                                        .order_by(IntentExample.id).limit(EXAMPLES_SHOWN)))
        intents.append({"id": intent.id, "name": intent.name, "title": intent.title,
                        "answer": intent.answer or "", "action": intent.action,
                        "handoff": intent.handoff, "examples": examples,
                        "count": counts.get(intent.id, 0)})
    model = service.active_model(session)
    return {
        "intents": intents,
        "faq": list(session.scalars(select(FaqEntry).order_by(FaqEntry.id))),
        "rules": list(session.scalars(select(KeywordRule).order_by(KeywordRule.priority.desc(),
                                                                   KeywordRule.id))),
        "model": None if model is None else {
            "id": model.id, "trained_at": model.trained_at, "examples": model.examples,
            "intents": model.intents, "seconds": model.seconds,
            "cv_accuracy": (model.metrics or {}).get("cv_accuracy")},
        "total_examples": sum(counts.values()),
        "matches": KEYWORD_MATCHES,
    }


@router.get("/kb")
def kb_page(request: Request, user: StaffUser = Depends(permitted(PERMISSION)),
            session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    return pages.render(request, user, _HERE / "templates", "kb/index.html", overview(session))


def _done(request: Request, text: str, kind: str = "ok", anchor: str = "") -> Response:
    request.session["flash"] = {"kind": kind, "text": text}
    return RedirectResponse(f"/kb{anchor}", status_code=303)


def _apply(request: Request, session: Session, action: Any, ok: str, anchor: str) -> Response:
    try:
        result = action()
        session.commit()
    except SiyuError as exc:
        session.rollback()
        return _done(request, f"未保存：{exc.message}", "error", anchor)
    service.invalidate()
    return _done(request, ok.format(result=result), "ok", anchor)


@router.post("/kb/train")
def train_action(request: Request, user: StaffUser = Depends(permitted(PERMISSION)),
                 _: None = Depends(check_csrf),
                 session: Session = Depends(get_session, scope="function")) -> Response:
    def run() -> str:
        report = service.train(session)
        acc = ("—" if report.cv_accuracy is None else f"{report.cv_accuracy * 100:.1f}%")
        return (f"{report.intents} 个意图、{report.examples} 条例句，用时 {report.seconds:.1f} 秒；"
                f"交叉验证准确率 {acc}")

    return _apply(request, session, run, "训练完成：{result}", "#model")


@router.post("/kb/intents/{intent_id}/answer")
def answer_action(intent_id: int, request: Request, answer: str = Form("", max_length=2000),
                  user: StaffUser = Depends(permitted(PERMISSION)),
                  _: None = Depends(check_csrf),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    def run() -> str:
        intent = session.get(Intent, intent_id)
        if intent is None:
            raise NotFound(f"没有意图 #{intent_id}")
        intent.answer = answer.strip() or None
        return intent.title or intent.name

    return _apply(request, session, run, "已保存「{result}」的回复模板", f"#intent-{intent_id}")


@router.post("/kb/intents/{intent_id}/examples")
def example_action(intent_id: int, request: Request, text: str = Form("", max_length=500),
                   user: StaffUser = Depends(permitted(PERMISSION)),
                   _: None = Depends(check_csrf),
                   session: Session = Depends(get_session, scope="function")) -> Response:
    def run() -> str:
        intent = session.get(Intent, intent_id)
        if intent is None:
            raise NotFound(f"没有意图 #{intent_id}")
        service.import_intents(session, _csv(("text", "intent"), (text, intent.name)),
                               source="表单")
        return intent.title or intent.name

    return _apply(request, session, run, "已为「{result}」添加例句（重新训练后生效）",
                  f"#intent-{intent_id}")


@router.post("/kb/faq")
def faq_action(request: Request, question: str = Form("", max_length=500),
               answer: str = Form("", max_length=2000), variants: str = Form("", max_length=2000),
               user: StaffUser = Depends(permitted(PERMISSION)), _: None = Depends(check_csrf),
               session: Session = Depends(get_session, scope="function")) -> Response:
    def run() -> str:
        service.import_faq(session, _csv(("question", "answer", "variants"),
                                         (question, answer, variants)), source="表单")
        return question.strip()

    return _apply(request, session, run, "已保存 FAQ「{result}」", "#faq")


@router.post("/kb/rules")
def rule_action(request: Request, pattern: str = Form("", max_length=200),
                match: str = Form("contains"), reply: str = Form("", max_length=2000),
                handoff: bool = Form(False), priority: int = Form(0),
                user: StaffUser = Depends(permitted(PERMISSION)), _: None = Depends(check_csrf),
                session: Session = Depends(get_session, scope="function")) -> Response:
    def run() -> str:
        rule = service.add_keyword_rule(session, pattern=pattern, match=match, reply=reply,
                                        handoff=handoff, priority=priority)
        return rule.pattern

    return _apply(request, session, run, "已添加关键词规则「{result}」", "#rules")


def _csv(header: tuple[str, ...], row: tuple[str, ...]) -> str:
    import io

    buf = io.StringIO()
    writer = csvsafe.writer(buf)
    writer.writerow(header)
    writer.writerow(row)
    return buf.getvalue()
