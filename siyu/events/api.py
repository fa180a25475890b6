"""REST routes for ingesting orders and events (``/api/v1/orders``, ``/api/v1/events``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from siyu.auth.deps import Principal, require
from siyu.config import Settings
from siyu.db import run_unit
from siyu.events import service
from siyu.kit.openapi import API_ERRORS
from siyu.kit.web import read_batch

router = APIRouter(prefix="/api/v1", tags=["ingest"], responses=API_ERRORS)


def _doc(key: str, schema: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": [key],
        "properties": {key: {"type": "array", "maxItems": 10000,
                             "items": {"$ref": f"#/components/schemas/{schema}"}}},
    }}}}}


async def _ingest(request: Request, kind: service.RecordKind, partial: bool) -> dict[str, Any]:
    records = await read_batch(request, kind)
    settings: Settings = request.app.state.settings
    result = await run_in_threadpool(
        run_unit, request.app.state.sessions,
        lambda s: service.ingest(s, kind, records, settings=settings, partial=partial),
    )
    return result.to_dict()


@router.post("/orders", openapi_extra=_doc("orders", "OrderIn"))
async def post_orders(
    request: Request,
    partial: bool = Query(False, description="store the valid records and report the rest"),
    _: Principal = Depends(require("customers.write", scope="ingest")),
) -> dict[str, Any]:
    """Record orders (batches up to 10,000); a retried order id is stored once."""
    return await _ingest(request, "orders", partial)


@router.post("/events", openapi_extra=_doc("events", "EventIn"))
async def post_events(
    request: Request,
    partial: bool = Query(False, description="store the valid records and report the rest"),
    _: Principal = Depends(require("customers.write", scope="ingest")),
) -> dict[str, Any]:
    """Record events (batches up to 10,000); a retried event id is stored once."""
    return await _ingest(request, "events", partial)
