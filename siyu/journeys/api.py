"""REST routes of the journeys domain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require
from siyu.journeys import service
from siyu.kit.openapi import API_ERRORS
from siyu.kit.web import get_session

router = APIRouter(prefix="/api/v1", tags=["journeys"], responses=API_ERRORS)


@router.get("/customers/{customer_id}/journey")
def get_journey(
    customer_id: int,
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.read")),
) -> dict[str, Any]:
    """The customer's journey stage and active scenarios, each with its one-line why."""
    return service.customer_journey(session, customer_id)


@router.get("/scenarios")
def get_scenarios(
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.read")),
) -> list[dict[str, Any]]:
    """Scenarios with their stage, rule and current members."""
    return service.list_scenarios(session)


@router.get("/journeys/funnel")
def get_funnel(
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.read")),
) -> list[dict[str, Any]]:
    """Customers per journey stage."""
    return service.funnel(session)
