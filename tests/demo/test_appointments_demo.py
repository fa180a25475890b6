"""The demo's advisors publish three services for the coming two weeks; some upcoming slots
are booked or confirmed, the past week's appointments were attended, missed or cancelled,
each with its events on the customer's timeline; the confirmation and reminder playbooks
are active, and seeding all this stays quick."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.appointments import service
from siyu.appointments.models import Appointment, ServiceType, Slot
from siyu.config import Settings
from siyu.db import make_session_factory, session_scope
from siyu.demo.appointments import ADVISORS, SHOWCASE, AppointmentsSeed, seed_demo_appointments
from siyu.demo.generator import seed_demo
from siyu.events.models import Event
from siyu.jobs.models import Job
from siyu.playbooks.models import Playbook, PlaybookRun
from tests.conftest import empty_all_tables

NOW = dt.datetime(2025, 6, 30, 4, 0, tzinfo=dt.UTC)  # a Monday, 12:00 in Shanghai
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def demo(engine: Engine, database_url: str) -> Iterator[tuple[sessionmaker[Session],
                                                             AppointmentsSeed]]:
    empty_all_tables(engine)
    sessions = make_session_factory(engine)
    seed_demo(sessions, Settings(database_url=database_url, environment="test"),
              customers=400, seed=7, now=NOW)
    with session_scope(sessions) as session:
        report = seed_demo_appointments(session, now=NOW, seed=7)
    yield sessions, report
    empty_all_tables(engine)


def test_advisors_publish_two_weeks_of_three_services(
        demo: tuple[sessionmaker[Session], AppointmentsSeed]) -> None:
    sessions, report = demo
    with sessions() as s:
        assert [t.name for t in s.scalars(select(ServiceType).order_by(ServiceType.id))] == [
            "营养咨询", "新品试用", "体检报告解读"]
        future = list(s.scalars(select(Slot).where(Slot.starts_at > NOW)))
        assert len({sl.advisor_id for sl in future}) == ADVISORS
        days = {sl.starts_at.astimezone(ZONE).date() for sl in future}
        assert min(days) == dt.date(2025, 6, 30) and max(days) == dt.date(2025, 7, 14)
        assert all(d.weekday() != 6 for d in days)  # Sundays off
        assert len({sl.service_type_id for sl in future}) == 3
        assert report.slots == s.scalar(select(func.count()).select_from(Slot))
        free = service.slots(s, start=NOW, free_only=True, limit=2000)
        assert 0 < len(free) < len(future)
    assert report.seconds < 10
    print(f"\nappointments demo: {report.slots} slots, {report.statuses}, {report.seconds:.2f} s")


def test_past_appointments_were_attended_missed_or_cancelled_with_their_events(
        demo: tuple[sessionmaker[Session], AppointmentsSeed]) -> None:
    sessions, report = demo
    with sessions() as s:
        appts = list(s.scalars(select(Appointment)))
        past = Counter(a.status for a in appts if a.starts_at < NOW)
        upcoming = Counter(a.status for a in appts if a.starts_at > NOW)
        assert set(past) == {"attended", "no_show", "cancelled"}
        assert past["attended"] > past["no_show"] > 0
        assert set(upcoming) == {"booked", "confirmed"}
        assert sum(past.values()) + sum(upcoming.values()) == sum(report.statuses.values())
        assert min(a.customer_id for a in appts) > SHOWCASE
        assert {a.channel for a in appts} == {"webchat", "console"}
        kinds = Counter(s.scalars(select(Event.type).where(Event.type.like("appointment_%"))))
        assert kinds["appointment_booked"] == len(appts)
        assert kinds["appointment_attended"] == past["attended"]
        assert kinds["appointment_no_show"] == past["no_show"]
        assert kinds["appointment_cancelled"] == past["cancelled"]
        # no event from the future of the seed's moment
        latest = s.scalar(select(func.max(Event.ts)).where(Event.type.like("appointment_%")))
        assert latest is not None and latest <= NOW


def test_the_confirmation_and_reminder_playbooks_wait_for_live_events(
        demo: tuple[sessionmaker[Session], AppointmentsSeed]) -> None:
    sessions, _ = demo
    with sessions() as s:
        names = {p.name: (p.status, p.trigger_value) for p in s.scalars(select(Playbook))}
        assert names["预约确认"] == ("active", "appointment_confirmed")
        assert names["预约提醒"] == ("active", "appointment_reminder_due")
        ids = [p.id for p in s.scalars(select(Playbook).where(
            Playbook.name.in_(["预约确认", "预约提醒"])))]
        assert not s.scalar(select(func.count()).select_from(PlaybookRun).where(
            PlaybookRun.playbook_id.in_(ids)))  # the history starts no run
        upcoming = s.scalar(select(func.count()).select_from(Appointment).where(
            Appointment.starts_at > NOW + dt.timedelta(hours=24)))
        reminders = s.scalar(select(func.count()).select_from(Job).where(
            Job.name == service.REMIND_JOB, Job.run_at > NOW))
        assert upcoming and reminders == upcoming
