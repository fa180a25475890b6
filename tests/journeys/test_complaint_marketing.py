"""End to end: a complaint written in the web chat puts the customer in 投诉 (through the
bot's job and the journeys' job, as the worker runs them), and a marketing playbook that
then reaches them is held back with the reason recorded; a calm customer gets the message."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.models import Delivery
from siyu.config import Settings
from siyu.customers import service as customers
from siyu.customers.identity import IdentityRef
from siyu.events.service import ingest
from siyu.jobs import service as jobs
from siyu.journeys import service as journeys
from siyu.journeys.schedule import CUSTOMERS_JOB
from siyu.playbooks import engine
from siyu.playbooks import service as playbooks
from siyu.playbooks.models import StepLog
from siyu.service import service as desk
from siyu.service import tasks as _desk_tasks  # noqa: F401  (registers the bot's job)
from siyu.service.service import BOT_JOB

pytestmark = pytest.mark.usefixtures("world")

MARKETING = """\
name: 新品推荐
status: active
trigger: {event: new_arrival}
steps:
  - send: {channel: sms, purpose: marketing, template: "禾源新品上市，会员专享九折"}
"""


def _member(s: Session, settings: Settings, ref: str, phone: str) -> int:
    cid = customers.upsert_customers(s, [{"id": ref, "name": "客户" + ref[-1], "identities": [
        {"kind": "phone", "value": phone}]}], settings=settings).customer_ids[0]
    customers.record_consent(s, cid, channel="sms", purpose="marketing", granted=True,
                             source="test", at=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    return cid


def _no_quiet_hours_now(s: Session) -> None:
    """A quiet window away from the current hour, so only the complaint can hold the send."""
    hour = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).hour
    start, end = (hour + 3) % 24, (hour + 4) % 24
    playbooks.policy_apply(s, f'quiet_hours: {{start: "{start:02d}:00", end: "{end:02d}:00"}}\n'
                              "timezone: Asia/Shanghai\n")


def test_a_complaint_in_the_web_chat_enters_complaint_and_marketing_is_suppressed(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as s:
        angry = _member(s, settings, "C-ANGRY", "13800000061")
        calm = _member(s, settings, "C-CALM", "13800000062")
        _no_quiet_hours_now(s)
        playbooks.apply(s, MARKETING, file="marketing.yaml")
        s.commit()
    with sessions() as s:
        desk.receive_inbound(s, channel="webchat", identities=[
            IdentityRef("phone", "+8613800000061")], text="质量太差要投诉", external_id="w-1")
        s.commit()
    # As the worker runs them: the bot recognises the intent and queues the customer's
    # journey recomputation, which puts them in 投诉.
    assert jobs.run_due(sessions, names={BOT_JOB}).done == 1
    assert jobs.run_due(sessions, names={CUSTOMERS_JOB}).done >= 1
    with sessions() as s:
        view = journeys.customer_journey(s, angry)
        assert [(x["name"], x["tag"]) for x in view["scenarios"]] == [("投诉", "投诉中")]
        assert "「质量太差要投诉」" in view["scenarios"][0]["why"]
        assert journeys.customer_journey(s, calm)["scenarios"] == []
        now = dt.datetime.now(dt.UTC)
        ingest(s, "events", [{"id": f"arrival-{ref}", "customer_id": ref, "type": "new_arrival",
                              "ts": now.isoformat()} for ref in ("C-ANGRY", "C-CALM")],
               settings=settings)
        s.commit()
    with sessions() as s:
        assert engine.process_due(s, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 2
        s.commit()
    with sessions() as s:
        outcomes = {(log.customer_id, log.outcome, log.reason)
                    for log in s.scalars(select(StepLog).where(StepLog.kind == "send"))}
        assert outcomes == {(angry, "suppressed", "complaint_open"), (calm, "queued", None)}
        sent = list(s.scalars(select(Delivery).where(Delivery.key.is_not(None))))
        assert [d.customer_id for d in sent] == [calm]
        log = playbooks.contact_log(s, angry)
        assert [(c["playbook"], c["outcome"], c["reason"]) for c in log] == [
            ("新品推荐", "suppressed", "complaint_open")]
