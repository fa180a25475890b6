"""Publish slots, book, reschedule, cancel and record appointments. Functions take the
caller's session and never commit.

No double booking: an appointment that is not cancelled holds its slot through the partial
unique index ``uq_appointments_slot_holding`` (see :mod:`siyu.appointments.models`). A
booking or a reschedule inserts or updates inside a savepoint and a violation of the index
becomes :class:`SlotTaken` (409): there is no check-then-insert to race.

Every change writes a timeline event through :func:`siyu.events.service.record`
(``appointment_booked``, ``appointment_confirmed``, ``appointment_rescheduled``,
``appointment_cancelled``, ``appointment_attended``, ``appointment_no_show``), so playbooks
trigger on them; a job queued at booking writes ``appointment_reminder_due`` 24 hours
before the start (:mod:`siyu.appointments.tasks`), which a reminder playbook triggers on.
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.appointments.errors import (
    AppointmentNotFound,
    InvalidAppointmentInput,
    InvalidTransition,
    SlotNotFound,
    SlotTaken,
    SlotUnavailable,
)
from siyu.appointments.models import HOLDING, UPCOMING, Appointment, ServiceType, Slot
from siyu.db import utcnow
from siyu.kit import signing

REMINDER_BEFORE = dt.timedelta(hours=24)
REMIND_JOB = "appointments.remind"
MAX_SLOTS_PER_PUBLISH = 500
STATUS_ZH = {"booked": "待确认", "confirmed": "已确认", "cancelled": "已取消",
             "attended": "已到店", "no_show": "未到店"}
WEEKDAYS_ZH = "一二三四五六日"
SLOT_TAKEN_ZH = "该时段已被其他客户预约，请选择其他时间"

# -- events ---------------------------------------------------------------------------------

BOOKED = "appointment_booked"
CONFIRMED = "appointment_confirmed"
RESCHEDULED = "appointment_rescheduled"
CANCELLED = "appointment_cancelled"
ATTENDED = "appointment_attended"
NO_SHOW = "appointment_no_show"
REMINDER_DUE = "appointment_reminder_due"
EVENT_TYPES = (BOOKED, CONFIRMED, RESCHEDULED, CANCELLED, ATTENDED, NO_SHOW, REMINDER_DUE)


def local_label(at: dt.datetime, timezone: str) -> str:
    """``12月5日（周六）10:00`` in the brand's time zone."""
    local = at.astimezone(ZoneInfo(timezone))
    return f"{local.month}月{local.day}日（周{WEEKDAYS_ZH[local.weekday()]}）{local:%H:%M}"


def _advisor_name(session: Session, advisor_id: int) -> str:
    from siyu.auth import service as auth_service

    return auth_service.display_name(session, advisor_id) or "顾问"


def emit_event(session: Session, appt: Appointment, type_: str, *, timezone: str,
           now: dt.datetime, extra: dict[str, Any] | None = None, key: str | None = None
           ) -> bool:
    """Write the appointment's event ``type_`` (once per ``key``); whether it was new."""
    from siyu.events import service as events

    stype = session.get(ServiceType, appt.service_type_id)
    slot = session.get(Slot, appt.slot_id)
    props: dict[str, Any] = {
        "appointment_id": appt.id, "service": stype.name if stype else "",
        "advisor": _advisor_name(session, appt.advisor_id), "advisor_id": appt.advisor_id,
        "starts_at": appt.starts_at.isoformat(),
        "starts_local": local_label(appt.starts_at, timezone),
        "location": (slot.location if slot else None) or "", "status": appt.status,
        "channel": appt.channel, **(extra or {})}
    return events.record(session, appt.customer_id, type_,
                  id=f"appointment:{appt.id}:{type_}:{key or uuid.uuid4().hex[:12]}",
                  ts=now, properties=props, channel=appt.channel if appt.channel in (
                      "webchat",) else None, source="appointments")


