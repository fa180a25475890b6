"""The engine: triggers start runs, steps execute in order through the outbox, waits,
branches, tags, points, tasks, wait_for, goals, holdout, reentry, history never fires."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers import service as customers
from siyu.events.service import ingest
from siyu.playbooks import engine, service
from siyu.playbooks.models import PlaybookTask
from siyu.points import service as points
from tests.playbooks.conftest import (
    Clock,
    apply,
    count,
    fire,
    logs,
    make_customer,
    outbox_rows,
    runs,
    tick,
)

WELCOME = """\
name: 欢迎
status: active
trigger: {event: signup}
audience: 'has(email)'
goal: {event: first_purchase, within: 7d}
steps:
  - send:
      channel: email
      subject: "{{ customer.name }}，欢迎"
      template: "{{ customer.name }}{{ customer.salutation }}您好，欢迎加入"
  - wait: 2d
  - branch:
      if: 'tag("VIP")'
      then: [{tag: {add: 已欢迎VIP}}]
      else: [{points: {award: 20, reason: 新人礼}}]
  - send: {channel: email, subject: "第二封", template: "您已加入 {{ computed.orders }} 单"}
  - task: {kind: call, assignee: advisor, due: 1h, note: "回访 {{ customer.name }}"}
"""


def test_event_to_two_sends_through_the_outbox_with_a_wait_and_a_branch(
        db: Session, settings: Settings, clock: Clock) -> None:
    apply(db, WELCOME)
    cid = make_customer(db, name="李娜", gender="female")
    fire(db, settings, cid, "signup", clock())
    assert [r.status for r in runs(db)] == ["active"]
    tick(db, clock)
    sent = outbox_rows(db)
    assert len(sent) == 1
    assert sent[0].content["subject"] == "李娜，欢迎"
    assert sent[0].content["text"] == "李娜女士您好，欢迎加入"
    assert sent[0].key == f"pb:{runs(db)[0].id}:0"
    assert tick(db, clock) == 0  # waiting two days
    clock.advance(days=2, seconds=1)
    tick(db, clock)
    assert len(outbox_rows(db)) == 2
    assert points.balance(db, cid) == 20  # not a VIP: the else arm
    assert [t.note for t in db.query(PlaybookTask)] == ["回访 李娜"]
    assert runs(db)[0].status == "done"
    paths = [(r.path, r.outcome) for r in logs(db)]
    assert ("2.else.0", "done") in paths and ("3", "queued") in paths


def test_the_then_arm_for_matching_customers(db: Session, settings: Settings,
                                             clock: Clock) -> None:
    apply(db, WELCOME)
    cid = make_customer(db)
    customers.add_tag(db, cid, "VIP")
    fire(db, settings, cid, "signup", clock())
    tick(db, clock)
    clock.advance(days=3)
    tick(db, clock)
    assert "已欢迎VIP" in {t["name"] for t in customers.customer_tags(db, cid)}
    assert points.balance(db, cid) == 0


def test_audience_reentry_once_and_history_never_fire(db: Session, settings: Settings,
                                                      clock: Clock) -> None:
    apply(db, WELCOME)
    cid = make_customer(db)
    no_email = make_customer(db, phone="+8613800138000")
    fire(db, settings, no_email, "signup", clock())
    fire(db, settings, cid, "signup", clock() - dt.timedelta(days=3))  # too old
    fire(db, settings, cid, "signup", clock(), eid="imported", source="import")  # backfill
    assert runs(db) == []
    fire(db, settings, cid, "signup", clock())
    fire(db, settings, cid, "signup", clock() + dt.timedelta(seconds=5))  # once per customer
    assert len(runs(db)) == 1


def test_goal_ends_the_run_and_counts(db: Session, settings: Settings, clock: Clock) -> None:
    apply(db, WELCOME)
    cid = make_customer(db)
    fire(db, settings, cid, "signup", clock())
    tick(db, clock)
    clock.advance(hours=5)
    fire(db, settings, cid, "first_purchase", clock())
    clock.advance(days=2)
    tick(db, clock)
    run = runs(db)[0]
    assert run.status == "goal" and run.goal_at is not None
    assert len(outbox_rows(db)) == 1  # the second e-mail never went
    assert service.stats(db, "欢迎")["goal_reached"] == 1


WAIT_FOR = """\
name: 预约确认
status: active
trigger: {scenario: 保养到期}
steps:
  - send: {channel: sms, purpose: service, template: "{{ customer.name }}，请回复确认保养预约"}
  - wait_for: {event: appointment_confirmed, within: 3d, else: exit}
  - send: {channel: sms, purpose: service, template: "预约已确认"}
