"""REST routes of the appointments domain (``/api/v1/appointments``) and the customer's
calendar file (``/appointments/{id}.ics?sig=``, a signed link that needs no login).

Booking, rescheduling, status changes and publishing need ``service.agent`` (advisors and
the staff above them; API keys with the ``service`` scope); reading needs
``customers.read``. A slot someone else holds answers 409 ``slot_taken`` with a Chinese
message the web chat and the console show as they are.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from siyu.appointments import service
from siyu.appointments.errors import AppointmentNotFound
from siyu.auth.deps import Principal, require
from siyu.kit.openapi import API_ERRORS
from siyu.kit.web import get_session

router = APIRouter(prefix="/api/v1/appointments", tags=["appointments"],
                   responses=API_ERRORS)
ics_router = APIRouter(include_in_schema=False)
BOOK = "service.agent"
READ = "customers.read"
IdPath = Path(ge=1, le=2**63 - 1)


def _tz(request: Request) -> str:
    return str(request.app.state.settings.timezone)


def ics_secret(request: Request) -> str:
    """This install's key for calendar links (stable: links already sent stay valid)."""
    from siyu.auth import service as auth_service

    return auth_service.purpose_key(request.app.state.settings, "appointment-ics",
                                    engine=request.app.state.engine).hex()


def _show_pii(principal: Principal) -> bool:
    from siyu.privacy import service as privacy

    return privacy.sees_pii(principal)


class ServiceTypeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)
    minutes: int = Field(ge=5, le=480)
    description: str | None = Field(default=None, max_length=200)


class SlotsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advisor_id: int = Field(ge=1, le=2**63 - 1)
    service_type_id: int = Field(ge=1, le=2**63 - 1)
    starts: list[dt.datetime] = Field(min_length=1, max_length=service.MAX_SLOTS_PER_PUBLISH)
    location: str | None = Field(default=None, max_length=100)


class BookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_id: int = Field(ge=1, le=2**63 - 1)
    customer_id: int = Field(ge=1, le=2**63 - 1)
    note: str | None = Field(default=None, max_length=500)
    confirm: bool = False


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_id: int = Field(ge=1, le=2**63 - 1)


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["confirmed", "cancelled", "attended", "no_show"]
    reason: str | None = Field(default=None, max_length=200)


@router.get("/service-types")
def list_service_types(session: Session = Depends(get_session, scope="function"),
                       _: Principal = Depends(require(READ))) -> dict[str, Any]:
    return {"items": [{"id": t.id, "name": t.name, "minutes": t.minutes,
                       "description": t.description} for t in service.service_types(session)]}


@router.post("/service-types")
def save_service_type(body: ServiceTypeIn,
                      session: Session = Depends(get_session, scope="function"),
                      _: Principal = Depends(require(BOOK))) -> dict[str, Any]:
    row = service.save_service_type(session, body.name, body.minutes,
                                    description=body.description)
    return {"id": row.id, "name": row.name, "minutes": row.minutes}


@router.get("/slots")
def list_slots(request: Request, advisor_id: int | None = Query(None, ge=1, le=2**63 - 1),
               service_type_id: int | None = Query(None, ge=1, le=2**63 - 1),
               free: bool = False, start: dt.datetime | None = Query(None, alias="from"),
               end: dt.datetime | None = Query(None, alias="to"),
               limit: int = Query(200, ge=1, le=2000),
               session: Session = Depends(get_session, scope="function"),
               _: Principal = Depends(require(READ))) -> dict[str, Any]:
    """Open slots by start time; ``free=true`` only those nobody holds."""
    rows = service.slots(session, advisor_ids=[advisor_id] if advisor_id else None,
                         service_type_id=service_type_id, start=start, end=end,
                         free_only=free, limit=limit, timezone=_tz(request))
    return {"items": [s.to_dict() for s in rows]}


