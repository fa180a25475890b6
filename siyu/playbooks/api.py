"""REST routes of the playbooks domain (``/api/v1/playbooks``, ``/api/v1/policy``).

Writing playbooks and the policy needs ``segments.write`` (the operators who build
audiences build the playbooks that act on them); reading needs ``customers.read``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require
from siyu.errors import NotFound
from siyu.kit.openapi import API_ERRORS
from siyu.kit.web import get_session
from siyu.playbooks import service

router = APIRouter(prefix="/api/v1", tags=["playbooks"], responses=API_ERRORS)


class FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=200_000, description="the playbook file (YAML or JSON)")
    file: str = Field("playbook.yaml", max_length=200)


@router.get("/playbooks")
def list_playbooks(session: Session = Depends(get_session, scope="function"),
                   _: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    """Every playbook with its live counters."""
    return {"items": service.list_playbooks(session)}


@router.post("/playbooks")
def apply_playbook(body: FileIn, session: Session = Depends(get_session, scope="function"),
                   principal: Principal = Depends(require("segments.write"))
                   ) -> dict[str, Any]:
    """Create or update the playbook the file names (422 naming file, step and reason)."""
    return service.apply(session, body.text, file=body.file, actor=principal.name)


@router.post("/playbooks/validate")
def validate_playbook(body: FileIn, _: Principal = Depends(require("customers.read"))
                      ) -> dict[str, Any]:
    """Check a file without storing it: ``{"ok": true, "spec": ...}`` or a 422."""
    return {"ok": True, "spec": service.parse_file(body.text, body.file).to_json()}


@router.get("/playbooks/{name}")
def show_playbook(name: str, session: Session = Depends(get_session, scope="function"),
                  _: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    return service.show(session, name)


@router.get("/playbooks/{name}/stats")
def playbook_stats(name: str, session: Session = Depends(get_session, scope="function"),
                   _: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    return service.stats(session, name)


@router.get("/playbooks/{name}/dry-run")
def playbook_dry_run(name: str, request: Request, days: int = Query(7, ge=1, le=365),
                     session: Session = Depends(get_session, scope="function"),
                     principal: Principal = Depends(require("customers.read"))
                     ) -> dict[str, Any]:
    """Who would get what, when (rolled back: nothing sent). Texts are masked like every
    other read: a key or role without the PII permission sees phone numbers and e-mail
    addresses hidden."""
    from siyu.privacy import service as privacy

    rows = service.dry_run(session, name, days=days,
                           timezone=str(request.app.state.settings.timezone))
    mask = privacy.masker(principal)
    return {"items": [{**row, "text": mask.text(row["text"]) if row["text"] else row["text"]}
                      for row in rows]}


@router.get("/customers/{customer_id}/contacts")
def contact_log(customer_id: int = Path(ge=1, le=2**63 - 1),
                session: Session = Depends(get_session, scope="function"),
                principal: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    """The customer's playbook contacts (sent, deferred, suppressed with reasons) and open
    tasks; 404 for a customer that does not exist (or was erased). Task notes are masked
    by role."""
    from siyu.customers import service as customers
    from siyu.privacy import service as privacy

    if not customers.customer_exists(session, customer_id):
        raise NotFound(f"no customer {customer_id}")
    mask = privacy.masker(principal)
    return {"items": service.contact_log(session, customer_id),
            "tasks": mask.deep(service.open_tasks(session, customer_id=customer_id))}


@router.get("/policy")
def policy_show(session: Session = Depends(get_session, scope="function"),
                _: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    return service.policy_show(session)
