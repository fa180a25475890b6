"""The clock's triggers: ``schedule`` (cron in brand time, a job at the next occurrence),
``inactive_days`` (exactly N days since the latest activity) and ``date`` (a birthday or a
date attribute ``offset_days`` away), each started once per occurrence or day."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics import service as analytics
from siyu.analytics.config import ScoringConfig
from siyu.config import Settings
from siyu.customers.models import Customer
from siyu.jobs import service as jobs
from siyu.jobs.models import Job
from siyu.jobs.worker import load_tasks
from siyu.playbooks import tasks, triggers
from tests.playbooks.conftest import (
    NOON,
    Clock,
    apply,
    fire,
    make_customer,
    outbox_rows,
    runs,
    tick,
)

WEEKLY = """\
name: 周一早安
status: active
trigger: {schedule: "0 10 * * 1"}
audience: 'has(email)'
reentry: every_trigger
steps:
  - send: {channel: email, subject: "早安", template: "{{ customer.name }}，新的一周好"}
"""


def test_a_cron_schedule_starts_its_audience_at_the_minute_once(
        db: Session, settings: Settings, clock: Clock) -> None:
    with_mail = make_customer(db, name="李娜", email="lina@example.com")
    make_customer(db, name="王芳", phone="+8613800000011", email=None)
    # 2026-03-02 is a Monday; NOON is 10:00 in Shanghai
    assert triggers.cron_matches("0 10 * * 1", NOON.astimezone(
        dt.timezone(dt.timedelta(hours=8))))
    apply(db, WEEKLY)
    assert triggers.on_minute(db, NOON + dt.timedelta(minutes=1)) == 0
    assert triggers.on_minute(db, NOON) == 1
    assert triggers.on_minute(db, NOON) == 0  # the same occurrence again starts nothing
    assert [r.customer_id for r in runs(db)] == [with_mail]
    tick(db, clock)
    assert [d.content["text"] for d in outbox_rows(db)] == ["李娜，新的一周好"]
    # next Monday is a new occurrence: every_trigger lets her in again
    assert triggers.on_minute(db, NOON + dt.timedelta(days=7)) == 1
    assert triggers.on_minute(db, NOON + dt.timedelta(days=1)) == 0  # Tuesday


def test_applying_a_schedule_queues_its_next_occurrence_and_the_job_runs_it(
        sessions: sessionmaker[Session], settings: Settings, clock: Clock) -> None:
    load_tasks()
    clock.at = NOON - dt.timedelta(minutes=30)  # 09:30 on the Monday
    with sessions() as s:
        make_customer(s, name="李娜", email="lina@example.com")
        apply(s, WEEKLY)
        s.commit()
    with sessions() as s:
        queued = s.scalars(select(Job).where(Job.name == tasks.SCHEDULE_JOB)).all()
        assert [(j.run_at, j.payload["minute"]) for j in queued] == [
            (NOON, NOON.isoformat())]
    jobs.run_due(sessions, worker="test")
    with sessions() as s:
        assert len(runs(s)) == 1
        following = s.scalars(select(Job).where(Job.name == tasks.SCHEDULE_JOB,
                                                Job.status == "queued")).all()
        assert [j.run_at for j in following] == [NOON + dt.timedelta(days=7)]


def test_a_schedule_job_found_hours_late_skips_ahead(
        sessions: sessionmaker[Session], settings: Settings, clock: Clock) -> None:
    load_tasks()
    with sessions() as s:
        make_customer(s, name="李娜", email="lina@example.com")
        apply(s, WEEKLY)
        s.execute(delete(Job))  # only the late job below (the queue's clock is the wall's)
        jobs.enqueue(s, tasks.SCHEDULE_JOB, {"minute": NOON.isoformat()}, dedup_key="late")
        s.commit()
    clock.at = NOON + dt.timedelta(hours=7)  # 17:00: the 10:00 greeting is stale
    jobs.run_due(sessions, worker="test")
    with sessions() as s:
        assert runs(s) == []
        assert s.scalars(select(Job).where(Job.name == tasks.SCHEDULE_JOB,
                                           Job.status == "queued")).all() != []  # goes on


INACTIVE = """\
name: 沉默唤醒
status: active
trigger: {inactive_days: 60}
steps:
  - send: {channel: email, subject: "好久不见", template: "{{ customer.name }}，好久不见"}
