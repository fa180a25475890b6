"""REST routes of the service desk: conversations and messages, agent actions, metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from siyu.auth.deps import Principal, require
from siyu.customers import service as customers
from siyu.errors import Forbidden, NotFound
from siyu.kit.openapi import API_ERRORS
from siyu.kit.web import get_session
from siyu.service import metrics as desk_metrics
from siyu.service import service as desk
from siyu.service.models import Conversation

router = APIRouter(prefix="/api/v1", tags=["service"], responses=API_ERRORS)
# Conversations are read by analysts' keys and by the desk integrations' keys alike.
CONVERSATION_SCOPES = ("read", "service")


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=desk.MAX_TEXT)


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_user_id: int


class AgentStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(None, pattern="^(online|away|offline)$")
    capacity: int | None = Field(None, ge=1, le=50)
    skills: list[str] | None = Field(None, max_length=10,
                                     description="skill groups: " + ", ".join(desk.SKILL_GROUPS))


def _staff(principal: Principal) -> int:
    """Agent actions are done by a person (a console session), not by an API key."""
    if principal.user_id is None:
        raise Forbidden("agent actions need a signed-in staff user, not an API key")
    return principal.user_id


@router.get("/conversations")
def list_conversations(
    customer_id: int = Query(..., ge=1),
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.read", scope=CONVERSATION_SCOPES)),
) -> dict[str, Any]:
    """The customer's conversations, newest first."""
    if not customers.customer_exists(session, customer_id):
        raise NotFound(f"no customer {customer_id}")
    return {"items": desk.conversations_of(session, customer_id)}


@router.get("/conversations/{conversation_id}")
def get_conversation(
    conversation_id: int,
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.read", scope=CONVERSATION_SCOPES)),
) -> dict[str, Any]:
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"no conversation {conversation_id}")
    return desk.conversation_to_dict(conv)


@router.get("/conversations/{conversation_id}/messages")
def list_messages(
    conversation_id: int,
    after_id: int = Query(0, ge=0),
    session: Session = Depends(get_session, scope="function"),
    _: Principal = Depends(require("customers.read", scope=CONVERSATION_SCOPES)),
) -> dict[str, Any]:
    """The conversation's messages, oldest first (``after_id`` for the ones after it)."""
    return {"items": desk.messages_of(session, conversation_id, after_id=after_id)}


@router.post("/conversations/{conversation_id}/take")
def take(conversation_id: int, session: Session = Depends(get_session, scope="function"),
         principal: Principal = Depends(require("service.agent"))) -> dict[str, Any]:
    return desk.conversation_to_dict(desk.take(session, conversation_id, _staff(principal)))


@router.post("/conversations/{conversation_id}/reply")
def reply(conversation_id: int, body: ReplyIn,
          session: Session = Depends(get_session, scope="function"),
          principal: Principal = Depends(require("service.agent"))) -> dict[str, Any]:
    message_id = desk.agent_reply(session, conversation_id, _staff(principal), body.text)
    return {"message_id": message_id}


@router.post("/conversations/{conversation_id}/transfer")
def transfer(conversation_id: int, body: TransferIn,
             session: Session = Depends(get_session, scope="function"),
             principal: Principal = Depends(require("service.agent"))) -> dict[str, Any]:
    conv = desk.transfer(session, conversation_id, to_user_id=body.to_user_id,
                         by_user_id=_staff(principal))
    return desk.conversation_to_dict(conv)


@router.post("/conversations/{conversation_id}/close")
def close(conversation_id: int, session: Session = Depends(get_session, scope="function"),
          principal: Principal = Depends(require("service.agent"))) -> dict[str, Any]:
    conv = desk.close(session, conversation_id, actor=f"user:{_staff(principal)}")
    return desk.conversation_to_dict(conv)


@router.get("/service/queue")
def queue(session: Session = Depends(get_session, scope="function"),
          principal: Principal = Depends(require("service.agent"))) -> dict[str, Any]:
    return desk.queue(session, user_id=principal.user_id)


@router.put("/service/agents/me")
def agent_status(body: AgentStatusIn, session: Session = Depends(get_session, scope="function"),
                 principal: Principal = Depends(require("service.agent"))) -> dict[str, Any]:
    agent = desk.set_agent_status(session, _staff(principal), body.status, body.capacity,
                                  body.skills)
    return {"user_id": agent.user_id, "status": agent.status, "capacity": agent.capacity,
            "skills": list(agent.skills or [])}


@router.get("/service/metrics")
def metrics(days: int = Query(30, ge=1, le=365),
            session: Session = Depends(get_session, scope="function"),
            _: Principal = Depends(require("customers.read"))) -> dict[str, Any]:
    """Bot resolution and hand-off rates, first response time, CSAT by agent and intent."""
    return desk_metrics.summary(session, days=days)
