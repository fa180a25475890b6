"""REST routes of the analytics domain: a customer's scores, the dashboard summary,
LTV/CAC by channel, recomputation requests and the fitted CLV models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.orm import Session

from siyu.analytics import service
from siyu.analytics.config import load_config
from siyu.auth.deps import Principal, require
from siyu.db import utcnow
from siyu.kit.openapi import API_ERRORS
from siyu.kit.web import get_session

router = APIRouter(prefix="/api/v1", tags=["analytics"], responses=API_ERRORS)


@router.get("/customers/{customer_id}/scores")
def customer_scores(
    customer_id: int = Path(ge=1, le=2**63 - 1),
    session: Session = Depends(get_session),
    _: Principal = Depends(require("customers.read")),
) -> dict[str, Any]:
    """The customer's stored scores (RFM, lifecycle, CLV, true-fan score, audience type,
    customer asset) with a one-line Chinese reason per score in ``explanations``.
    404 when the customer does not exist or has not been scored yet."""
    return service.customer_scores(session, customer_id)


@router.get("/analytics/summary")
def summary(
    request: Request,
    months: int = Query(12, ge=1, le=60, description="months of stage transitions"),
    session: Session = Depends(get_session),
    _: Principal = Depends(require("analytics.read")),
) -> dict[str, Any]:
    """Customers by lifecycle stage, RFM tier and audience type, true fans against the goal,
    the CLV distribution and lifecycle transitions per month."""
    return service.summary(session, load_config(), now=utcnow(),
                           timezone=request.app.state.settings.timezone, months=months)


@router.get("/analytics/ltv-cac")
def ltv_cac(
    session: Session = Depends(get_session),
    _: Principal = Depends(require("analytics.read")),
) -> dict[str, Any]:
    """LTV (margin x spend to date + CLV) and configured CAC per acquisition channel."""
    return service.ltv_cac(session, load_config())


@router.post("/analytics/recompute", status_code=202)
def recompute(
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.write")),
) -> dict[str, Any]:
    """Queue a recomputation of every customer's scores (the worker runs it); requests in
    the same minute share one job."""
    return service.request_recompute(session)


@router.get("/clv/models")
def clv_models(
    limit: int = Query(50, ge=1, le=500),
    session: Session = Depends(get_session),
    _: Principal = Depends(require("analytics.read")),
) -> dict[str, Any]:
    """Fitted CLV models, newest first; the active one scores customers."""
    return {"models": service.list_models(session, limit=limit)}
