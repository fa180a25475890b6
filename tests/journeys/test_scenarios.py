"""Hand-made histories with known answers: stages, scenarios, their why, and the events."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.identity import IdentityRef
from siyu.customers.service import customer_tags, upsert_customers
from siyu.events.models import Event
from siyu.events.service import ingest
from siyu.jobs import service as jobs
from siyu.jobs.models import Job
from siyu.journeys import service
from siyu.journeys.schedule import CUSTOMERS_JOB
from siyu.segments import service as segments
from siyu.service import bot
from siyu.service import service as desk

pytestmark = pytest.mark.usefixtures("world")


def _customer(sessions: sessionmaker[Session], settings: Settings, ref: str, phone: str
              ) -> int:
    with sessions() as s:
        cid = upsert_customers(s, [{"id": ref, "name": "林晓雯", "identities": [
            {"kind": "phone", "value": phone}]}], settings=settings).customer_ids[0]
        s.commit()
        return cid


def _order(sessions: sessionmaker[Session], settings: Settings, ref: str, order_id: str,
           days_ago: float, qty: int, sku: str = "PRO", **extra: Any) -> None:
    ts = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    with sessions() as s:
        ingest(s, "orders", [{"id": order_id, "customer_id": ref, "ts": ts.isoformat(),
                              "amount": 199.0 * qty, "items": [{"sku": sku, "quantity": qty}],
                              **extra}], settings=settings)
        s.commit()


def _say(sessions: sessionmaker[Session], phone: str, text: str, external_id: str) -> None:
    with sessions() as s:
        result = desk.receive_inbound(s, channel="webchat", identities=[
            IdentityRef("phone", phone)], text=text, external_id=external_id)
        s.commit()
    with sessions() as s:
        bot.handle_inbound(s, result.message_id)
        s.commit()


def _run_jobs(sessions: sessionmaker[Session]) -> None:
    summary = jobs.run_due(sessions, names={CUSTOMERS_JOB})
    with sessions() as s:
        errors = list(s.scalars(select(Job.last_error).where(Job.last_error.is_not(None))))
    assert summary.retried == summary.failed == 0, errors


def _journey(sessions: sessionmaker[Session], cid: int) -> dict[str, Any]:
    with sessions() as s:
        return service.customer_journey(s, cid)


def _events(sessions: sessionmaker[Session], cid: int, kind: str) -> list[dict[str, Any]]:
    with sessions() as s:
        return [e.properties for e in s.scalars(select(Event).where(
            Event.customer_id == cid, Event.type == kind).order_by(Event.ts, Event.id))]


def test_a_quantity_whose_cycle_ends_in_3_days_enters_the_cycle_scenario(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    # Two units of a 30-day product bought 57 days ago last 60 days: 3 days left.
    due = _customer(sessions, settings, "C-DUE", "13800000001")
    _order(sessions, settings, "C-DUE", "O-DUE", days_ago=57, qty=2)
    # One unit bought 57 days ago ran out 27 days ago: past the scenario's window.
    lapsed = _customer(sessions, settings, "C-LAPSED", "13800000002")
    _order(sessions, settings, "C-LAPSED", "O-LAPSED", days_ago=57, qty=1)
    # A bundle lasts the sum of its parts (60 days), bought 20 days ago: 40 days left.
    fresh = _customer(sessions, settings, "C-FRESH", "13800000003")
    _order(sessions, settings, "C-FRESH", "O-FRESH", days_ago=20, qty=1, sku="DUO")
    _run_jobs(sessions)

    view = _journey(sessions, due)
    assert view["stage"] == "after_sales" and view["stage_label"] == "售后"
    assert [s["name"] for s in view["scenarios"]] == ["食用周期结束"]
    assert view["scenarios"][0]["why"].startswith(
        "订单 O-DUE 的「益生菌冻干粉 30 条」×2，预计 3 天后吃完")
    assert _journey(sessions, lapsed)["scenarios"] == []
    assert _journey(sessions, fresh)["scenarios"] == []
    with sessions() as s:
        now = dt.datetime.now(dt.UTC)
        assert segments.count_rule(s, "days_until_repurchase <= 3", now=now).count == 2
        assert segments.count_rule(s, "days_until_repurchase between 39 and 40",
                                   now=now).count == 1
    assert _events(sessions, due, "scenario_entered") == [
        {"scenario": "食用周期结束", "why": view["scenarios"][0]["why"]}]
    # Buying again moves the due date away: the customer leaves the scenario.
    _order(sessions, settings, "C-DUE", "O-DUE-2", days_ago=0, qty=1)
    _run_jobs(sessions)
    assert _journey(sessions, due)["scenarios"] == []
    exited = _events(sessions, due, "scenario_exited")
    assert [e["scenario"] for e in exited] == ["食用周期结束"]


def test_a_message_about_buying_for_mother_enters_buying_for_family(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = _customer(sessions, settings, "C-FAM", "13800000011")
    _say(sessions, "+8613800000011", "想给我妈也买一盒", "m-1")
    with sessions() as s:  # the message queued the customer's recomputation
        assert s.scalar(select(Job.payload).where(Job.name == CUSTOMERS_JOB)) == {
            "customer_ids": [cid]}
    _run_jobs(sessions)
    view = _journey(sessions, cid)
    assert [s["name"] for s in view["scenarios"]] == ["帮亲友购买"]
    assert "「想给我妈也买一盒」" in view["scenarios"][0]["why"]
    assert "网页聊天" in view["scenarios"][0]["why"]


def test_a_recipient_other_than_the_customer_enters_buying_for_family(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = _customer(sessions, settings, "C-GIFT", "13800000021")
    own = _customer(sessions, settings, "C-OWN", "13800000022")
    _order(sessions, settings, "C-GIFT", "O-GIFT", days_ago=1, qty=1,
           recipient_name="林母", recipient_phone="13900000000")
    _order(sessions, settings, "C-OWN", "O-OWN", days_ago=1, qty=1,
           recipient_name="林晓雯", recipient_phone="13800000022")
    _run_jobs(sessions)
    view = _journey(sessions, cid)
    assert [s["name"] for s in view["scenarios"]] == ["帮亲友购买"]
    assert view["scenarios"][0]["why"] == "订单 O-GIFT 寄给「林母」"
    assert view["stage"] == "converted"
    assert _journey(sessions, own)["scenarios"] == []


def test_a_complaint_enters_complaint_and_suppresses_marketing_until_resolved(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = _customer(sessions, settings, "C-ANGRY", "13800000031")
    calm = _customer(sessions, settings, "C-CALM", "13800000032")
    _say(sessions, "+8613800000031", "质量太差要投诉", "m-2")
    _run_jobs(sessions)
    view = _journey(sessions, cid)
    assert [s["name"] for s in view["scenarios"]] == ["投诉"]
    assert view["scenarios"][0]["tag"] == "投诉中"
    with sessions() as s:
        assert "投诉中" in {t["name"] for t in customer_tags(s, cid)}
        assert service.has_open_complaint(s, cid) and not service.has_open_complaint(s, calm)
        # A marketing audience that honours complaints leaves the customer out.
        audience = segments.count_rule(s, 'has(phone) and not tag("投诉中")',
                                       now=dt.datetime.now(dt.UTC))
        assert audience.count == 1
    with sessions() as s:
        ingest(s, "events", [{"id": "res-1", "customer_id": "C-ANGRY", "type":
                              "complaint_resolved", "ts": dt.datetime.now(dt.UTC).isoformat()}],
               settings=settings)
        s.commit()
    _run_jobs(sessions)
    assert _journey(sessions, cid)["scenarios"] == []
    with sessions() as s:
        assert "投诉中" not in {t["name"] for t in customer_tags(s, cid)}
    assert [e["scenario"] for e in _events(sessions, cid, "scenario_exited")] == ["投诉"]


def test_stage_changes_are_events_and_the_first_stage_is_a_baseline(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = _customer(sessions, settings, "C-STAGE", "13800000041")
    with sessions() as s:  # the hourly full recomputation gives new customers their stage
        service.recompute(s, now=dt.datetime.now(dt.UTC))
        s.commit()
    assert _journey(sessions, cid)["stage"] == "add_contact"
    assert _events(sessions, cid, "journey_stage_changed") == []
    with sessions() as s:
        ingest(s, "events", [{"id": "grp-1", "customer_id": "C-STAGE", "type": "join_group",
                              "ts": dt.datetime.now(dt.UTC).isoformat()}], settings=settings)
        s.commit()
    _run_jobs(sessions)
    _order(sessions, settings, "C-STAGE", "O-STAGE", days_ago=0, qty=1)
    _run_jobs(sessions)
    assert _journey(sessions, cid)["stage"] == "converted"
    assert _events(sessions, cid, "journey_stage_changed") == [
        {"from": "add_contact", "to": "join_group"}, {"from": "join_group", "to": "converted"}]
    with sessions() as s:
        assert segments.count_rule(s, 'journey = "转化"', now=dt.datetime.now(dt.UTC)).count == 1
        funnel = {row["stage"]: row["customers"] for row in service.funnel(s)}
    assert funnel["converted"] == 1


def test_full_recomputation_is_idempotent(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    _customer(sessions, settings, "C-IDEM", "13800000051")
    _order(sessions, settings, "C-IDEM", "O-IDEM", days_ago=28, qty=1)
    with sessions() as s:
        first = service.recompute(s, now=dt.datetime.now(dt.UTC))
        s.commit()
    with sessions() as s:
        again = service.recompute(s, now=dt.datetime.now(dt.UTC))
        s.commit()
    assert (first.entered, first.stage_baselines) == (1, 1)
    assert (again.entered, again.exited, again.stage_changes, again.stage_baselines) == (
        0, 0, 0, 0)


def test_a_full_recomputation_gives_postgresql_room_to_hash_for_its_transaction_only(
        sessions: sessionmaker[Session]) -> None:
    # Without it PostgreSQL rescans each rule's subquery per customer (13+ minutes at 1M).
    from sqlalchemy import text

    with sessions() as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        default = s.scalar(text("SHOW work_mem")) if postgres else None
        service.recompute(s, now=dt.datetime.now(dt.UTC))
        if postgres:
            assert s.scalar(text("SHOW work_mem")) == "256MB"
            assert s.scalar(text("SHOW jit")) == "off"
        s.commit()
        if postgres:
            assert s.scalar(text("SHOW work_mem")) == default


def test_a_rule_limited_to_some_customers_selects_exactly_those_the_full_rule_does(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    # What the per-customer recomputation relies on: with a scope, every list a condition
    # builds reads only those customers' rows, and the answer is the full answer's share.
    from siyu.segments.compiler import compile_rule
    from siyu.segments.rules import parse

    ids = [_customer(sessions, settings, f"C-S{i}", f"1380000010{i}") for i in range(4)]
    _order(sessions, settings, "C-S0", "O-S0", days_ago=57, qty=2)
    _order(sessions, settings, "C-S1", "O-S1", days_ago=2, qty=1, recipient_name="林母")
    _say(sessions, "+8613800000102", "质量太差要投诉", "m-s2")
    _run_jobs(sessions)
    rules = [rule for _, rule in service.stage_rules(sessions())] + [
        parse(text) for text in ('days_until_repurchase <= 3', 'orders_for_others >= 1',
                                 'intent("投诉", last 7d)', 'not scenario("投诉")',
                                 'orders = 0 and not consent("sms", "marketing")',
                                 'spend < 100 or tag("投诉中")')]
    now = dt.datetime.now(dt.UTC)
    with sessions() as s:
        for rule in rules:
            full = set(s.scalars(compile_rule(rule, now=now)))
            for scope in (ids[:2], ids[2:], ids[1:2]):
                got = set(s.scalars(compile_rule(rule, now=now, scope=scope)))
                assert got == full & set(scope), rule
        assert {cid for cid in ids if cid in set(s.scalars(compile_rule(
            parse('days_until_repurchase <= 3 or orders_for_others >= 1 or '
                  'intent("投诉", last 7d)'), now=now)))} == set(ids[:3])