def _schedule_reminder(session: Session, appt: Appointment, now: dt.datetime) -> None:
    """Queue the 24-hours-before reminder (none when the appointment is closer than that:
    the confirmation is the reminder)."""
    from siyu.jobs import service as jobs

    due = appt.starts_at - REMINDER_BEFORE
    if due <= now:
        return
    jobs.enqueue(session, REMIND_JOB, {"appointment_id": appt.id,
                                       "starts_at": appt.starts_at.isoformat()},
                 dedup_key=f"appointment-reminder:{appt.id}:{appt.starts_at:%Y%m%d%H%M}",
                 run_at=due)


# -- service types and slots ----------------------------------------------------------------


def save_service_type(session: Session, name: str, minutes: int, *,
                      description: str | None = None) -> ServiceType:
    """Create the service type ``name`` or update its duration and description."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 60:
        raise InvalidAppointmentInput("服务名称须为 1 到 60 个字", details=[
            {"field": "name", "reason": "1 to 60 characters"}])
    if not isinstance(minutes, int) or not 5 <= minutes <= 480:
        raise InvalidAppointmentInput("服务时长须在 5 到 480 分钟之间", details=[
            {"field": "minutes", "reason": "5 to 480"}])
    row = session.scalars(select(ServiceType).where(ServiceType.name == name)).first()
    if row is None:
        row = ServiceType(name=name, minutes=minutes, description=description, active=True)
        session.add(row)
    else:
        row.minutes, row.active = minutes, True
        if description is not None:
            row.description = description
    session.flush()
    return row


def service_types(session: Session) -> list[ServiceType]:
    return list(session.scalars(select(ServiceType).where(ServiceType.active.is_(True))
                                .order_by(ServiceType.id)))


def service_type_named(session: Session, name: str) -> ServiceType:
    row = session.scalars(select(ServiceType).where(ServiceType.name == name.strip())).first()
    if row is None:
        raise InvalidAppointmentInput(f"没有名为「{name}」的服务", details=[
            {"field": "service_type", "reason": "unknown"}])
    return row


def publish_slots(session: Session, advisor_id: int, service_type_id: int,
                  starts: Sequence[dt.datetime], *, location: str | None = None,
                  now: dt.datetime | None = None) -> list[int]:
    """Open slots for the advisor at each start (aware datetimes, in the future); a start
    the advisor already has a slot at is skipped. Returns the new slots' ids."""
    from siyu.auth.models import User

    now = now or utcnow()
    stype = session.get(ServiceType, service_type_id)
    if stype is None:
        raise InvalidAppointmentInput("没有这个服务类型", details=[
            {"field": "service_type_id", "reason": "unknown"}])
    advisor = session.get(User, advisor_id)
    if advisor is None or not advisor.is_active:
        raise InvalidAppointmentInput("没有这位顾问", details=[
            {"field": "advisor_id", "reason": "unknown"}])
    if not starts or len(starts) > MAX_SLOTS_PER_PUBLISH:
        raise InvalidAppointmentInput(f"一次发布 1 到 {MAX_SLOTS_PER_PUBLISH} 个时段", details=[
            {"field": "starts", "reason": f"1 to {MAX_SLOTS_PER_PUBLISH}"}])
    rows = []
    unique = list(dict.fromkeys(starts))
    for start in unique:
        if start.tzinfo is None:
            raise InvalidAppointmentInput("时段开始时间须带时区", details=[
                {"field": "starts", "reason": "timezone-aware"}])
        if start <= now:
            raise InvalidAppointmentInput("不能发布已过去的时段", details=[
                {"field": "starts", "reason": "in the past"}])
        rows.append({"advisor_id": advisor_id, "service_type_id": service_type_id,
                     "starts_at": start, "location": location,
                     "ends_at": start + dt.timedelta(minutes=stype.minutes), "open": True,
                     "created_at": now})
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = session.execute(insert(Slot).values(rows).on_conflict_do_nothing(
        index_elements=["advisor_id", "starts_at"]).returning(Slot.id, Slot.starts_at))
    # In the order of ``starts`` (RETURNING's order is not guaranteed).
    by_start: dict[dt.datetime, int] = {at: int(i) for i, at in result}
    return [by_start[at] for at in unique if at in by_start]


