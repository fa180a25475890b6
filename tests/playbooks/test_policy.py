"""The contact policy: quiet hours hold and release, daily limits and priority, caps,
consent and opt-out, complaints, the global pause; every held-back send has its reason."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers import service as customers
from siyu.playbooks import service
from siyu.playbooks.errors import InvalidPolicy
from tests.playbooks.conftest import Clock, apply, fire, logs, make_customer, outbox_rows, tick

PB = """\
name: {name}
status: active
priority: {priority}
trigger: {{event: {event}}}
steps:
  - send: {{channel: sms, template: "{name}"}}
"""


def test_a_send_in_quiet_hours_is_held_and_goes_out_when_the_window_opens(
        db: Session, settings: Settings, clock: Clock) -> None:
    # A quiet window of a few minutes, in the customer's own zone (Tokyo, not the policy's).
    clock.at = dt.datetime(2026, 3, 2, 12, 59, tzinfo=dt.UTC)  # 21:59 in Tokyo
    service.policy_apply(db, 'quiet_hours: {start: "22:00", end: "22:05"}\n'
                             'timezone: Asia/Shanghai\n')
    apply(db, PB.format(name="晚间提醒", priority=50, event="ping"))
    cid = make_customer(db, phone="+8613800000001", attributes={"timezone": "Asia/Tokyo"})
    clock.advance(minutes=1)  # 22:00 local: quiet
    fire(db, settings, cid, "ping", clock())
    tick(db, clock)
    assert outbox_rows(db) == []
    held = logs(db, "deferred")
    assert [(h.reason) for h in held] == ["quiet_hours"]
    clock.advance(minutes=4, seconds=59)  # 22:04:59: still quiet, nothing due
    assert tick(db, clock) == 0
    clock.advance(seconds=1)  # 22:05: the window opens
    tick(db, clock)
    sent = outbox_rows(db)
    assert len(sent) == 1 and sent[0].created_at == dt.datetime(2026, 3, 2, 13, 5,
                                                                tzinfo=dt.UTC)


SERVICE_PB = """\
name: 夜间安抚
status: active
trigger: {event: complaint}
steps:
  - send: {channel: sms, purpose: service, template: "已收到您的反馈"}
