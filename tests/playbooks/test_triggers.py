"""Triggers wired to what other domains write: an order updated to paid (the events'
``order_status_changed``), scenarios entered and left (the journeys' recomputation); history
never fires."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers import service as customers
from siyu.events.service import ingest
from siyu.journeys import service as journeys
from siyu.playbooks import service
from tests.playbooks.conftest import Clock, apply, make_customer, outbox_rows, runs, tick

PAID = """\
name: 付款感谢
status: active
trigger: {order_status: paid}
steps:
  - send: {channel: sms, purpose: service,
           template: "订单 {{ event.properties.order_id }} 已付款"}
"""

ENTERED = """\
name: 进入关怀
status: active
trigger: {scenario: 高价值关怀}
steps:
  - send: {channel: email, purpose: service, subject: "关怀",
           template: "{{ customer.name }}，您好"}
"""

LEFT = """\
name: 离开回访
status: active
trigger: {scenario_left: 高价值关怀}
steps:
  - task: {kind: call, assignee: advisor, due: 1h, note: "回访 {{ customer.name }}"}
"""


def _order(db: Session, settings: Settings, ts: str, status: str, source: str = "api") -> None:
    ingest(db, "orders", [{"id": "o-7", "ts": "2026-03-02T09:00:00+08:00", "updated_at": ts,
                           "amount": 99, "status": status,
                           "identities": [{"kind": "external_id", "value": "buyer-7"}]}],
           settings=settings, source=source)


def test_an_order_updated_to_paid_fires_once_and_an_imported_update_never(
        db: Session, settings: Settings, clock: Clock) -> None:
    apply(db, PAID)
    make_customer(db, phone="+8613800000011", external="buyer-7")
    _order(db, settings, "2026-03-02T09:00:00+08:00", "created")
    tick(db, clock)
    assert runs(db) == []  # created is not paid
    _order(db, settings, "2026-03-02T09:30:00+08:00", "paid")
    tick(db, clock)
    assert [d.content["text"] for d in outbox_rows(db)] == ["订单 o-7 已付款"]
    # The same change again is a duplicate; a later change imported as history never fires.
    _order(db, settings, "2026-03-02T09:30:00+08:00", "paid")
    _order(db, settings, "2026-03-02T09:40:00+08:00", "created", source="import")
    _order(db, settings, "2026-03-02T09:45:00+08:00", "paid", source="import")
    tick(db, clock)
    assert len(runs(db)) == 1 and len(outbox_rows(db)) == 1


def test_scenarios_entered_and_left_in_the_journeys_recomputation_fire(
        db: Session, clock: Clock) -> None:
    journeys.apply_scenarios(db, "- {name: 高价值关怀, stage: 售后, rule: 'tag(\"VIP\")'}\n",
                             source="s.yaml")
    apply(db, ENTERED)
    apply(db, LEFT, file="left.yaml")
    cid = make_customer(db, name="孙丽")
    other = make_customer(db, name="钱多")
    customers.set_tag_many(db, [cid], "VIP", present=True, source="test")
    journeys.recompute(db, now=clock())
    tick(db, clock)
    entered = runs(db)
    assert [(r.customer_id, r.status) for r in entered] == [(cid, "done")]
    assert [d.content["text"] for d in outbox_rows(db)] == ["孙丽，您好"]
    clock.advance(hours=1)
    customers.set_tag_many(db, [cid], "VIP", present=False)
    journeys.recompute(db, now=clock())
    tick(db, clock)
    tasks = service.open_tasks(db, customer_id=cid)
    assert [t["note"] for t in tasks] == ["回访 孙丽"]
    assert not service.open_tasks(db, customer_id=other)


SEGMENT = """\
name: 入群欢迎
status: active
trigger: {segment_entered: 金卡}
steps:
  - send: {channel: email, purpose: service, subject: "升级", template: "{{ customer.name }}升级啦"}