def withdraw_slot(session: Session, slot_id: int) -> None:
    """Take a slot out of booking (an appointment already in it stays)."""
    slot = session.get(Slot, slot_id)
    if slot is None:
        raise SlotNotFound(f"没有时段 #{slot_id}")
    slot.open = False


@dataclass(frozen=True)
class SlotView:
    id: int
    advisor_id: int
    advisor: str
    service_type_id: int
    service: str
    minutes: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    location: str | None
    label: str
    free: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "advisor_id": self.advisor_id, "advisor": self.advisor,
                "service_type_id": self.service_type_id, "service": self.service,
                "minutes": self.minutes, "starts_at": self.starts_at.isoformat(),
                "ends_at": self.ends_at.isoformat(), "location": self.location,
                "label": self.label, "free": self.free}


def _held_slot_ids(session: Session, slot_ids: list[int]) -> set[int]:
    if not slot_ids:
        return set()
    return {int(i) for i in session.scalars(select(Appointment.slot_id).where(
        Appointment.slot_id.in_(slot_ids), Appointment.status.in_(HOLDING)))}


def slots(session: Session, *, advisor_ids: Sequence[int] | None = None,
          service_type_id: int | None = None, start: dt.datetime | None = None,
          end: dt.datetime | None = None, free_only: bool = False, limit: int = 200,
          timezone: str = "Asia/Shanghai") -> list[SlotView]:
    """Slots by start time (open ones; with ``free_only`` only those nobody holds)."""
    from siyu.auth.models import User

    stmt = (select(Slot, ServiceType.name, ServiceType.minutes, User.display_name)
            .join(ServiceType, ServiceType.id == Slot.service_type_id)
            .join(User, User.id == Slot.advisor_id)
            .where(Slot.open.is_(True), User.is_active.is_(True)))
    if advisor_ids is not None:
        stmt = stmt.where(Slot.advisor_id.in_(list(advisor_ids)))
    if service_type_id is not None:
        stmt = stmt.where(Slot.service_type_id == service_type_id)
    if start is not None:
        stmt = stmt.where(Slot.starts_at >= start)
    if end is not None:
        stmt = stmt.where(Slot.starts_at < end)
    if free_only:
        held = select(Appointment.slot_id).where(Appointment.slot_id == Slot.id,
                                                 Appointment.status.in_(HOLDING))
        stmt = stmt.where(~held.exists())
    rows = session.execute(stmt.order_by(Slot.starts_at, Slot.advisor_id).limit(limit)).all()
    held_ids = set() if free_only else _held_slot_ids(session, [r[0].id for r in rows])
    return [SlotView(s.id, s.advisor_id, adv or "", s.service_type_id, name, minutes,
                     s.starts_at, s.ends_at, s.location, local_label(s.starts_at, timezone),
                     s.id not in held_ids)
            for s, name, minutes, adv in rows]


# -- booking --------------------------------------------------------------------------------


def _bookable_slot(session: Session, slot_id: int, now: dt.datetime) -> Slot:
    slot = session.get(Slot, slot_id)
    if slot is None:
        raise SlotNotFound(f"没有时段 #{slot_id}", details=[
            {"field": "slot_id", "reason": "unknown"}])
    if not slot.open:
        raise SlotUnavailable("该时段已停止预约，请选择其他时间")
    if slot.starts_at <= now:
        raise SlotUnavailable("该时段已过，请选择其他时间")
    return slot


def _hold(session: Session, write: Any) -> None:
    """Run ``write`` (an insert or a slot change) in a savepoint; the unique index's
    refusal becomes :class:`SlotTaken` and leaves the outer transaction usable."""
    try:
        with session.begin_nested():
            write()
            session.flush()
    except IntegrityError as exc:
        if "uq_appointments_slot_holding" in str(exc.orig) or "appointments.slot_id" in str(
                exc.orig):
            raise SlotTaken(SLOT_TAKEN_ZH, details=[
                {"field": "slot_id", "reason": "already booked"}]) from None
        raise


