"""REST routes of the customer groups domain (``/api/v1/groups``): every WeCom customer
group (客户群) with its activity, and one group with its members.

Reading needs ``customers.read``. The figures are those of ``siyu groups list|show --json``
(the same service functions); members' phone numbers and e-mail addresses are masked
unless the caller sees personal data (:func:`siyu.privacy.service.masker`), and an
unmasked read is audited.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require
from siyu.groups import service
from siyu.kit.openapi import API_ERRORS
from siyu.kit.web import get_session
from siyu.privacy import service as privacy

router = APIRouter(prefix="/api/v1", tags=["groups"], responses=API_ERRORS)


@router.get("/groups")
def list_groups(session: Session = Depends(get_session, scope="function"),
                _: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    """Every group: customers linked and external members and employees in it now, joins
    and leaves in 7 and 30 days, customers active in 7 days, group mass sends in 30 days."""
    return {"items": service.overview(session)}


@router.get("/groups/{chat_id}")
def show_group(request: Request,
               chat_id: str = Path(max_length=100, description="the group's WeCom chat id"),
               session: Session = Depends(get_session, scope="function"),
               principal: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    """One group's figures and its members (``member_list``: employees, then customers by
    joining time, with those who left); 404 for an unknown group."""
    group = service.detail(session, chat_id, show_pii=privacy.masker(principal).show_pii)
    privacy.audit_pii_read(session, principal, f"group:{group['chat_id']}",
                           ip=request.client.host if request.client else None)
    return group