"""


def test_scenario_trigger_and_wait_for_the_confirmation(db: Session, settings: Settings,
                                                        clock: Clock) -> None:
    apply(db, WAIT_FOR)
    yes = make_customer(db, phone="+8613800000001")
    no = make_customer(db, phone="+8613800000002")
    other = make_customer(db, phone="+8613800000003")
    for cid in (yes, no):
        fire(db, settings, cid, "scenario_entered", clock(), scenario="保养到期", why="里程")
    fire(db, settings, other, "scenario_entered", clock(), scenario="食用周期结束", why="x")
    tick(db, clock)
    assert {r.customer_id for r in runs(db)} == {yes, no}
    assert {r.status for r in runs(db)} == {"waiting"}
    clock.advance(hours=2)
    fire(db, settings, yes, "appointment_confirmed", clock())
    tick(db, clock)
    clock.advance(days=4)
    tick(db, clock)
    by_customer = {r.customer_id: r.status for r in runs(db)}
    assert by_customer == {yes: "done", no: "exited"}
    texts = [(d.customer_id, d.content["text"]) for d in outbox_rows(db)]
    assert texts.count((yes, "预约已确认")) == 1 and (no, "预约已确认") not in texts


ORDER = """\
name: 发货关怀
status: active
trigger: {order_status: shipped}
steps:
  - send: {channel: sms, purpose: service, template: "订单 {{ event.properties.order_id }} 已发货"}
"""

PAID = """\
name: 支付感谢
status: active
trigger: {order_status: paid}
steps:
  - send: {channel: sms, purpose: service, template: "感谢下单 {{ event.properties.amount }} 元"}
"""


def test_order_status_triggers_on_changes_and_on_paid_orders(
        db: Session, settings: Settings, clock: Clock) -> None:
    apply(db, ORDER)
    apply(db, PAID)
    cid = make_customer(db, phone="+8613800000009")
    fire(db, settings, cid, "order_status_changed", clock(), order_id="o-1", **{
        "from": "paid", "to": "shipped"})
    fire(db, settings, cid, "order_status_changed", clock(), eid="e2", order_id="o-1",
         **{"from": "shipped", "to": "delivered"})
    ingest(db, "orders", [{"id": "o-2", "ts": clock().isoformat(), "amount": 199,
                           "identities": [{"kind": "external_id", "value": f"x{cid}"}]}],
           settings=settings)
    tick(db, clock)
    assert sorted(d.content["text"] for d in outbox_rows(db)) == [
        "感谢下单 199.0 元", "订单 o-1 已发货"]


def test_holdout_is_fixed_per_customer_and_never_sends(db: Session, settings: Settings,
                                                       clock: Clock) -> None:
    apply(db, WELCOME.replace("audience: 'has(email)'", "holdout: 0.5"))
    ids = [make_customer(db) for _ in range(40)]
    pid = service.get(db, "欢迎").id
    for cid in ids:
        fire(db, settings, cid, "signup", clock())
    tick(db, clock)
    held = {r.customer_id for r in runs(db) if r.holdout}
    assert held == {c for c in ids if engine.holdout_share(pid, c) < 0.5}
    assert 5 < len(held) < 35
    assert not held & {d.customer_id for d in outbox_rows(db)}
    stats = service.stats(db, "欢迎")
    assert stats["entered"] == 40 and stats["holdout"] == len(held)


def test_a_new_version_leaves_runs_in_flight_on_theirs(db: Session, settings: Settings,
                                                       clock: Clock) -> None:
    apply(db, WELCOME)
    cid = make_customer(db)
    fire(db, settings, cid, "signup", clock())
    tick(db, clock)
    apply(db, WELCOME.replace('subject: "第二封"', 'subject: "新版第二封"'))
    clock.advance(days=3)
    tick(db, clock)
    assert [d.content["subject"] for d in outbox_rows(db)] == ["王芳，欢迎", "第二封"]
    assert count(db, PlaybookTask) == 1


REPLY = """\
name: 回访邀请
status: active
trigger: {event: after_sales_done}
steps:
  - send: {channel: webchat, purpose: service, template: "{{ customer.name }}，聊聊售后？"}
  - wait_for: {reply: webchat, within: 2d, else: exit}
  - tag: {add: 已回复回访}