"""


def test_inactive_days_starts_who_went_quiet_exactly_n_days_ago(
        db: Session, settings: Settings, clock: Clock) -> None:
    apply(db, INACTIVE)
    quiet = make_customer(db, name="六十天")
    recent = make_customer(db, name="五十九天")
    older = make_customer(db, name="九十天")
    for cid, days in ((quiet, 60), (recent, 59), (older, 90)):
        fire(db, settings, cid, "view_product", NOON - dt.timedelta(days=days), source="import")
    # the latest activity is read from the scores, as the rule language's last_active_days
    analytics.recompute_scores(db, now=NOON, config=ScoringConfig())
    assert triggers.on_day(db, NOON) == 1
    assert triggers.on_day(db, NOON + dt.timedelta(hours=3)) == 0  # once a day
    assert [r.customer_id for r in runs(db)] == [quiet]
    assert runs(db)[0].trigger["type"] == "inactive_days"
    analytics.recompute_scores(db, now=NOON + dt.timedelta(days=1), config=ScoringConfig())
    assert triggers.on_day(db, NOON + dt.timedelta(days=1)) == 1  # 五十九天 reaches 60
    assert {r.customer_id for r in runs(db)} == {quiet, recent}
    assert older not in {r.customer_id for r in runs(db)}


BIRTHDAY = """\
name: 生日关怀
status: active
trigger: {date: birthday, offset_days: -3}
steps:
  - send: {channel: email, subject: "生日快乐", template: "{{ customer.name }}，三天后是您的生日"}
"""


def test_a_date_trigger_fires_offset_days_before_the_birthday(
        db: Session, settings: Settings, clock: Clock) -> None:
    apply(db, BIRTHDAY)
    soon = make_customer(db, name="三天后")
    later = make_customer(db, name="四天后")
    none = make_customer(db, name="未填生日")
    db.get(Customer, soon).birthday = dt.date(1990, 3, 5)  # type: ignore[union-attr]
    db.get(Customer, later).birthday = dt.date(1985, 3, 6)  # type: ignore[union-attr]
    db.flush()
    assert triggers.on_day(db, NOON) == 1
    assert [r.customer_id for r in runs(db)] == [soon]
    assert none not in {r.customer_id for r in runs(db)}
    tick(db, clock)
    assert [d.content["text"] for d in outbox_rows(db)] == ["三天后，三天后是您的生日"]


def test_a_date_attribute_and_the_29th_of_february(db: Session, settings: Settings) -> None:
    leap = make_customer(db, name="闰日", attributes={"car_purchase_date": "2024-02-29"})
    plain = make_customer(db, name="平日", attributes={"car_purchase_date": "2023-02-28"})
    make_customer(db, name="文字", attributes={"car_purchase_date": "不知道"})
    # Not dates, though their characters 6 to 10 read 02-28: the rule language's attr_days
    # would not read them as dates either.
    make_customer(db, name="无效", attributes={"car_purchase_date": "2023-02-28x"})
    make_customer(db, name="数字", attributes={"car_purchase_date": 20230228})
    make_customer(db, name="月份", attributes={"car_purchase_date": "0000-02-28"})
    assert triggers._dated_ids(db, "car_purchase_date", dt.date(2027, 2, 28)) == [leap, plain]
    assert triggers._dated_ids(db, "car_purchase_date", dt.date(2028, 2, 28)) == [plain]
    assert triggers._dated_ids(db, "car_purchase_date", dt.date(2028, 2, 29)) == [leap]


def test_a_starting_worker_catches_up_todays_daily_run(
        sessions: sessionmaker[Session], clock: Clock) -> None:
    clock.at = NOON + dt.timedelta(hours=3)  # 13:00: 10:00 passed with no worker
    tasks.on_worker_start(sessions)
    tasks.on_worker_start(sessions)  # idempotent
    with sessions() as s:
        daily = sorted(j.run_at for j in s.scalars(select(Job).where(
            Job.name == tasks.DAILY_JOB)))
    assert daily == [clock.at, NOON + dt.timedelta(days=1)]
