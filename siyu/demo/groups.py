"""The demo brand's WeCom customer groups (客户群), from the history the generator wrote.

The generated history already has every ``join_group`` event (a customer who added an
advisor on WeCom joins one of :data:`siyu.demo.catalog.GROUPS` a few days later, with the
group's name in the event): the journey's 入群 stage counts them. This stores the groups
those events name, as a sync from WeCom would have left them:

* each group with a WeCom-like ``chat_id``, its owner (an advisor, round robin; the owner's
  userid is the advisor's username, as the customer's advisor is the sender of a mass
  send), created a few days before its first member joined;
* every customer who joined, at the moment of their ``join_group`` event, as an external
  member (``userid`` their ``wecom_external_userid``); the owner as the employee member;
* a few customers (:data:`LEAVE_SHARE`) left again some days later: their membership is
  closed and a ``leave_group`` event is on their timeline, as :func:`siyu.groups.service.
  apply_group` writes it;
* one group playbook, 燕麦打卡早安提醒 (``audience: {group: ...}`` the two oat check-in
  groups, every morning at 07:30), applied through the playbooks service, with the group
  mass sends of its last :data:`SEND_DAYS` mornings: confirmed and sent by the owner, the
  latest still ``created`` (waiting for the owner) when it went out less than two hours ago.

Deterministic for a seed; a few seconds at most for the largest demo.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.demo import catalog

LEAVE_SHARE = 0.08
SEND_DAYS = 14
PLAYBOOK_NAME = "燕麦打卡早安提醒"
OAT_GROUPS = ("禾源燕麦打卡 1 群", "禾源燕麦打卡 2 群")
PLAYBOOK = f"""\
name: {PLAYBOOK_NAME}
status: active
description: 每天早上 7:30 在两个燕麦打卡群里提醒打卡（群主在企业微信里确认后发出）
trigger: {{schedule: "30 7 * * *"}}
audience: {{group: [{", ".join(OAT_GROUPS)}]}}
steps:
  - send:
      channel: wecom_group_mass
      template: >-
        早上好！今天也别忘了燕麦早餐打卡～{{{{ group.name }}}}的
        {{{{ group.members }}}} 位伙伴一起坚持，连续打卡 7 天可领 50 积分。
"""
_TEXT = ("早上好！今天也别忘了燕麦早餐打卡～{name}的 {members} 位伙伴一起坚持，"
         "连续打卡 7 天可领 50 积分。")


@dataclass
class GroupsSeed:
    groups: int = 0
    members: dict[str, int] = field(default_factory=dict)
    left: int = 0
    sends: int = 0
    seconds: float = 0.0


def chat_id(index: int) -> str:
    """A WeCom-like chat id for the demo's group ``index``."""
    return f"wrDemoHeYuan{index + 1:02d}GroupChatAAAAAA"


