"""WeCom customer groups (客户群): signed ``change_external_chat`` callbacks, the group read
back from WeCom's API by a job, members who join and leave on the customers' timelines, the
journey's 入群 stage, a full sync by cursor, and each group's activity."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.customers.models import Identity
from siyu.events.models import Event
from siyu.groups import service as groups
from siyu.groups.models import CustomerGroup, GroupMember
from siyu.jobs import service as jobs
from siyu.jobs.models import Job
from siyu.journeys import service as journeys
from siyu.journeys.models import CustomerJourney
from tests.channels.conftest import run_jobs
from tests.channels.fakes import FakeWeCom
from tests.channels.test_wecom_callback import URL, encrypted

NOW = int(time.time())


def chat_event(vector: dict[str, Any], change: str, ts: int, detail: str = "") -> tuple[
        dict[str, str], bytes]:
    xml = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
           f"<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{ts}</CreateTime>"
           "<MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[change_external_chat]]></Event>"
           "<ChatId><![CDATA[wrOatFans01]]></ChatId>"
           f"<ChangeType><![CDATA[{change}]]></ChangeType>"
           + (f"<UpdateDetail><![CDATA[{detail}]]></UpdateDetail>" if detail else "")
           + "</xml>")
    return encrypted(vector, xml, ts=str(ts))


def member(userid: str, kind: int, joined: int) -> dict[str, Any]:
    return {"userid": userid, "type": kind, "join_time": joined, "join_scene": 3}


def _customer(s: Session, external: str) -> int:
    cid = s.scalar(select(Identity.customer_id).where(
        Identity.kind == "wecom_external_userid", Identity.value == external))
    assert cid is not None
    return int(cid)


def test_members_joining_and_leaving_reach_the_timeline_and_the_journey(
        chan_client: TestClient, vector: dict[str, Any], wecom_api: FakeWeCom,
        sessions: sessionmaker[Session]) -> None:
    wecom_api.groups["wrOatFans01"] = {
        "chat_id": "wrOatFans01", "name": "燕麦爱好者 1 群", "owner": "advisor_chen",
        "create_time": NOW - 600, "member_list": [
            member("advisor_chen", 1, NOW - 600), member("wmFan01", 2, NOW - 300),
            member("wmFan02", 2, NOW - 200)]}
    params, body = chat_event(vector, "create", NOW - 100)
    for _ in range(2):  # WeCom's retry is one job
        assert chan_client.post(URL, params=params, content=body).status_code == 200
    with sessions() as s:
        assert [j.name for j in s.scalars(select(Job))] == ["groups.sync_chat"]
    run_jobs(sessions)
    with sessions() as s:
        group = s.scalars(select(CustomerGroup)).one()
        assert (group.name, group.owner, group.status) == ("燕麦爱好者 1 群", "advisor_chen",
                                                           "active")
        fan1, fan2 = _customer(s, "wmFan01"), _customer(s, "wmFan02")
        joins = {e.customer_id: e for e in s.scalars(select(Event).where(
            Event.type == "join_group"))}
        assert set(joins) == {fan1, fan2}
        assert joins[fan1].properties == {"chat_id": "wrOatFans01", "group": "燕麦爱好者 1 群"}
        journeys.recompute(s, now=dt.datetime.now(dt.UTC), customer_ids=[fan1, fan2])
        s.commit()
        stages = dict(s.execute(select(CustomerJourney.customer_id,
                                       CustomerJourney.stage)).all())
        assert stages == {fan1: "join_group", fan2: "join_group"}  # 入群

    # wmFan02 leaves; a new fan joins.
    wecom_api.groups["wrOatFans01"]["member_list"] = [
        member("advisor_chen", 1, NOW - 600), member("wmFan01", 2, NOW - 300),
        member("wmFan03", 2, NOW - 50)]
    params, body = chat_event(vector, "update", NOW - 40, "del_member")
    assert chan_client.post(URL, params=params, content=body).status_code == 200
    run_jobs(sessions)
    with sessions() as s:
        left = [e.customer_id for e in s.scalars(select(Event).where(
            Event.type == "leave_group"))]
        assert left == [fan2]
        rows = {m.userid: m.left_at for m in s.scalars(select(GroupMember))}
        assert rows["wmFan02"] is not None and rows["wmFan01"] is None
        [figures] = groups.activity(s)
        assert (figures["members"], figures["employees"], figures["joined"],
                figures["left"]) == (2, 1, 3, 1)

    params, body = chat_event(vector, "dismiss", NOW - 10)
    assert chan_client.post(URL, params=params, content=body).status_code == 200
    with sessions() as s:
        assert s.scalars(select(CustomerGroup)).one().status == "dismissed"
        assert sorted(e.customer_id for e in s.scalars(select(Event).where(
            Event.type == "leave_group"))) == sorted([fan2, fan1, _customer(s, "wmFan03")])


def test_a_full_sync_follows_the_cursor_through_every_group(
        chan_client: TestClient, wecom_api: FakeWeCom, sessions: sessionmaker[Session]
        ) -> None:
    for n in range(1, 4):
        wecom_api.groups[f"wrChat0{n}"] = {
            "chat_id": f"wrChat0{n}", "name": f"{n} 群", "owner": "advisor_chen",
            "member_list": [member(f"wmMember{n}", 2, NOW - 100)]}
    with sessions() as s:
        jobs.enqueue(s, "groups.sync_all", {})
        s.commit()
    run_jobs(sessions)
    with sessions() as s:
        assert sorted(g.chat_id for g in s.scalars(select(CustomerGroup))) == [
            "wrChat01", "wrChat02", "wrChat03"]
        assert len(list(s.scalars(select(Event).where(Event.type == "join_group")))) == 3