"""


def test_wait_for_a_reply_goes_on_when_the_customer_writes_to_the_desk(
        db: Session, settings: Settings, clock: Clock) -> None:
    """The service desk's inbound message is the reply: the waiting run continues at once;
    a message on another channel, or from another customer, does not count."""
    from siyu.customers.identity import IdentityRef
    from siyu.customers.models import CustomerTag, Tag
    from siyu.playbooks.models import PlaybookRun
    from siyu.service import service as desk

    apply(db, REPLY)
    writes = make_customer(db, name="李娜", external="W1")
    silent = make_customer(db, name="王芳", external="W2")
    for cid in (writes, silent):
        fire(db, settings, cid, "after_sales_done", clock())
    tick(db, clock)
    assert {r.status for r in runs(db)} == {"waiting"}
    clock.advance(hours=3)
    desk.receive_inbound(db, channel="wecom", identities=[IdentityRef("external_id", "W1")],
                         text="在的", external_id="wc-1")
    assert {r.status for r in runs(db)} == {"waiting"}  # wrong channel: still waiting
    desk.receive_inbound(db, channel="webchat", identities=[IdentityRef("external_id", "W1")],
                         text="可以，您说", external_id="web-1")
    tick(db, clock)
    clock.advance(days=3)
    tick(db, clock)
    by_customer = {r.customer_id: r.status for r in db.query(PlaybookRun)}
    assert by_customer == {writes: "done", silent: "exited"}
    tagged = {ct.customer_id for ct in db.query(CustomerTag).join(Tag).filter(
        Tag.name == "已回复回访")}
    assert tagged == {writes}


TAGGER = """\
name: 打标
status: active
priority: {priority}
trigger: {{event: {event}}}
steps:
  - tag: {{{op}: 活跃}}
"""


def test_tag_steps_of_a_batch_are_set_based_and_keep_order(db: Session, settings: Settings,
                                                           clock: Clock) -> None:
    from siyu.customers.identity import merge_customers

    apply(db, TAGGER.format(priority=60, event="a", op="add"), file="add.yaml")
    apply(db, TAGGER.replace("打标", "去标").format(priority=40, event="a", op="remove"),
          file="remove.yaml")
    apply(db, TAGGER.replace("打标", "只加").format(priority=50, event="b", op="add"),
          file="only.yaml")
    both = make_customer(db)  # added (priority 60), then removed (40), in one batch
    kept, dropped = make_customer(db), make_customer(db)
    plain = make_customer(db)
    customers.add_tag(db, plain, "活跃")  # already tagged: left alone, no integrity error
    for cid in (kept, dropped, plain):
        fire(db, settings, cid, "b", clock())
    fire(db, settings, both, "a", clock())
    merge_customers(db, kept, dropped, reason="test", actor="test")
    tick(db, clock)
    assert all(r.status == "done" for r in runs(db))
    tagged = {c for c in (both, kept, dropped, plain)
              if "活跃" in {t["name"] for t in customers.customer_tags(db, c)}}
    assert tagged == {kept, plain}  # the merged customer's run tagged the survivor
    assert len(logs(db, "done")) == 5
