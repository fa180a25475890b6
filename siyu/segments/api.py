"""REST routes of the segments domain (``/api/v1/segments``)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.deps import Principal, require
from siyu.kit import csvsafe
from siyu.kit.openapi import API_ERRORS, CSV_RESPONSE
from siyu.kit.web import get_session
from siyu.privacy import service as privacy
from siyu.segments import service

router = APIRouter(prefix="/api/v1/segments", tags=["segments"], responses=API_ERRORS)


class RuleIn(BaseModel):
    """A rule as text (``rule``) or in its JSON form (``rule_json``): exactly one."""

    model_config = ConfigDict(extra="forbid")

    rule: str | None = Field(None, max_length=4000,
                             examples=['tier in ("VIP") and orders(last 30d) >= 2'])
    rule_json: Any = Field(None, examples=[{"field": "orders", "cmp": ">=", "value": 3}])


class SegmentIn(RuleIn):
    name: str = Field(max_length=100)


class SegmentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=100)
    rule: str | None = Field(None, max_length=4000)
    rule_json: Any = None


def _tz(request: Request) -> str:
    return str(request.app.state.settings.timezone)


@router.post("/count")
def count(
    body: RuleIn,
    request: Request,
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.read")),
) -> dict[str, Any]:
    """Count the active customers matching a rule, with its canonical text and Chinese
    description. A refused rule answers 422 with ``position`` (text) or ``path`` (JSON),
    ``message`` and ``message_zh``."""
    rule = service.read_rule(body.rule, body.rule_json)
    return service.count_rule(session, rule, timezone=_tz(request)).to_dict()


@router.get("")
def list_segments(
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.read")),
) -> dict[str, Any]:
    """Every saved segment with its size and size history."""
    return {"items": service.list_segments(session)}


@router.post("", status_code=201)
def create_segment(
    body: SegmentIn,
    request: Request,
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require("segments.write")),
) -> dict[str, Any]:
    """Save a segment; its members are computed at once."""
    rule = service.read_rule(body.rule, body.rule_json)
    segment = service.create_segment(session, body.name, rule, created_by=principal.name,
                                     timezone=_tz(request))
    return service.segment_to_dict(segment)


@router.get("/{segment_id}")
def get_segment(
    segment_id: int,
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.read")),
) -> dict[str, Any]:
    segment = service.get_segment(session, segment_id)
    history = service.size_history(session, [segment.id])[segment.id]
    return {**service.segment_to_dict(segment), "history": history}


@router.patch("/{segment_id}")
def update_segment(
    segment_id: int,
    body: SegmentPatch,
    request: Request,
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("segments.write")),
) -> dict[str, Any]:
    """Rename a segment and/or replace its rule (applied at once)."""
    rule = (service.read_rule(body.rule, body.rule_json)
            if body.rule is not None or body.rule_json is not None else None)
    segment = service.update_segment(session, segment_id, name=body.name, rule=rule,
                                     timezone=_tz(request))
    return service.segment_to_dict(segment)


@router.delete("/{segment_id}", status_code=204)
def delete_segment(
    segment_id: int,
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("segments.write")),
) -> Response:
    service.delete_segment(session, segment_id)
    return Response(status_code=204)


@router.post("/{segment_id}/refresh")
def refresh_segment(
    segment_id: int,
    request: Request,
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("segments.write")),
) -> dict[str, Any]:
    """Re-evaluate the segment now and record who entered and left."""
    from siyu.db import utcnow

    return service.refresh_segment(session, segment_id, now=utcnow(),
                                   timezone=_tz(request)).to_dict()


@router.get("/{segment_id}/members")
def members(
    segment_id: int,
    page: int = Query(1, ge=1, le=1_000_000),
    per_page: int = Query(50, ge=1, le=500),
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require("customers.read")),
) -> dict[str, Any]:
    """One page of members (by customer id); phones masked unless the caller may see PII."""
    return service.members(session, segment_id, page=page, per_page=per_page,
                           show_pii=privacy.sees_pii(principal)).to_dict()


@router.get("/{segment_id}/changes")
def changes(
    segment_id: int,
    after_id: int = Query(0, ge=0, description="return changes with a larger id"),
    kind: str | None = Query(None, pattern="^(entered|left)$"),
    limit: int = Query(100, ge=1, le=1000),
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.read")),
) -> dict[str, Any]:
    """Who entered and left, oldest first; page with ``after_id`` = the last id seen."""
    items = service.changes(session, segment_id, after_id=after_id, kind=kind, limit=limit)
    return {"items": [c.to_dict() for c in items],
            "next_after_id": items[-1].id if items else after_id}


@router.get("/{segment_id}/export.csv", response_class=StreamingResponse,
            responses=CSV_RESPONSE)
def export_csv(
    segment_id: int,
    request: Request,
    session: Session = Depends(get_session, scope="function"),
    principal: Principal = Depends(require("customers.read")),
) -> StreamingResponse:
    """The members as CSV (客户编号, 品牌客户号, 姓名, masked 手机号), UTF-8 with a
    byte-order mark so that Excel shows the Chinese, streamed; the export is recorded in
    the audit log."""
    segment = service.get_segment(session, segment_id)
    privacy.record_audit(session, actor=principal, action="segment.export",
                         target=f"segment:{segment.id}", detail={"members": segment.size},
                         ip=request.client.host if request.client else None)
    session.commit()
    factory: sessionmaker[Session] = request.app.state.sessions

    def rows() -> Iterator[bytes]:
        # The request's session ends with the handler; the stream reads with its own.
        with factory() as own:
            buf = io.StringIO()
            buf.write(csvsafe.BOM)
            writer = csvsafe.writer(buf)
            writer.writerow(service.EXPORT_HEADER)
            for batch in service.export_rows(own, segment.id):
                writer.writerows(batch)
                yield buf.getvalue().encode("utf-8")
                buf.seek(0)
                buf.truncate()
            tail = buf.getvalue()
            if tail:
                yield tail.encode("utf-8")

    filename = f"segment-{segment.id}.csv"
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