"""


@pytest.mark.parametrize("purposes,held", [(None, False), ("[marketing, service]", True)])
def test_quiet_hours_hold_service_messages_only_when_the_policy_says_so(
        db: Session, settings: Settings, clock: Clock, purposes: str | None,
        held: bool) -> None:
    # A customer who complains at 23:00 hears back at once: a service message answers what
    # they just did. A policy listing service among quiet_hours.purposes holds it too.
    clock.at = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)  # 23:00 in Shanghai
    extra = f", purposes: {purposes}" if purposes else ""
    service.policy_apply(db, f'quiet_hours: {{start: "22:00", end: "08:00"{extra}}}\n')
    apply(db, SERVICE_PB)
    apply(db, PB.format(name="夜间营销", priority=50, event="complaint"))
    cid = make_customer(db, phone="+8613800000009")
    fire(db, settings, cid, "complaint", clock())
    tick(db, clock)
    texts = [d.content["text"] for d in outbox_rows(db)]
    assert texts == ([] if held else ["已收到您的反馈"])
    assert sorted(h.reason for h in logs(db, "deferred")) == (
        ["quiet_hours", "quiet_hours"] if held else ["quiet_hours"])


def test_one_marketing_message_a_day_and_the_higher_priority_wins(
        db: Session, settings: Settings, clock: Clock) -> None:
    apply(db, PB.format(name="高优先", priority=90, event="ping"))
    apply(db, PB.format(name="低优先", priority=10, event="ping"))
    cid = make_customer(db, phone="+8613800000002")
    fire(db, settings, cid, "ping", clock())
    tick(db, clock)
    assert [d.content["text"] for d in outbox_rows(db)] == ["高优先"]
    assert [r.reason for r in logs(db, "suppressed")] == ["priority"]
    contact = service.contact_log(db, cid)
    assert {(c["playbook"], c["outcome"], c["reason"]) for c in contact} == {
        ("高优先", "queued", None), ("低优先", "suppressed", "priority")}
    assert service.stats(db, "低优先")["suppressed"] == {"priority": 1}


def test_caps_over_days(db: Session, settings: Settings, clock: Clock) -> None:
    service.policy_apply(db, "caps: [{channel: all, max: 2, per: 7d}]\n")
    apply(db, PB.format(name="每日", priority=50, event="ping").replace(
        "status: active", "status: active\nreentry: every_trigger"))
    cid = make_customer(db, phone="+8613800000003")
    for day in range(4):
        fire(db, settings, cid, "ping", clock(), eid=f"p{day}")
        tick(db, clock)
        clock.advance(days=1)
    assert len(outbox_rows(db)) == 2
    assert [r.reason for r in logs(db, "suppressed")] == ["frequency_cap", "frequency_cap"]


def test_consent_opt_out_and_complaints(db: Session, settings: Settings,
                                        clock: Clock) -> None:
    apply(db, PB.format(name="营销", priority=50, event="ping"))
    no_consent = make_customer(db, phone="+8613800000004", consent=())
    withdrew = make_customer(db, phone="+8613800000005")
    customers.record_consent(db, withdrew, channel="sms", purpose="marketing", granted=False,
                             source="opt_out:sms 退订", at=clock())
    complaining = make_customer(db, phone="+8613800000006")
    customers.add_tag(db, complaining, "投诉中")
    in_scenario = make_customer(db, phone="+8613800000007")
    fire(db, settings, in_scenario, "scenario_entered", clock() - dt.timedelta(hours=1),
         scenario="投诉", why="差评")
    no_phone = make_customer(db, email="x@example.com")
    for cid in (no_consent, withdrew, complaining, in_scenario, no_phone):
        fire(db, settings, cid, "ping", clock())
    tick(db, clock)
    assert outbox_rows(db) == []
    reasons = {r.customer_id: r.reason for r in logs(db, "suppressed")}
    assert reasons == {no_consent: "no_consent", withdrew: "opted_out",
                       complaining: "complaint_open", in_scenario: "complaint_open",
                       no_phone: "no_address"}


def test_the_global_pause_holds_marketing_but_not_service(
        db: Session, settings: Settings, clock: Clock) -> None:
    apply(db, PB.format(name="营销", priority=50, event="ping"))
    apply(db, PB.format(name="服务", priority=50, event="ping").replace(
        'template: "服务"', 'purpose: service, template: "服务"'))
    cid = make_customer(db, phone="+8613800000008")
    service.pause_all(db, True)
    fire(db, settings, cid, "ping", clock())
    tick(db, clock)
    assert [d.content["text"] for d in outbox_rows(db)] == ["服务"]
    assert [r.reason for r in logs(db, "deferred")] == ["global_pause"]
    service.pause_all(db, False)
    clock.advance(minutes=11)
    tick(db, clock)
    assert sorted(d.content["text"] for d in outbox_rows(db)) == ["服务", "营销"]


def test_a_paused_playbook_holds_its_runs(db: Session, settings: Settings,
                                          clock: Clock) -> None:
    apply(db, PB.format(name="营销", priority=50, event="ping"))
    cid = make_customer(db, phone="+8613800000009")
    fire(db, settings, cid, "ping", clock())
    service.set_status(db, "营销", "paused")
    assert tick(db, clock) == 0
    service.set_status(db, "营销", "active")
    tick(db, clock)
    assert len(outbox_rows(db)) == 1


@pytest.mark.parametrize("text,field", [
    ("quiet_hours: {start: '25:00', end: '08:00'}\n", "quiet_hours.start"),
    ("quiet_hours: {start: '22:00', end: '08:00', purposes: [sales]}\n",
     "quiet_hours.purposes"),
    ("caps: [{channel: fax, max: 1, per: 1d}]\n", "caps[0].channel"),
    ("timezone: Mars/Base\n", "timezone"),
    ("colour: red\n", "colour"),
])
def test_a_bad_policy_is_refused_and_the_old_one_stays(db: Session, text: str,
                                                       field: str) -> None:
    service.policy_apply(db, "daily_marketing: 2\n")
    with pytest.raises(InvalidPolicy) as info:
        service.policy_apply(db, text)
    assert info.value.details[0]["field"] == field
    assert service.policy_show(db)["daily_marketing"] == 2


def test_defaults_are_documented(db: Session) -> None:
    shown = service.policy_show(db)
    assert shown["quiet_hours"] == {"start": "22:00", "end": "08:00",
                                    "purposes": ["marketing"]}
    assert shown["daily_marketing"] == 1
    assert shown["platform"]["welcome_code_seconds"] == 20
    assert "quiet_hours" in shown["reasons"]


def test_the_360_contact_card_shows_the_brand_s_local_time(
        db: Session, settings: Settings, clock: Clock) -> None:
    from siyu.playbooks.console import contact_rows

    clock.at = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)  # 23:00 in Shanghai
    service.policy_apply(db, "quiet_hours: null\n")
    apply(db, PB.format(name="夜间提醒", priority=50, event="ping"))
    cid = make_customer(db, phone="+8613800000010")
    fire(db, settings, cid, "ping", clock())
    tick(db, clock)
    assert [r["label"] for r in contact_rows(db, cid)] == ["2026-03-02 23:00 夜间提醒"]
