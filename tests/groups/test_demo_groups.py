"""The demo's customer groups: the groups the history's join_group events name, every
customer who joined a member from that moment (a few left again, with leave_group on their
timeline), so the journey's 入群 rule counts exactly the members; a group playbook with its
group mass sends; all of it on the 客户群 page."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.models import User
from siyu.channels.models import Delivery
from siyu.config import Settings
from siyu.db import session_scope
from siyu.demo import catalog
from siyu.demo.generator import seed_demo
from siyu.demo.groups import OAT_GROUPS, PLAYBOOK_NAME, SEND_DAYS, seed_demo_groups
from siyu.events.models import Event
from siyu.groups.models import CustomerGroup, GroupMember
from siyu.journeys import defaults
from siyu.playbooks.models import Playbook
from siyu.segments import service as segments
from tests.console.conftest import Login

# The page counts the last 7 and 30 days from the real clock: the demo is seeded up to now,
# as `siyu demo` seeds it.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
N = 400
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


@pytest.mark.usefixtures("staff")
def test_demo_groups_follow_the_history_and_show_on_the_page(
        sessions: sessionmaker[Session], settings: Settings, login: Login) -> None:
    seed_demo(sessions, settings, customers=N, seed=7, now=NOW)
    with session_scope(sessions) as s:
        report = seed_demo_groups(s, now=NOW, seed=7)
    assert report.groups >= 5 and report.left > 0
    mornings = SEND_DAYS + (1 if NOW.astimezone(SHANGHAI).time() >= dt.time(7, 30) else 0)
    assert report.sends == mornings * len(OAT_GROUPS)
    with sessions() as s:
        groups = {g.id: g for g in s.scalars(select(CustomerGroup))}
        assert {g.name for g in groups.values()} <= set(catalog.GROUPS)
        advisors = set(s.scalars(select(User.username).where(User.role == "agent")))
        assert {g.owner for g in groups.values()} <= advisors
        joined: dict[tuple[str, int], dt.datetime] = {}
        for cid, ts, props in s.execute(select(Event.customer_id, Event.ts, Event.properties)
                                        .where(Event.type == "join_group")
                                        .order_by(Event.ts)):
            joined.setdefault((props["group"], cid), _aware(ts))
        rows = list(s.scalars(select(GroupMember).where(GroupMember.kind == "external")))
        members = {(groups[m.group_id].name, m.customer_id): m for m in rows}
        assert set(members) == set(joined)  # every join of the history, nobody else
        for key, m in members.items():
            assert _aware(m.joined_at) == joined[key]
            created = groups[m.group_id].created_at
            assert created is not None and _aware(created) < _aware(m.joined_at)
        left = {(m.customer_id, groups[m.group_id].chat_id): _aware(m.left_at)
                for m in rows if m.left_at is not None}
        assert len(left) == report.left
        leaves = {(e.customer_id, e.properties["chat_id"]): _aware(e.ts)
                  for e in s.scalars(select(Event).where(Event.type == "leave_group"))}
        assert leaves == left
        # The journey's 入群 stage rule selects exactly the customers who joined a group.
        [rule] = [r for stage, r in defaults.STAGE_RULES if stage == "join_group"]
        selected = set(segments.matching_ids(s, rule, now=NOW, limit=10**6))
        assert selected == {cid for _, cid in members}
        # The group playbook and its sends: every morning to both oat groups, sent (the
        # latest still waiting for the owner when it went out less than two hours ago).
        assert s.scalars(select(Playbook).where(Playbook.name == PLAYBOOK_NAME)).one()
        sends = list(s.scalars(select(Delivery).where(Delivery.channel == "wecom_group_mass")))
        waiting = [d for d in sends if d.state == "created"]
        assert {d.state for d in sends} <= {"sent", "created"} and len(waiting) <= 2
        assert all(NOW - _aware(d.created_at) < dt.timedelta(hours=2) for d in waiting)
        per_group: dict[str, int] = defaultdict(int)
        for d in sends:
            per_group[d.content["group"]] += 1
        assert dict(per_group) == {name: mornings for name in OAT_GROUPS}

    client = login("operator")
    page = client.get("/groups").text
    for group in groups.values():
        assert f'<a href="/groups/{group.id}">{group.name}</a>' in page
    oat = next(g for g in groups.values() if g.name == OAT_GROUPS[0])
    row = re.search(rf'<tr data-group="{oat.chat_id}">(.*?)</tr>', page, re.S)
    sent = mornings - sum(1 for d in waiting if d.content["group"] == oat.name)
    assert row and f'<td class="c-sends">{mornings} / {sent}</td>' in row.group(1)
    assert "style=" not in page
    detail = client.get(f"/groups/{oat.id}").text
    assert "燕麦早餐打卡" in detail and "已发送" in detail and 'id="members-chart"' in detail
    assert "style=" not in detail
