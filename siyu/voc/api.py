"""The survey page customers open from a signed link (no login: the link is the key), and
the VOC API for integrators (classify feedback, drivers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require
from siyu.kit.openapi import API_ERRORS
from siyu.kit.web import get_session
from siyu.privacy import service as privacy
from siyu.voc import analysis, service, surveys
from siyu.voc.errors import LinkRefused
from siyu.voc.models import Survey

_HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
page_router = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/api/v1/voc", tags=["voc"], responses=API_ERRORS)


def _page_context(session: Session, link: surveys.Link) -> dict[str, Any]:
    survey = session.get(Survey, link.survey_id)
    if survey is None or not survey.active:
        raise LinkRefused("这份问卷已关闭", details=[{"field": "token", "reason": "closed"}])
    resp = surveys.response_for_link(session, link, create=False)
    return {"survey": survey, "questions": surveys.questions(session, survey.id),
            "answers": surveys.answers_of(session, resp.id) if resp else {},
            "completed": bool(resp and resp.completed)}


def _refused(request: Request, exc: LinkRefused) -> HTMLResponse:
    return templates.TemplateResponse(request, "voc/survey_closed.html",
                                      {"message": exc.message}, status_code=exc.status_code)


@page_router.get("/s/{token}", response_class=HTMLResponse)
def survey_page(request: Request, token: str,
                session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    try:
        link = surveys.read_link(request.app.state.settings, token)
        ctx = _page_context(session, link)
    except LinkRefused as exc:
        return _refused(request, exc)
    response = templates.TemplateResponse(request, "voc/survey.html", {**ctx, "token": token,
                                                                       "preview": False})
    response.headers["Cache-Control"] = "no-store"
    return response


class AnswerIn(BaseModel):
    key: str = Field(min_length=1, max_length=80)
    value: Any = None


@page_router.post("/s/{token}/answers")
def save_answer(request: Request, token: str, body: AnswerIn,
                session: Session = Depends(get_session, scope="function")) -> JSONResponse:
    """Save one answer as the customer goes."""
    link = surveys.read_link(request.app.state.settings, token)
    surveys.save_answer(session, link, body.key, body.value)
    return JSONResponse({"saved": body.key})


@page_router.post("/s/{token}/submit")
def submit(request: Request, token: str, _body: dict[str, Any] | None = Body(None),
           session: Session = Depends(get_session, scope="function")) -> JSONResponse:
    link = surveys.read_link(request.app.state.settings, token)
    resp = surveys.submit(session, link)
    return JSONResponse({"completed": True, "response_id": resp.id})


# -- the VOC API (/api/v1/voc) ----------------------------------------------------------------

READ = "analytics.read"


@router.get("/drivers")
def get_drivers(
    survey: str = Query(max_length=80), target: str = Query(max_length=80),
    method: str = Query("shapley", max_length=20),
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require(READ)),
) -> dict[str, Any]:
    """Key drivers of ``target`` in ``survey`` (as ``siyu voc drivers --json``): ``target``,
    ``method``, ``n``, ``r2``, ``drivers`` [{factor, importance, share, performance, rank,
    quadrant, priority}] and ``categories`` (importance summed up the factor tree)."""
    return analysis.survey_drivers(session, survey, target, method=method)


class ClassifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, max_length=100,
                             examples=[["物流很快，但是味道太差"]])


@router.post("/classify")
def classify(
    body: ClassifyIn,
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require(READ)),
) -> dict[str, Any]:
    """Overall sentiment and per-factor mentions of each text (nothing is stored). Phone
    numbers and e-mail addresses in the echoed text are masked for roles without PII."""
    mask = privacy.masker(principal)
    items = [c.to_dict() for c in service.classify(session, body.texts)]
    return {"items": [mask.deep(item) for item in items]}


@router.get("/surveys/{name}/responses")
def survey_responses(
    name: str, page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=500),
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require(READ)),
) -> dict[str, Any]:
    """Completed responses, newest first, with their answers; free-text answers are masked
    (phone numbers, e-mail addresses) for roles without PII."""
    page_ = surveys.list_responses(session, name, page=page, per_page=per_page)
    mask = privacy.masker(principal)
    page_["items"] = [mask.deep(item) for item in page_["items"]]
    return page_
