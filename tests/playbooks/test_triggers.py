"""Triggers wired to what other domains write: an order updated to paid (the events'
``order_status_changed``), scenarios entered and left (the journeys' recomputation); history
never fires."""

from __future__ import annotations

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
