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
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers.models import Identity
from siyu.db import utcnow
from siyu.errors import InvalidInput, NotFound
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


def _window_sums(since: dt.datetime) -> tuple[Any, Any]:
    external = GroupMember.kind == "external"
    joined = func.sum(case((external & (GroupMember.joined_at >= since), 1), else_=0))
    left = func.sum(case((external & GroupMember.left_at.is_not(None)
                          & (GroupMember.left_at >= since), 1), else_=0))
    return joined, left


def activity(session: Session, *, days: int = 7, windows: Sequence[int] = (),
             now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Per group: customers in it now (``members``: external members linked to a customer),
    external members and employees in it now, who joined and left in the last ``days``
    (``joined`` / ``left``; and ``joined_{n}d`` / ``left_{n}d`` for each of ``windows``),
    and how many of its customers did anything else in that time (``active``).

    Set-based: one grouped query for the membership figures, one for the active customers,
    one for the groups, however many groups there are."""
    moment = now or utcnow()
    since = moment - dt.timedelta(days=days)
    current = GroupMember.left_at.is_(None)
    external = GroupMember.kind == "external"
    columns: list[Any] = [
        GroupMember.group_id,
        func.sum(case((current & external & GroupMember.customer_id.is_not(None), 1),
                      else_=0)),
        func.sum(case((current & external, 1), else_=0)),
        func.sum(case((current & (GroupMember.kind == "employee"), 1), else_=0)),
        *_window_sums(since)]
    for n in windows:
        columns.extend(_window_sums(moment - dt.timedelta(days=n)))
    figures = {row[0]: [int(v or 0) for v in row[1:]] for row in session.execute(
        select(*columns).group_by(GroupMember.group_id))}
    recent = (select(Event.id).where(Event.customer_id == GroupMember.customer_id,
                                     Event.ts >= since, Event.type.not_in([JOIN, LEAVE]))
              .exists())
    active = dict(session.execute(
        select(GroupMember.group_id, func.count(func.distinct(GroupMember.customer_id)))
        .where(current, external, GroupMember.customer_id.is_not(None), recent)
        .group_by(GroupMember.group_id)).all())
    out = []
    for group in session.scalars(select(CustomerGroup).order_by(CustomerGroup.status,
                                                                CustomerGroup.id)):
        values = figures.get(group.id) or [0] * (5 + 2 * len(windows))
        customers, externals, employees, joined, left = values[:5]
        n_active = int(active.get(group.id) or 0)
        row: dict[str, Any] = {
            "id": group.id, "chat_id": group.chat_id, "name": group.name,
            "owner": group.owner, "status": group.status,
            "created_at": group.created_at.isoformat() if group.created_at else None,
            "synced_at": group.synced_at.isoformat() if group.synced_at else None,
            "members": customers, "external": externals, "employees": employees,
            "joined": joined, "left": left, "active": n_active,
            "active_share": round(n_active / customers, 4) if customers else None}
        for i, n in enumerate(windows):
            row[f"joined_{n}d"], row[f"left_{n}d"] = values[5 + 2 * i], values[6 + 2 * i]
        out.append(row)
    return out


def overview(session: Session, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every group as ``siyu groups list --json`` and ``GET /api/v1/groups`` give it: the
    :func:`activity` figures for 7 days (with 7- and 30-day joins and leaves) and
    ``mass_sends_30d`` (:func:`mass_send_counts`)."""
    rows = activity(session, days=7, windows=(7, 30), now=now)
    sends = mass_send_counts(session, now=now)
    for r in rows:
        r["mass_sends_30d"] = sends.get(r["id"], {"created": 0, "sent": 0})
    return rows


def detail(session: Session, ref: str, *, show_pii: bool, now: dt.datetime | None = None
           ) -> dict[str, Any]:
    """One group (by chat id or name, :func:`find_group`) as ``siyu groups show --json`` and
    ``GET /api/v1/groups/{chat_id}`` give it: its :func:`activity` figures and
    ``member_list`` (:func:`members`; unless ``show_pii``, phone numbers and e-mail
    addresses masked wherever they appear, a nickname that is an address included)."""
    from siyu.kit.masking import mask_deep

    group = find_group(session, ref)
    [figures] = [r for r in activity(session, days=7, windows=(7, 30), now=now)
                 if r["id"] == group.id]
    listed = members(session, group, show_pii=show_pii)
    return {**figures, "member_list": listed if show_pii else mask_deep(listed)}


def find_group(session: Session, ref: str) -> CustomerGroup:
    """A group by its WeCom ``chat_id`` or its name (a name two groups share is refused
    with their chat ids, so the caller can say which)."""
    ref = (ref or "").strip()
    if not ref:
        raise InvalidInput("group: a chat id or a group name is required",
                           details=[{"field": "group", "reason": "required"}])
    group = session.scalar(select(CustomerGroup).where(CustomerGroup.chat_id == ref))
    if group is not None:
        return group
    named = list(session.scalars(select(CustomerGroup).where(CustomerGroup.name == ref)
                                 .order_by(CustomerGroup.status, CustomerGroup.id)))
    if not named:
        raise NotFound(f"no customer group with chat id or name {ref!r}",
                       details=[{"field": "group", "reason": "not found"}])
    active = [g for g in named if g.status == "active"]
    if len(active) == 1 or len(named) == 1:
        return active[0] if active else named[0]
    raise InvalidInput(f"group: {len(named)} groups are named {ref!r}; give the chat id "
                       f"({', '.join(g.chat_id for g in named)})",
                       details=[{"field": "group", "reason": "ambiguous name"}])


def members(session: Session, group: CustomerGroup, *, show_pii: bool,
            include_left: bool = True) -> list[dict[str, Any]]:
    """The group's members, employees first then customers by joining time: the customer's
    card (name, phone masked unless ``show_pii``) for linked external members."""
    from siyu.customers.service import customer_cards

    stmt = select(GroupMember).where(GroupMember.group_id == group.id)
    if not include_left:
        stmt = stmt.where(GroupMember.left_at.is_(None))
    rows = list(session.scalars(stmt.order_by(GroupMember.kind, GroupMember.joined_at,
                                              GroupMember.id)))
    cards = customer_cards(session, [m.customer_id for m in rows if m.customer_id],
                           show_pii=show_pii)
    out = []
    for m in rows:
        card = cards.get(m.customer_id) if m.customer_id else None
        out.append({"userid": m.userid, "kind": m.kind, "customer_id": m.customer_id,
                    "name": (card or {}).get("name"), "phone": (card or {}).get("phone"),
                    "tier": (card or {}).get("tier"),
                    "joined_at": m.joined_at.isoformat(),
                    "left_at": m.left_at.isoformat() if m.left_at else None})
    return out


def member_history(session: Session, group: CustomerGroup, *, days: int = 30,
                   timezone: str = "Asia/Shanghai", now: dt.datetime | None = None
                   ) -> list[tuple[dt.date, int]]:
    """External members in the group at the end of each of the last ``days`` local days
    (oldest first): from the stored join and leave times, one query."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    moment = now or utcnow()
    today = moment.astimezone(zone).date()
    spans = session.execute(select(GroupMember.joined_at, GroupMember.left_at).where(
        GroupMember.group_id == group.id, GroupMember.kind == "external")).all()
    out = []
    for back in range(days - 1, -1, -1):
        day = today - dt.timedelta(days=back)
        end = min(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone), moment)
        count = sum(1 for joined, left in spans
                    if joined < end and (left is None or left >= end))
        out.append((day, count))
    return out



GROUP_MASS = "wecom_group_mass"  # the outbox channel of a group mass send (客户群群发)
SEND_STATE_ZH = {"queued": "排队中", "sending": "发送中", "retry": "待重试",
                 "created": "已创建，待群主确认", "sent": "已发送", "failed": "失败",
                 "outcome_unknown": "结果未知"}


def mass_send_counts(session: Session, *, days: int = 30, now: dt.datetime | None = None
                     ) -> dict[int, dict[str, int]]:
    """Group mass sends of the last ``days`` per group id: ``{"created", "sent"}`` (created:
    every task WeCom accepted, confirmed or not; sent: those the owner confirmed). One query."""
    from siyu.channels.models import Delivery

    since = (now or utcnow()) - dt.timedelta(days=days)
    out: dict[int, dict[str, int]] = {}
    for content, state in session.execute(select(Delivery.content, Delivery.state).where(
            Delivery.channel == GROUP_MASS, Delivery.created_at >= since)):
        gid = (content or {}).get("group_id")
        if not isinstance(gid, int):
            continue
        row = out.setdefault(gid, {"created": 0, "sent": 0})
        row["created"] += state in ("created", "sent")
        row["sent"] += state == "sent"
    return out


def mass_sends(session: Session, group: CustomerGroup, *, limit: int = 20
               ) -> list[dict[str, Any]]:
    """The group's latest mass sends, newest first: when, which playbook, the text, state."""
    from siyu.channels.models import Delivery

    rows = session.scalars(select(Delivery).where(Delivery.channel == GROUP_MASS)
                           .order_by(Delivery.id.desc()).limit(2000))
    out = []
    for d in rows:
        content = d.content or {}
        if content.get("group_id") != group.id:
            continue
        out.append({"at": d.created_at, "playbook": content.get("playbook"),
                    "text": content.get("text") or "", "state": d.state,
                    "state_zh": SEND_STATE_ZH.get(d.state, d.state),
                    "error": d.last_error})
        if len(out) >= limit:
            break
    return out