def book(session: Session, slot_id: int, customer_id: int, *, channel: str,
         booked_by: int | None = None, note: str | None = None, confirm: bool = False,
         now: dt.datetime | None = None, timezone: str = "Asia/Shanghai") -> Appointment:
    """Book ``slot_id`` for the customer. Raises :class:`SlotTaken` (409) when anyone holds
    the slot, :class:`SlotUnavailable` when it is withdrawn or past. With ``confirm`` (an
    advisor booking for the customer) the appointment is confirmed at once."""
    from siyu.customers.models import Customer

    now = now or utcnow()
    customer = session.get(Customer, customer_id)
    if customer is None or customer.status != "active":
        raise InvalidAppointmentInput(f"没有客户 #{customer_id}", details=[
            {"field": "customer_id", "reason": "unknown"}])
    slot = _bookable_slot(session, slot_id, now)
    appt = Appointment(slot_id=slot.id, customer_id=customer_id, advisor_id=slot.advisor_id,
                       service_type_id=slot.service_type_id, starts_at=slot.starts_at,
                       status="booked", channel=channel, booked_by=booked_by,
                       note=(note or None) and note[:500], reschedules=0, updated_at=now,
                       created_at=now)
    _hold(session, lambda: session.add(appt))
    emit_event(session, appt, BOOKED, timezone=timezone, now=now, key="1")
    if confirm:
        appt.status = "confirmed"
        emit_event(session, appt, CONFIRMED, timezone=timezone, now=now)
    _schedule_reminder(session, appt, now)
    return appt


def get(session: Session, appointment_id: int) -> Appointment:
    appt = session.get(Appointment, appointment_id)
    if appt is None:
        raise AppointmentNotFound(f"没有预约 #{appointment_id}")
    return appt


def reschedule(session: Session, appointment_id: int, slot_id: int, *,
               now: dt.datetime | None = None, timezone: str = "Asia/Shanghai"
               ) -> Appointment:
    """Move an upcoming appointment to another free slot (409 :class:`SlotTaken` when it is
    held); a confirmed one goes back to booked, to be confirmed again."""
    now = now or utcnow()
    appt = get(session, appointment_id)
    if appt.status not in UPCOMING:
        raise InvalidTransition(f"{STATUS_ZH[appt.status]}的预约不能改期")
    if appt.slot_id == slot_id:
        return appt
    slot = _bookable_slot(session, slot_id, now)
    before = appt.starts_at

    def move() -> None:
        appt.slot_id, appt.advisor_id = slot.id, slot.advisor_id
        appt.service_type_id, appt.starts_at = slot.service_type_id, slot.starts_at
        appt.status, appt.updated_at = "booked", now
        appt.reschedules += 1

    try:
        _hold(session, move)
    except SlotTaken:
        session.refresh(appt)
        raise
    emit_event(session, appt, RESCHEDULED, timezone=timezone, now=now,
           extra={"from_starts_at": before.isoformat(),
                  "from_local": local_label(before, timezone)}, key=str(appt.reschedules))
    _schedule_reminder(session, appt, now)
    return appt


_TRANSITIONS = {"confirmed": (("booked",), CONFIRMED),
                "cancelled": (UPCOMING, CANCELLED),
                "attended": ((*UPCOMING, "no_show"), ATTENDED),
                "no_show": ((*UPCOMING, "attended"), NO_SHOW)}


