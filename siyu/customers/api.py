"""REST routes of the customers domain (``/api/v1/customers``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require
from siyu.config import Settings
from siyu.customers import identity, service
from siyu.db import run_unit
from siyu.kit.openapi import API_ERRORS
from siyu.kit.web import get_session, read_batch
from siyu.privacy import service as privacy

router = APIRouter(prefix="/api/v1", tags=["customers"], responses=API_ERRORS)

_BATCH_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["customers"],
            "properties": {"customers": {"type": "array", "maxItems": 10000,
                                         "items": {"$ref": "#/components/schemas/CustomerIn"}}},
        }}},
    }
}


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("/customers", openapi_extra=_BATCH_DOC)
async def upsert_customers(
    request: Request,
    partial: bool = Query(False, description="store the valid records and report the rest"),
    _: Principal = Depends(require("customers.write", scope="ingest")),
) -> dict[str, Any]:
    """Create or update customers by brand id and identities (batches up to 10,000)."""
    records = await read_batch(request, "customers")
    settings = _settings(request)
    result = await run_in_threadpool(
        run_unit, request.app.state.sessions,
        lambda s: service.upsert_customers(s, records, settings=settings, partial=partial),
    )
    return result.to_dict()


@router.get("/customers")
def list_customers(
    request: Request,
    identity_param: str | None = Query(None, alias="identity",
                                       description="kind:value, e.g. phone:+8613800138000"),
    q: str | None = Query(None, max_length=100),
    tag: str | None = Query(None, max_length=60),
    tier: str | None = Query(None, max_length=30),
    city: str | None = Query(None, max_length=50),
    attr: list[str] = Query(default_factory=list, description="name=value, repeatable"),
    page: int = Query(1, ge=1),
    per_page: int = Query(20, ge=1, le=200),
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require("customers.read")),
) -> dict[str, Any]:
    """Look a customer up by identity, or list customers with filters."""
    show_pii = privacy.sees_pii(principal)
    region = _settings(request).default_phone_region
    if identity_param is not None:
        kind, value = service.parse_identity_param(identity_param)
        cid = service.find_by_identity(session, kind, value, region=region)
        view = service.get_customer_360(session, cid, show_pii=show_pii)
        privacy.audit_pii_read(session, principal, f"customer:{view['id']}", ip=_ip(request))
        return view
    attrs = dict(a.split("=", 1) for a in attr if "=" in a)
    result = service.list_customers(session, q=q, tag=tag, attrs=attrs, tier=tier, city=city,
                                    page=page, per_page=per_page, show_pii=show_pii,
                                    region=region)
    return {"items": result.items, "total": result.total, "page": result.page,
            "per_page": result.per_page, "pages": result.pages}


@router.get("/customers/{customer_id}")
def get_customer(
    customer_id: int,
    request: Request,
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require("customers.read")),
) -> dict[str, Any]:
    """The customer 360: profile, identities, tags, consent, order/event counts, merges.
    Identities masked unless the caller sees personal data; unmasked reads are audited."""
    view = service.get_customer_360(session, customer_id, show_pii=privacy.sees_pii(principal))
    privacy.audit_pii_read(session, principal, f"customer:{view['id']}", ip=_ip(request))
    return view


@router.get("/customers/{customer_id}/timeline")
def get_timeline(
    customer_id: int,
    limit: int = Query(100, ge=1, le=1000),
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require("customers.read")),
) -> list[dict[str, Any]]:
    """Orders, events and merges, newest first; personal values inside masked unless the
    caller sees personal data."""
    mask = privacy.masker(principal)
    entries = service.timeline(session, customer_id, limit=limit)
    return [{**e, "at": e["at"].isoformat(), "summary": mask.text(e["summary"]),
             "data": mask.deep(e["data"])} for e in entries]


@router.post("/customers/{customer_id}/tags/{tag}")
def add_tag(
    customer_id: int, tag: str,
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require("customers.write")),
) -> dict[str, Any]:
    service.add_tag(session, customer_id, tag, source=principal.name)
    return {"ok": True}


@router.delete("/customers/{customer_id}/tags/{tag}")
def remove_tag(
    customer_id: int, tag: str,
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.write")),
) -> dict[str, Any]:
    return {"removed": service.remove_tag(session, customer_id, tag)}


@router.post("/merges/{merge_id}/undo")
def undo_merge(
    merge_id: int,
    request: Request,
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require("merges.undo")),
) -> dict[str, Any]:
    merge = identity.undo_merge(session, merge_id, actor=principal.name)
    privacy.record_audit(session, actor=principal, action="merge.undo",
                         target=f"merge:{merge.id}", ip=_ip(request),
                         detail={"kept_id": merge.kept_id, "merged_id": merge.merged_id})
    return {"id": merge.id, "kept_id": merge.kept_id, "merged_id": merge.merged_id,
            "undone_at": merge.undone_at.isoformat() if merge.undone_at else None}


@router.get("/merge-conflicts")
def list_conflicts(
    status: str = Query("open", pattern="^(open|merged|kept_apart)$"),
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require("customers.read")),
) -> list[dict[str, Any]]:
    """Customers sharing an identity but differing on one that names a single person;
    identity values masked unless the caller sees personal data."""
    return service.list_conflicts(session, status=status, show_pii=privacy.sees_pii(principal))


@router.post("/merge-conflicts/{conflict_id}/{decision}")
def resolve_conflict(
    conflict_id: int,
    decision: str,
    request: Request,
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require("customers.write")),
) -> dict[str, Any]:
    identity.resolve_conflict(session, conflict_id, decision=decision, actor=principal.name)
    privacy.record_audit(session, actor=principal, action=f"merge.conflict.{decision}",
                         target=f"merge_conflict:{conflict_id}", ip=_ip(request))
    return {"id": conflict_id, "decision": decision}
