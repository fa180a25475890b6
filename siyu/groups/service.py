"""Keep customer groups current and measure them. Functions take the caller's session and
never commit.

WeCom tells siyu a group changed (the ``change_external_chat`` callback: ``create``,
``update`` with ``add_member`` / ``del_member`` ..., ``dismiss``); siyu then reads the group
(``externalcontact/groupchat/get``) and :func:`apply_group` compares its member list with
what is stored. Each customer who joined gets ``join_group`` on their timeline (the journey's
入群 stage rule and playbook triggers read it), each who left ``leave_group``; a customer
siyu did not know is created from their ``external_userid``, as the add-contact callback
does. A whole sync (``groupchat/list``) runs the same comparison for every group.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers.models import Identity
from siyu.db import utcnow
from siyu.errors import InvalidInput
from siyu.events.models import Event
from siyu.groups.models import CustomerGroup, GroupMember

JOIN, LEAVE = "join_group", "leave_group"
EXTERNAL_KIND = "wecom_external_userid"
_EXTERNAL_TYPE = 2  # groupchat/get member_list[].type: 1 employee, 2 external contact


def _moment(value: Any, default: dt.datetime) -> dt.datetime:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return default


def _group_row(session: Session, chat_id: str, now: dt.datetime) -> CustomerGroup:
    group = session.scalar(select(CustomerGroup).where(CustomerGroup.chat_id == chat_id))
    if group is None:
        group = CustomerGroup(chat_id=chat_id, status="active", synced_at=now)
        session.add(group)
        session.flush()
    return group


def _events(session: Session, group: CustomerGroup, changes: list[tuple[str, str, dt.datetime]],
            *, settings: Settings) -> None:
    """``join_group`` / ``leave_group`` for external members, through the events ingest (so
    an unknown external contact becomes a customer, and the hooks see it)."""
    from siyu.events.service import ingest

    if not changes:
        return
    records = [{"id": f"group:{group.chat_id}:{userid}:{kind}:{int(at.timestamp())}"[:100],
                "identities": [{"kind": EXTERNAL_KIND, "value": userid}], "type": kind,
                "ts": at.isoformat(), "channel": "wecom",
                "properties": {"chat_id": group.chat_id, "group": group.name or ""}}
               for kind, userid, at in changes]
    for start in range(0, len(records), 500):
        ingest(session, "events", records[start:start + 500], settings=settings,
               source="wecom")


def _link_customers(session: Session, group: CustomerGroup) -> None:
    pending = list(session.scalars(select(GroupMember).where(
        GroupMember.group_id == group.id, GroupMember.kind == "external",
        GroupMember.customer_id.is_(None))))
    if not pending:
        return
    owners = dict(session.execute(select(Identity.value, Identity.customer_id).where(
        Identity.kind == EXTERNAL_KIND, Identity.value.in_([m.userid for m in pending]))).all())
    for member in pending:
        member.customer_id = owners.get(member.userid)
    session.flush()


def apply_group(session: Session, detail: Any, *, settings: Settings,
                now: dt.datetime | None = None) -> dict[str, int]:
    """Store ``groupchat/get``'s ``group_chat``: the group, its members, who joined and who
    left since the last look. Returns ``{"joined", "left", "members"}`` (external members)."""
    if not isinstance(detail, dict) or not isinstance(detail.get("chat_id"), str) \
            or not detail["chat_id"] or len(detail["chat_id"]) > 64:
        raise InvalidInput("group_chat.chat_id: required (at most 64 characters)",
                           details=[{"field": "group_chat.chat_id", "reason": "required"}])
    moment = now or utcnow()
    group = _group_row(session, detail["chat_id"], moment)
    name = detail.get("name")
    group.name = str(name)[:100] if name else group.name
    group.owner = str(detail.get("owner") or "")[:64] or group.owner
    group.created_at = _moment(detail.get("create_time"), group.created_at or moment)
    group.status, group.synced_at = "active", moment
    stored = {m.userid: m for m in session.scalars(select(GroupMember).where(
        GroupMember.group_id == group.id))}
    seen: set[str] = set()
    changes: list[tuple[str, str, dt.datetime]] = []
    for item in detail.get("member_list") or []:
        if not isinstance(item, dict) or not item.get("userid"):
            continue
        userid = str(item["userid"])[:64]
        kind = "external" if item.get("type") == _EXTERNAL_TYPE else "employee"
        joined = _moment(item.get("join_time"), moment)
        seen.add(userid)
        row = stored.get(userid)
        if row is None:
            session.add(GroupMember(group_id=group.id, userid=userid, kind=kind,
                                    joined_at=joined))
        elif row.left_at is not None:
            row.left_at, row.joined_at = None, joined
        else:
            continue
        if kind == "external":
            changes.append((JOIN, userid, joined))
    for userid, row in stored.items():
        if userid not in seen and row.left_at is None:
            row.left_at = moment
            if row.kind == "external":
                changes.append((LEAVE, userid, moment))
    session.flush()
    _events(session, group, changes, settings=settings)
    _link_customers(session, group)
    members = session.scalar(select(func.count()).select_from(GroupMember).where(
        GroupMember.group_id == group.id, GroupMember.kind == "external",
        GroupMember.left_at.is_(None))) or 0
    return {"joined": sum(1 for c in changes if c[0] == JOIN),
            "left": sum(1 for c in changes if c[0] == LEAVE), "members": int(members)}


def dismiss(session: Session, chat_id: str, *, settings: Settings,
            now: dt.datetime | None = None) -> int:
    """The group was dismissed: everyone still in it has left. Returns how many customers."""
    moment = now or utcnow()
    group = session.scalar(select(CustomerGroup).where(CustomerGroup.chat_id == chat_id))
    if group is None:
        return 0
    group.status, group.synced_at = "dismissed", moment
    still = list(session.scalars(select(GroupMember).where(
        GroupMember.group_id == group.id, GroupMember.left_at.is_(None))))
    for row in still:
        row.left_at = moment
    session.flush()
    changes = [(LEAVE, m.userid, moment) for m in still if m.kind == "external"]
    _events(session, group, changes, settings=settings)
    return len(changes)


def activity(session: Session, *, days: int = 7, now: dt.datetime | None = None
             ) -> list[dict[str, Any]]:
    """Per group: customers in it now, employees, who joined and left in the last ``days``,
    and how many of its customers did anything else in that time (active)."""
    moment = now or utcnow()
    since = moment - dt.timedelta(days=days)
    out = []
    for group in session.scalars(select(CustomerGroup).order_by(CustomerGroup.status,
                                                                CustomerGroup.id)):
        rows = list(session.scalars(select(GroupMember).where(
            GroupMember.group_id == group.id)))
        current = [m for m in rows if m.left_at is None]
        customers = [m.customer_id for m in current if m.kind == "external" and m.customer_id]
        active = 0
        if customers:
            active = session.scalar(select(func.count(func.distinct(Event.customer_id))).where(
                Event.customer_id.in_(customers), Event.ts >= since,
                Event.type.not_in([JOIN, LEAVE]))) or 0
        out.append({
            "chat_id": group.chat_id, "name": group.name, "owner": group.owner,
            "status": group.status, "members": len(customers),
            "employees": sum(1 for m in current if m.kind == "employee"),
            "joined": sum(1 for m in rows if m.kind == "external" and m.joined_at >= since),
            "left": sum(1 for m in rows if m.kind == "external" and m.left_at is not None
                        and m.left_at >= since),
            "active": int(active),
            "active_share": round(int(active) / len(customers), 4) if customers else None,
        })
    return out