def seed_demo_groups(session: Session, *, now: dt.datetime, seed: int = 42,
                     timezone: str = "Asia/Shanghai") -> GroupsSeed:
    """Store the demo's groups, members and group mass sends (see the module docstring)."""
    from siyu.auth.models import User
    from siyu.customers.models import Identity
    from siyu.db import utcnow
    from siyu.events.models import Event
    from siyu.groups.models import CustomerGroup, GroupMember
    from siyu.kit.bulk import bulk_insert

    started = time.perf_counter()
    out = GroupsSeed()
    rng = random.Random(seed * 71 + 5)
    joins: dict[str, dict[int, dt.datetime]] = defaultdict(dict)
    for cid, ts, props in session.execute(select(Event.customer_id, Event.ts, Event.properties)
                                          .where(Event.type == "join_group")
                                          .order_by(Event.ts, Event.id)):
        name = (props or {}).get("group")
        if isinstance(name, str) and name and int(cid) not in joins[name]:
            joins[name][int(cid)] = ts
    if not joins:
        return out
    everyone = sorted({c for members in joins.values() for c in members})
    externals: dict[int, str] = {}
    for start in range(0, len(everyone), 5000):
        for cid, value in session.execute(
                select(Identity.customer_id, Identity.value).where(
                    Identity.customer_id.in_(everyone[start:start + 5000]),
                    Identity.kind == "wecom_external_userid").order_by(Identity.id)):
            externals.setdefault(int(cid), value)
    owners = list(session.scalars(select(User.username).where(User.role == "agent")
                                  .order_by(User.id))) or ["admin"]
    names = [n for n in catalog.GROUPS if n in joins] + sorted(set(joins) - set(catalog.GROUPS))
    members: list[dict[str, Any]] = []
    leaves: list[dict[str, Any]] = []
    synced = utcnow() if now > utcnow() else now
    for index, name in enumerate(names):
        first = min(joins[name].values())
        created = first - dt.timedelta(days=rng.uniform(1, 6))
        owner = owners[index % len(owners)]
        group = CustomerGroup(chat_id=chat_id(index), name=name, owner=owner, status="active",
                              created_at=created, synced_at=synced)
        session.add(group)
        session.flush()
        members.append({"group_id": group.id, "userid": owner, "kind": "employee",
                        "customer_id": None, "joined_at": created, "left_at": None})
        count = 0
        for cid, joined in joins[name].items():
            userid = externals.get(cid)
            if userid is None:
                continue
            left = None
            if rng.random() < LEAVE_SHARE:
                span = (now - joined).total_seconds()
                if span > 2 * 86400:
                    left = joined + dt.timedelta(seconds=rng.uniform(86400, span - 3600))
            members.append({"group_id": group.id, "userid": userid, "kind": "external",
                            "customer_id": cid, "joined_at": joined, "left_at": left})
            if left is not None:
                out.left += 1
                leaves.append({
                    "id": f"group:{group.chat_id}:{userid}:leave_group:{int(left.timestamp())}"
                          [:100], "customer_id": cid, "type": "leave_group", "ts": left,
                    "channel": "wecom", "properties": {"chat_id": group.chat_id,
                                                       "group": name},
                    "created_at": left})
            else:
                count += 1
        out.members[name] = count
    bulk_insert(session, GroupMember.__table__, members)  # type: ignore[arg-type]
    bulk_insert(session, Event.__table__, leaves)  # type: ignore[arg-type]
    out.groups = len(names)
    out.sends = _group_playbook(session, now=now, timezone=timezone)
    session.flush()
    out.seconds = time.perf_counter() - started
    return out


def _group_playbook(session: Session, *, now: dt.datetime, timezone: str) -> int:
    """Apply 燕麦打卡早安提醒 and store the group mass sends of its last mornings, keyed as
    :mod:`siyu.playbooks.group_sends` keys them (the live schedule repeats none)."""
    from siyu.channels.models import Delivery
    from siyu.groups.models import CustomerGroup, GroupMember
    from siyu.kit.bulk import bulk_insert
    from siyu.playbooks import service as playbooks
    from siyu.playbooks.models import Playbook

    groups = list(session.scalars(select(CustomerGroup).where(
        CustomerGroup.name.in_(OAT_GROUPS)).order_by(CustomerGroup.id)))
    if not groups:
        return 0
    playbooks.apply(session, PLAYBOOK, file="demo/燕麦打卡早安提醒.yaml", actor="demo")
    playbook = session.scalars(select(Playbook).where(Playbook.name == PLAYBOOK_NAME)).one()
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    rows: list[dict[str, Any]] = []
    for back in range(SEND_DAYS, -1, -1):
        fired = dt.datetime.combine(today - dt.timedelta(days=back), dt.time(7, 30), zone)
        if fired > now:
            continue
        moment = fired.astimezone(dt.UTC)
        for group in groups:
            size = session.scalar(select(func.count()).select_from(GroupMember).where(
                GroupMember.group_id == group.id, GroupMember.kind == "external",
                GroupMember.joined_at <= moment,
                (GroupMember.left_at.is_(None)) | (GroupMember.left_at > moment))) or 0
            waiting = now - moment < dt.timedelta(hours=2)
            rows.append({
                "message_id": None,
                "key": f"pbg:{playbook.id}:schedule:{fired:%Y%m%d%H%M}:0:{group.id}",
                "customer_id": None, "purpose": "marketing",
                "source": f"playbook:{playbook.id}",
                "content": {"playbook": PLAYBOOK_NAME, "step": "0", "priority": 50,
                            "sender": group.owner, "chat_id": group.chat_id,
                            "group_id": group.id, "group": group.name,
                            "text": _TEXT.format(name=group.name, members=size)},
                "channel": "wecom_group_mass", "state": "created" if waiting else "sent",
                "attempts": 1,
                "provider_message_id": f"msgDemoGroup{group.id}x{fired:%Y%m%d}",
                "last_error": None, "created_at": moment,
                "updated_at": moment + dt.timedelta(seconds=2),
                "finished_at": None if waiting else moment + dt.timedelta(minutes=25)})
    bulk_insert(session, Delivery.__table__, rows)  # type: ignore[arg-type]
    return len(rows)
