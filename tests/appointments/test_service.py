"""Booking, rescheduling, cancelling and recording appointments: the unique index refuses a
second holder of a slot, every change is a timeline event playbooks trigger on, and the
reminder job writes ``appointment_reminder_due`` 24 hours before, once."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.appointments import service, tasks
from siyu.appointments.errors import InvalidTransition, SlotTaken, SlotUnavailable
from siyu.appointments.models import Appointment
from siyu.channels.models import Delivery
from siyu.events.models import Event
from siyu.jobs.models import Job
from siyu.playbooks import engine
from siyu.playbooks import service as playbooks
from siyu.playbooks.models import PlaybookRun
from tests.appointments.helpers import advisor, customer, hour, nutrition, slots


def _events(db: Session, customer_id: int | None = None) -> list[tuple[str, dict[str, object]]]:
    stmt = select(Event.type, Event.properties).where(Event.type.like("appointment_%"))
    if customer_id is not None:
        stmt = stmt.where(Event.customer_id == customer_id)
    return [(t, dict(p)) for t, p in db.execute(stmt.order_by(Event.created_at, Event.id))]


def _count(db: Session, model: object) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


def test_a_booking_writes_its_event_and_queues_the_reminder_24_hours_before(db: Session
                                                                           ) -> None:
    adv = advisor(db)
    cid = customer(db, advisor_id=adv)
    [slot] = slots(db, adv, nutrition(db), 48)
    appt = service.book(db, slot, cid, channel="webchat")
    assert (appt.status, appt.advisor_id, appt.starts_at) == ("booked", adv, hour(48))
    [(kind, props)] = _events(db, cid)
    assert kind == "appointment_booked"
    assert props["service"] == "营养咨询" and props["advisor"] == "陈静"
    assert props["appointment_id"] == appt.id and props["location"] == "静安嘉里中心店"
    job = db.scalars(select(Job).where(Job.name == service.REMIND_JOB)).one()
    assert job.run_at == hour(48) - dt.timedelta(hours=24)
    assert job.payload == {"appointment_id": appt.id, "starts_at": hour(48).isoformat()}


def test_a_held_slot_refuses_a_second_booking_and_writes_nothing(db: Session) -> None:
    adv = advisor(db)
    first, second = customer(db, "林晓雯"), customer(db, "王芳")
    [slot] = slots(db, adv, nutrition(db), 30)
    service.book(db, slot, first, channel="console")
    events_before = _count(db, Event)
    with pytest.raises(SlotTaken) as refused:
        service.book(db, slot, second, channel="webchat")
    assert refused.value.status_code == 409
    assert refused.value.message == "该时段已被其他客户预约，请选择其他时间"
    # the session is still usable and nothing of the refused booking exists
    assert _count(db, Appointment) == 1 and _count(db, Event) == events_before
    assert db.scalars(select(Appointment.customer_id)).one() == first
    assert [s.id for s in service.slots(db, free_only=True)] == []


def test_a_cancelled_appointment_frees_its_slot(db: Session) -> None:
    adv = advisor(db)
    first, second = customer(db, "林晓雯"), customer(db, "王芳")
    [slot] = slots(db, adv, nutrition(db), 30)
    appt = service.book(db, slot, first, channel="console")
    service.set_status(db, appt.id, "cancelled", reason="临时有事")
    assert [s.id for s in service.slots(db, free_only=True)] == [slot]
    again = service.book(db, slot, second, channel="webchat")
    assert again.id != appt.id
    with pytest.raises(InvalidTransition):
        service.set_status(db, appt.id, "confirmed")  # cancelled stays cancelled
    assert [t for t, _ in _events(db, first)] == ["appointment_booked",
                                                  "appointment_cancelled"]


def test_reschedule_moves_the_appointment_and_refuses_a_held_slot(db: Session) -> None:
    adv = advisor(db)
    mine, other = customer(db, "林晓雯"), customer(db, "王芳")
    a, b, c = slots(db, adv, nutrition(db), 30, 50, 70)
    appt = service.book(db, a, mine, channel="webchat", confirm=True)
    assert appt.status == "confirmed"
    service.book(db, c, other, channel="console")
    moved = service.reschedule(db, appt.id, b)
    assert (moved.id, moved.slot_id, moved.status, moved.reschedules) == (appt.id, b,
                                                                          "booked", 1)
    with pytest.raises(SlotTaken):
        service.reschedule(db, appt.id, c)
    db.refresh(appt)
    assert (appt.slot_id, appt.starts_at) == (b, hour(50))
    assert {s.id for s in service.slots(db, free_only=True)} == {a}
    kinds = [t for t, _ in _events(db, mine)]
    assert kinds == ["appointment_booked", "appointment_confirmed", "appointment_rescheduled"]
    assert _events(db, mine)[-1][1]["from_starts_at"] == hour(30).isoformat()


def test_attended_and_no_show_only_once_it_began(db: Session) -> None:
    adv = advisor(db)
    cid = customer(db)
    [slot] = slots(db, adv, nutrition(db), 2)
    appt = service.book(db, slot, cid, channel="console")
    with pytest.raises(InvalidTransition, match="尚未开始"):
        service.set_status(db, appt.id, "attended")
    later = hour(2) + dt.timedelta(minutes=20)
    service.set_status(db, appt.id, "no_show", now=later)
    service.set_status(db, appt.id, "attended", now=later)  # corrected
    service.set_status(db, appt.id, "attended", now=later)  # the same again: no event
    with pytest.raises(InvalidTransition):
        service.set_status(db, appt.id, "cancelled", now=later)
    assert [t for t, _ in _events(db, cid)] == ["appointment_booked", "appointment_no_show",
                                                "appointment_attended"]
    # a past or withdrawn slot is not bookable
    with pytest.raises(SlotUnavailable):
        service.book(db, slot, customer(db, "王芳"), channel="console",
                     now=hour(3))


REMINDER = textwrap.dedent("""\
    name: 预约提醒
    status: active
    trigger: {event: appointment_reminder_due}
    reentry: every_trigger
    steps:
      - send: {channel: sms, purpose: service,
               template: "{{ customer.name }}，提醒您：{{ event.properties.starts_local }}
                 {{ event.properties.service }}（{{ event.properties.advisor }}）"}
    """)


def test_the_reminder_job_writes_its_event_once_and_a_playbook_sends_it(db: Session) -> None:
    playbooks.apply(db, REMINDER, file="reminder.yaml")
    adv = advisor(db)
    cid = customer(db, phone="+8613800138000")
    first, second = slots(db, adv, nutrition(db), 40, 60)
    appt = service.book(db, first, cid, channel="webchat")
    starts = appt.starts_at.isoformat()
    service.reschedule(db, appt.id, second)
    # the first slot's job finds the appointment moved: nothing
    assert not tasks.remind(db, appt.id, starts)
    jobs = list(db.scalars(select(Job).where(Job.name == service.REMIND_JOB)
                           .order_by(Job.run_at)))
    assert [j.run_at for j in jobs] == [hour(16), hour(36)]
    due = hour(36) + dt.timedelta(seconds=5)
    assert tasks.remind(db, appt.id, jobs[1].payload["starts_at"], now=due)
    assert not tasks.remind(db, appt.id, jobs[1].payload["starts_at"], now=due)  # a retry
    reminders = [p for t, p in _events(db, cid) if t == "appointment_reminder_due"]
    assert len(reminders) == 1 and reminders[0]["starts_at"] == hour(60).isoformat()
    run = db.scalars(select(PlaybookRun)).one()
    assert run.customer_id == cid
    engine.process_due(db, now=dt.datetime.now(dt.UTC), limit=10)
    db.flush()
    sms = db.scalars(select(Delivery).where(Delivery.channel == "sms")).one()
    label = service.local_label(hour(60), "Asia/Shanghai")
    assert f"林晓雯，提醒您：{label}" in str(sms.content)
    assert "营养咨询（陈静）" in str(sms.content)
    # cancelled: a later job for it writes nothing
    service.set_status(db, appt.id, "cancelled")
    assert not tasks.remind(db, appt.id, hour(60).isoformat(), now=due)


def test_the_calendar_file_and_its_signed_link(db: Session) -> None:
    adv = advisor(db)
    cid = customer(db)
    [slot] = slots(db, adv, nutrition(db), 30)
    appt = service.book(db, slot, cid, channel="webchat", confirm=True)
    text = service.ics(db, appt.id)
    start = hour(30).astimezone(dt.UTC)
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert f"DTSTART:{start:%Y%m%dT%H%M%SZ}\r\n" in text
    assert f"DTEND:{start + dt.timedelta(minutes=15):%Y%m%dT%H%M%SZ}\r\n" in text
    assert "SUMMARY:营养咨询 · 私域客户平台\r\n" in text and "STATUS:CONFIRMED" in text
    assert "LOCATION:静安嘉里中心店" in text
    sig = service.ics_signature("k" * 64, appt.id)
    assert service.check_ics_signature("k" * 64, appt.id, sig)
    assert not service.check_ics_signature("k" * 64, appt.id + 1, sig)
    assert not service.check_ics_signature("j" * 64, appt.id, sig)
    service.set_status(db, appt.id, "cancelled")
    assert "STATUS:CANCELLED" in service.ics(db, appt.id)


def test_the_week_shows_slots_free_and_booked(db: Session) -> None:
    adv = advisor(db)
    cid = customer(db, "林晓雯", phone="+8613800138000")
    a, b = slots(db, adv, nutrition(db), 26, 27)
    service.book(db, a, cid, channel="webchat")
    local = hour(26).astimezone(dt.timezone(dt.timedelta(hours=8)))
    monday = service.week_start(local.date())
    days = service.week(db, adv, monday, show_pii=False)
    items = [i for d in days for i in d["items"]]
    assert [(i["slot"]["id"], i["appointment"] is not None) for i in items] == [(a, True),
                                                                                (b, False)]
    booked = items[0]["appointment"]
    assert booked["customer"] == "林晓雯" and booked["customer_phone"] == "138****8000"