@router.post("/slots", status_code=201)
def publish_slots(body: SlotsIn, session: Session = Depends(get_session, scope="function"),
                  _: Principal = Depends(require(BOOK))) -> dict[str, Any]:
    ids = service.publish_slots(session, body.advisor_id, body.service_type_id, body.starts,
                                location=body.location)
    return {"created": len(ids), "skipped": len(body.starts) - len(ids), "ids": ids}


@router.post("", status_code=201)
def book(body: BookIn, request: Request,
         session: Session = Depends(get_session, scope="function"),
         principal: Principal = Depends(require(BOOK))) -> dict[str, Any]:
    """Book a slot for a customer: 201 with the appointment, 409 ``slot_taken`` when the
    slot is held (however many requests race for it, one wins)."""
    appt = service.book(session, body.slot_id, body.customer_id,
                        channel="console" if principal.kind == "user" else "api",
                        booked_by=principal.user_id, note=body.note, confirm=body.confirm,
                        timezone=_tz(request))
    return _one(session, request, principal, appt.id)


@router.get("")
def list_appointments(request: Request,
                      advisor_id: int | None = Query(None, ge=1, le=2**63 - 1),
                      customer_id: int | None = Query(None, ge=1, le=2**63 - 1),
                      start: dt.datetime | None = Query(None, alias="from"),
                      end: dt.datetime | None = Query(None, alias="to"),
                      limit: int = Query(200, ge=1, le=2000),
                      session: Session = Depends(get_session, scope="function"),
                      principal: Principal = Depends(require(READ))) -> dict[str, Any]:
    rows = service.list_appointments(session, advisor_id=advisor_id, customer_id=customer_id,
                                     start=start, end=end, limit=limit)
    return {"items": service.describe(session, rows, show_pii=_show_pii(principal),
                                      timezone=_tz(request))}


def _one(session: Session, request: Request, principal: Principal, appointment_id: int
         ) -> dict[str, Any]:
    appt = service.get(session, appointment_id)
    out = service.describe(session, [appt], show_pii=_show_pii(principal),
                           timezone=_tz(request))[0]
    out["ics_url"] = service.ics_path(ics_secret(request), appt.id)
    return out


@router.get("/{appointment_id}")
def show(request: Request, appointment_id: int = IdPath,
         session: Session = Depends(get_session, scope="function"),
         principal: Principal = Depends(require(READ))) -> dict[str, Any]:
    return _one(session, request, principal, appointment_id)


@router.post("/{appointment_id}/reschedule")
def reschedule(body: RescheduleIn, request: Request, appointment_id: int = IdPath,
               session: Session = Depends(get_session, scope="function"),
               principal: Principal = Depends(require(BOOK))) -> dict[str, Any]:
    service.reschedule(session, appointment_id, body.slot_id, timezone=_tz(request))
    return _one(session, request, principal, appointment_id)


@router.post("/{appointment_id}/status")
def set_status(body: StatusIn, request: Request, appointment_id: int = IdPath,
               session: Session = Depends(get_session, scope="function"),
               principal: Principal = Depends(require(BOOK))) -> dict[str, Any]:
    """Confirm, cancel, or record attended / no-show."""
    service.set_status(session, appointment_id, body.status, reason=body.reason,
                       timezone=_tz(request))
    return _one(session, request, principal, appointment_id)


@ics_router.get("/appointments/{appointment_id}.ics")
def calendar_file(request: Request, appointment_id: int = IdPath,
                  sig: str = Query("", max_length=64),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    """The customer's calendar file: the signature names the appointment (404 otherwise,
    the same answer as for an appointment that does not exist)."""
    if not service.check_ics_signature(ics_secret(request), appointment_id, sig):
        raise AppointmentNotFound("链接无效或已失效")
    body = service.ics(session, appointment_id)
    return Response(body, media_type="text/calendar; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="appointment-{appointment_id}.ics"',
        "Cache-Control": "no-store"})