def set_status(session: Session, appointment_id: int, status: str, *,
               reason: str | None = None, now: dt.datetime | None = None,
               timezone: str = "Asia/Shanghai") -> Appointment:
    """Confirm, cancel, or record attended / no-show (only once the appointment began; a
    mistaken attended / no-show may be corrected to the other). The same status again
    changes nothing and writes no event."""
    now = now or utcnow()
    if status not in _TRANSITIONS:
        raise InvalidAppointmentInput(f"unknown status {status!r}", details=[
            {"field": "status", "reason": "confirmed, cancelled, attended or no_show"}])
    appt = get(session, appointment_id)
    if appt.status == status:
        return appt
    allowed, event_type = _TRANSITIONS[status]
    if appt.status not in allowed:
        raise InvalidTransition(
            f"{STATUS_ZH[appt.status]}的预约不能改为{STATUS_ZH[status]}")
    if status in ("attended", "no_show") and appt.starts_at > now:
        raise InvalidTransition("预约尚未开始，不能记录到店情况")
    if status == "cancelled" and appt.starts_at <= now:
        raise InvalidTransition("预约已开始，不能取消；请记录到店或未到店")
    appt.status, appt.updated_at = status, now
    session.flush()
    emit_event(session, appt, event_type, timezone=timezone, now=now,
           extra={"reason": reason} if reason else None)
    return appt


def upcoming_for_customer(session: Session, customer_id: int, *,
                          now: dt.datetime | None = None) -> list[Appointment]:
    now = now or utcnow()
    return list(session.scalars(select(Appointment).where(
        Appointment.customer_id == customer_id, Appointment.status.in_(UPCOMING),
        Appointment.starts_at > now).order_by(Appointment.starts_at)))


def list_appointments(session: Session, *, advisor_id: int | None = None,
                      customer_id: int | None = None, start: dt.datetime | None = None,
                      end: dt.datetime | None = None, limit: int = 500) -> list[Appointment]:
    stmt = select(Appointment)
    if advisor_id is not None:
        stmt = stmt.where(Appointment.advisor_id == advisor_id)
    if customer_id is not None:
        stmt = stmt.where(Appointment.customer_id == customer_id)
    if start is not None:
        stmt = stmt.where(Appointment.starts_at >= start)
    if end is not None:
        stmt = stmt.where(Appointment.starts_at < end)
    return list(session.scalars(stmt.order_by(Appointment.starts_at, Appointment.id)
                                .limit(limit)))


def describe(session: Session, appts: Sequence[Appointment], *, show_pii: bool,
             timezone: str = "Asia/Shanghai") -> list[dict[str, Any]]:
    """Appointments as JSON-ready dicts with the service, the advisor and the customer's card
    (name, phone masked unless ``show_pii``)."""
    from siyu.customers import service as customers

    types = {t.id: t for t in session.scalars(select(ServiceType).where(
        ServiceType.id.in_({a.service_type_id for a in appts})))} if appts else {}
    places = {s.id: s.location for s in session.scalars(select(Slot).where(
        Slot.id.in_({a.slot_id for a in appts})))} if appts else {}
    cards = customers.customer_cards(session, [a.customer_id for a in appts],
                                     show_pii=show_pii)
    advisors = {aid: _advisor_name(session, aid) for aid in {a.advisor_id for a in appts}}
    out = []
    for a in appts:
        stype = types.get(a.service_type_id)
        card = cards.get(a.customer_id) or {}
        minutes = stype.minutes if stype else 0
        out.append({
            "id": a.id, "slot_id": a.slot_id, "customer_id": a.customer_id,
            "customer": card.get("name") or f"客户 #{a.customer_id}",
            "customer_phone": card.get("phone"), "advisor_id": a.advisor_id,
            "advisor": advisors.get(a.advisor_id, ""), "service": stype.name if stype else "",
            "minutes": minutes, "starts_at": a.starts_at.isoformat(),
            "ends_at": (a.starts_at + dt.timedelta(minutes=minutes)).isoformat(),
            "label": local_label(a.starts_at, timezone), "status": a.status,
            "status_zh": STATUS_ZH[a.status], "channel": a.channel,
            "location": places.get(a.slot_id), "note": a.note,
            "reschedules": a.reschedules})
    return out


# -- the customer's calendar file (ICS) ----------------------------------------------------


def ics_signature(secret: str, appointment_id: int) -> str:
    """The signature in an appointment's calendar link (HMAC-SHA256 of its id under the
    install's ``appointment-ics`` key): the link needs no login and names one appointment."""
    return signing.sign(secret, str(appointment_id), b"appointment.ics")[3:35]