"""


def test_a_segment_refresh_fires_entered_and_left(db: Session, clock: Clock) -> None:
    from siyu.segments import service as segments

    apply(db, SEGMENT)
    apply(db, SEGMENT.replace("入群欢迎", "离群回访").replace("segment_entered", "segment_left"),
          file="left.yaml")
    gold = make_customer(db, name="吴刚")
    make_customer(db, name="郑爽")
    customers.set_tag_many(db, [gold], "金卡", present=True, source="test")
    segment = segments.create_segment(db, "金卡", 'tag("金卡")', created_by="t", now=clock())
    tick(db, clock)
    assert [(r.customer_id, r.status) for r in runs(db)] == [(gold, "done")]
    assert [d.content["text"] for d in outbox_rows(db)] == ["吴刚升级啦"]
    segments.refresh_segment(db, segment.id, now=clock())  # no change: nothing new
    assert len(runs(db)) == 1
    customers.set_tag_many(db, [gold], "金卡", present=False)
    clock.advance(hours=2)
    segments.refresh_segment(db, segment.id, now=clock())
    tick(db, clock)
    assert [d.content["text"] for d in outbox_rows(db)] == ["吴刚升级啦", "吴刚升级啦"]
    assert {service.get(db, "离群回访").id} == {r.playbook_id for r in runs(db)[1:]}


BULK = """\
name: 批量欢迎
status: active
trigger: {event: add_wecom_contact}
audience: 'not tag("黑名单")'
holdout: 0.5
steps:
  - send: {channel: email, purpose: service, subject: "欢迎", template: "{{ customer.name }}，欢迎"}
"""


def test_a_large_ingest_batch_records_its_entries_and_the_worker_enters_them(
        db: Session, settings: Settings, clock: Clock, monkeypatch: Any,
        request: Any) -> None:
    """Over ``SIYU_PLAYBOOK_INLINE_ENTRIES`` hits, the batch writes one ``playbooks.enter``
    job instead of runs; the job enters them as the batch would have (audience, holdout, the
    batch's moment), and running it again starts nothing twice. A small batch enters at
    once."""
    from sqlalchemy import select

    from siyu.jobs import service as jobs
    from siyu.jobs.models import Job
    from siyu.jobs.worker import load_tasks
    from siyu.playbooks import engine
    from siyu.playbooks.config import get_playbook_settings

    monkeypatch.setenv("SIYU_PLAYBOOK_INLINE_ENTRIES", "3")
    get_playbook_settings.cache_clear()
    request.addfinalizer(get_playbook_settings.cache_clear)
    load_tasks()
    pid = apply(db, BULK)
    ids = [make_customer(db, name=f"客户{i}", email=f"c{i}@example.com", external=f"x{i}")
           for i in range(11)]
    customers.set_tag_many(db, [ids[0]], "黑名单", present=True, source="test")

    def batch(numbers: range) -> None:
        ingest(db, "events", [{"id": f"add-{i}", "type": "add_wecom_contact",
                               "ts": clock().isoformat(),
                               "identities": [{"kind": "external_id", "value": f"x{i}"}]}
                              for i in numbers], settings=settings)

    batch(range(8))
    assert runs(db) == []
    job = db.scalars(select(Job).where(Job.name == "playbooks.enter")).one()
    assert len(job.payload["playbooks"][0]["entries"]) == 8
    moment = clock()
    clock.advance(seconds=5)
    handler = jobs.handlers()["playbooks.enter"]
    handler(db, dict(job.payload))
    entered = runs(db)
    assert sorted(r.customer_id for r in entered) == ids[1:8]  # the audience held one back
    assert {r.entered_at for r in entered} == {moment}
    playbook_id = entered[0].playbook_id
    assert [r.holdout for r in entered] == [
        engine.holdout_share(playbook_id, r.customer_id) < 0.5 for r in entered]
    handler(db, dict(job.payload))  # a job run again (a worker killed after the commit)
    assert len(runs(db)) == 7
    tick(db, clock)
    treated = sum(1 for r in entered if not r.holdout)
    assert len(outbox_rows(db)) == treated
    batch(range(8, 11))  # three hits: entered in the batch's own transaction
    assert len(runs(db)) == 10
    assert db.scalars(select(Job).where(Job.name == "playbooks.enter")).all() == [job]
    assert pid["name"] == "批量欢迎"
