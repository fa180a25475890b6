"""REST routes of the privacy domain: data-subject export and erasure (PIPL arts. 45, 47)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require_scope
from siyu.kit.openapi import API_ERRORS, error_responses
from siyu.kit.web import get_session
from siyu.privacy import service

router = APIRouter(prefix="/api/v1", tags=["privacy"], responses=API_ERRORS)

# Larger ids cannot name a row (64-bit keys): refused as input, not looked up.
CustomerId = Path(ge=1, le=2**63 - 1, description="siyu customer id")

_ERRORS = error_responses(
    401, 403, 404, 422,
    s403="the caller may not export or erase personal data",
    s404="no such customer (or already erased)",
    s422="the id is not a valid customer id")


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.get("/customers/{customer_id}/export", responses=_ERRORS)
def export_customer(
    request: Request,
    customer_id: int = CustomerId,
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require_scope("admin")),
) -> dict[str, Any]:
    """Everything siyu holds on the person, as one JSON document (administrators and
    full-access keys only; the export is recorded in the audit log)."""
    service.check_may_export(principal)
    return service.export_customer(session, customer_id, actor=principal, ip=_ip(request))


@router.post("/customers/{customer_id}/erase", responses=_ERRORS)
def erase_customer(
    request: Request,
    customer_id: int = CustomerId,
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require_scope("admin")),
) -> dict[str, Any]:
    """Irreversibly erase the person's personal data (administrators and full-access keys
    only). Orders stay, anonymous, for accounting; do-not-contact is kept as a keyed hash.
    Repeating it is safe. Answers what was removed per table."""
    service.check_may_erase(principal)
    report = service.erase_customer(session, request.app.state.settings, customer_id,
                                    actor=principal, ip=_ip(request))
    # Committed here, not by get_session: the WAL checkpoint / VACUUM that follows must see
    # the erasure, and VACUUM cannot run inside the request's transaction.
    session.commit()
    service.reclaim_space(request.app.state.engine, report, vacuum=False)
    return report.to_dict()
