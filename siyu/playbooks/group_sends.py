"""Group playbooks: a playbook whose audience is WeCom customer groups (``audience: {group:
NAME}``) sends each of its ``send`` steps as a group mass send (客户群群发).

When its schedule fires, every active group of that name gets one outbox message per step
on the ``wecom_group_mass`` channel, addressed to the group (``chat_id``) and sent by the
group's owner (``sender``): WeCom's ``externalcontact/add_msg_template`` with ``chat_type:
"group"`` creates a task the owner confirms in the WeCom app. The delivery goes ``created``
when WeCom accepted the task and ``sent`` once ``get_groupmsg_send_result`` says the owner
sent it (:mod:`siyu.channels.wecom.mass`). The outbox key is the playbook, the schedule's
occurrence, the step and the group: a fired minute run twice sends nothing twice.

No customer runs are started: the consent, frequency caps and quiet hours of the contact
policy are a customer's, and a group message reaches whoever is in the group. The policy's
global pause still holds the sends back.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.playbooks.models import Playbook, PlaybookVersion
from siyu.playbooks.spec import GROUP_CHANNEL, flatten, group_names
from siyu.playbooks.templates import TemplateProblem, render

log = logging.getLogger("siyu.playbooks")


def target_groups(session: Session, names: list[str]) -> list[Any]:
    """The active customer groups with these names, in id order."""
    from siyu.groups.models import CustomerGroup

    if not names:
        return []
    return list(session.scalars(select(CustomerGroup).where(
        CustomerGroup.name.in_(names), CustomerGroup.status == "active")
        .order_by(CustomerGroup.id)))


def unknown_names(session: Session, names: list[str]) -> list[str]:
    """The names no customer group has (applying a group playbook refuses them)."""
    from siyu.groups.models import CustomerGroup

    known = set(session.scalars(select(CustomerGroup.name).where(
        CustomerGroup.name.in_(names)))) if names else set()
    return [n for n in names if n not in known]


def messages(session: Session, playbook: Playbook, version: PlaybookVersion, occurrence: str,
             *, now: dt.datetime) -> list[dict[str, Any]]:
    """The outbox rows the occurrence sends: one per (send step, group)."""
    from siyu.groups.models import GroupMember

    spec = version.spec
    groups = target_groups(session, group_names(spec) or [])
    if not groups:
        log.warning("group playbook %r: no active group named %s", playbook.name,
                    ", ".join(group_names(spec) or []))
        return []
    sizes = dict(session.execute(
        select(GroupMember.group_id, func.count()).where(
            GroupMember.group_id.in_([g.id for g in groups]), GroupMember.kind == "external",
            GroupMember.left_at.is_(None)).group_by(GroupMember.group_id)).all())
    rows = []
    for path, step in flatten(spec["steps"]):
        if step["kind"] != "send" or step.get("channel") != GROUP_CHANNEL:
            continue
        for group in groups:
            values = {"group": {"name": group.name or "", "members": int(sizes.get(group.id)
                                                                          or 0)},
                      "now": now}
            try:
                text = render(step.get("template") or "", values, today=now.date())
            except TemplateProblem as exc:
                log.warning("group playbook %r step %s: template error %s", playbook.name,
                            path, exc)
                continue
            rows.append({
                "key": f"pbg:{playbook.id}:{occurrence}:{path}:{group.id}"[:200],
                "customer_id": None, "channel": GROUP_CHANNEL,
                "purpose": step.get("purpose") or "marketing",
                "source": f"playbook:{playbook.id}", "text": text,
                "content": {"playbook": playbook.name, "step": path,
                            "priority": playbook.priority, "sender": group.owner or "",
                            "chat_id": group.chat_id, "group_id": group.id,
                            "group": group.name or ""}})
    return rows


def send(session: Session, playbook: Playbook, version: PlaybookVersion, occurrence: str,
         *, now: dt.datetime) -> int:
    """Queue the occurrence's group mass sends in the caller's transaction; returns how
    many were new (a repeated occurrence queues nothing)."""
    from siyu.channels import outbox
    from siyu.playbooks import engine

    if engine.load_policy(session).paused_all:
        log.info("group playbook %r: held back by the global pause", playbook.name)
        return 0
    rows = messages(session, playbook, version, occurrence, now=now)
    if not rows:
        return 0
    new = outbox.enqueue_many(session, rows, now=now)
    if new:
        engine.wake(session)
    return new