def check_ics_signature(secret: str, appointment_id: int, signature: str) -> bool:
    return hmac.compare_digest(ics_signature(secret, appointment_id).encode(),
                               (signature or "").encode())


def ics_path(secret: str, appointment_id: int) -> str:
    return f"/appointments/{appointment_id}.ics?sig={ics_signature(secret, appointment_id)}"


def _ics_text(value: str) -> str:
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def ics(session: Session, appointment_id: int, *, brand: str = "私域客户平台",
        now: dt.datetime | None = None) -> str:
    """The appointment as an iCalendar file (RFC 5545): one VEVENT, times in UTC, cancelled
    ones with ``STATUS:CANCELLED`` so a calendar that imported it removes it."""
    appt = get(session, appointment_id)
    stype = session.get(ServiceType, appt.service_type_id)
    slot = session.get(Slot, appt.slot_id)
    minutes = stype.minutes if stype else 30
    fmt = "%Y%m%dT%H%M%SZ"
    start = appt.starts_at.astimezone(dt.UTC)
    end = start + dt.timedelta(minutes=minutes)
    status = {"cancelled": "CANCELLED", "booked": "TENTATIVE"}.get(appt.status, "CONFIRMED")
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//siyu//appointments//ZH", "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH", "BEGIN:VEVENT", f"UID:appointment-{appt.id}@siyu",
        f"DTSTAMP:{(now or utcnow()).astimezone(dt.UTC):{fmt}}",
        f"DTSTART:{start:{fmt}}", f"DTEND:{end:{fmt}}",
        f"SEQUENCE:{appt.reschedules + (1 if appt.status == 'cancelled' else 0)}",
        f"SUMMARY:{_ics_text((stype.name if stype else '预约') + ' · ' + brand)}",
        f"DESCRIPTION:{_ics_text('顾问：' + _advisor_name(session, appt.advisor_id))}",
        f"STATUS:{status}",
    ]
    if slot is not None and slot.location:
        lines.append(f"LOCATION:{_ics_text(slot.location)}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


# -- the advisor's week ---------------------------------------------------------------------


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def week(session: Session, advisor_id: int, monday: dt.date, *, show_pii: bool,
         timezone: str = "Asia/Shanghai") -> list[dict[str, Any]]:
    """The advisor's week from ``monday`` (brand time): per day, its slots in time order,
    each with the appointment holding it (or the latest cancelled one) or free."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(monday, dt.time(0), zone).astimezone(dt.UTC)
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(0), zone).astimezone(dt.UTC)
    slot_rows = slots(session, advisor_ids=[advisor_id], start=start, end=end, limit=2000,
                      timezone=timezone)
    appts = list_appointments(session, advisor_id=advisor_id, start=start, end=end, limit=2000)
    by_slot: dict[int, dict[str, Any]] = {}
    for a in describe(session, appts, show_pii=show_pii, timezone=timezone):
        if a["status"] != "cancelled" or a["slot_id"] not in by_slot:
            by_slot[a["slot_id"]] = a
    days: list[dict[str, Any]] = []
    for offset in range(7):
        day = monday + dt.timedelta(days=offset)
        days.append({"date": day, "label": f"{day.month}月{day.day}日",
                     "weekday": f"周{WEEKDAYS_ZH[day.weekday()]}", "items": []})
    seen: set[int] = set()
    for s in slot_rows:
        local = s.starts_at.astimezone(zone)
        days[(local.date() - monday).days]["items"].append(
            {"time": f"{local:%H:%M}", "slot": s.to_dict(), "appointment": by_slot.get(s.id)})
        seen.add(s.id)
    for slot_id, a in by_slot.items():  # appointments in withdrawn slots still show
        if slot_id in seen:
            continue
        local = dt.datetime.fromisoformat(a["starts_at"]).astimezone(zone)
        days[(local.date() - monday).days]["items"].append(
            {"time": f"{local:%H:%M}", "slot": None, "appointment": a})
    for d in days:
        d["items"].sort(key=lambda i: i["time"])
    return days
