"""The demo brand's advisor appointments (Smart BA): three services, the first advisors'
slots for the coming two weeks (some already booked, some confirmed) and the past week's
appointments attended, missed or cancelled — all through the appointments service, so
each has its events on the customer's timeline — and the two playbooks that confirm and
remind (applied after the history, so past events start no run; upcoming appointments'
24-hour reminders fire live from their queued jobs).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.appointments import service

SERVICES = (("营养咨询", 15, "一对一饮食与营养建议"),
            ("新品试用", 30, "到店试吃新品，顾问讲解搭配"),
            ("体检报告解读", 30, "带上体检报告，顾问解读并给出调理建议"))
ADVISORS = 4
FUTURE_DAYS = 14
PAST_DAYS = 7
# Brand-time starts of each working day's slots (Sunday off), and where.
TIMES = ((10, 0), (11, 0), (14, 0), (15, 30))
LOCATIONS = ("静安嘉里中心店", "线上视频", "徐汇日月光店")
# The first customers are the showcase's: their stories stay as the demo tells them.
SHOWCASE = 30

PLAYBOOKS = Path(__file__).resolve().parent / "data" / "appointment_playbooks"


@dataclass
class AppointmentsSeed:
    slots: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _starts(day: dt.date, zone: ZoneInfo) -> list[dt.datetime]:
    return [dt.datetime.combine(day, dt.time(h, m), zone).astimezone(dt.UTC) for h, m in TIMES]


def seed_demo_appointments(session: Session, *, now: dt.datetime, seed: int = 42,
                           timezone: str = "Asia/Shanghai") -> AppointmentsSeed:
    """Seed the demo's services, slots and appointments (see the module docstring)."""
    from siyu.auth.models import User
    from siyu.customers.models import Customer
    from siyu.playbooks import service as playbooks

    started = time.perf_counter()
    out = AppointmentsSeed()
    rng = random.Random(seed * 31 + 7)
    zone = ZoneInfo(timezone)
    types = [service.save_service_type(session, name, minutes, description=about).id
             for name, minutes, about in SERVICES]
    advisors = list(session.scalars(select(User.id).where(
        User.role == "agent", User.is_active.is_(True)).order_by(User.id).limit(ADVISORS)))
    today = now.astimezone(zone).date()
    # Customers without an advisor of their own book whoever has time (as the web chat
    # offers them); each books at most once.
    walk_ins = list(session.scalars(select(Customer.id).where(
        Customer.advisor_id.is_(None), Customer.status == "active", Customer.id > SHOWCASE)
        .order_by(Customer.id).limit(400)))
    rng.shuffle(walk_ins)
    for n, adv in enumerate(advisors):
        own = list(session.scalars(select(Customer.id).where(
            Customer.advisor_id == adv, Customer.status == "active", Customer.id > SHOWCASE)
            .order_by(Customer.id).limit(100)))
        rng.shuffle(own)
        pool = walk_ins[n * 60:(n + 1) * 60] + own
        for offset in range(-PAST_DAYS, FUTURE_DAYS + 1):
            day = today + dt.timedelta(days=offset)
            if day.weekday() == 6:
                continue
            starts = [s for s in _starts(day, zone) if offset < 0 or s > now]
            if not starts:
                continue
            stype = types[(n + offset) % len(types)]
            ids = service.publish_slots(session, adv, stype, starts,
                                        location=LOCATIONS[n % len(LOCATIONS)],
                                        now=min(now, starts[0]) - dt.timedelta(days=10))
            out.slots += len(ids)
            for slot_id, start in zip(ids, starts, strict=True):
                if rng.random() > (0.6 if start < now else 0.3) or not pool:
                    continue
                status = _book(session, slot_id, pool.pop(), start=start, now=now,
                               rng=rng, timezone=timezone)
                out.statuses[status] = out.statuses.get(status, 0) + 1
    session.flush()
    for path in sorted(PLAYBOOKS.glob("*.yaml")):
        playbooks.apply(session, path.read_text(encoding="utf-8"), file=path.name)
    out.seconds = time.perf_counter() - started
    return out


def _book(session: Session, slot_id: int, customer_id: int, *, start: dt.datetime,
          now: dt.datetime, rng: random.Random, timezone: str) -> str:
    """Book the slot some days before it and play out what happened since."""
    booked_at = min(max(start - dt.timedelta(days=rng.uniform(1.5, 6)),
                        now - dt.timedelta(days=9)),
                    now - dt.timedelta(minutes=rng.uniform(10, 600)))
    channel = "webchat" if rng.random() < 0.5 else "console"
    appt = service.book(session, slot_id, customer_id, channel=channel, now=booked_at,
                        timezone=timezone)
    confirmed_at = booked_at + dt.timedelta(hours=rng.uniform(0.2, 6))
    roll = rng.random()
    if start > now:
        if confirmed_at < now and roll < 0.6:
            service.set_status(session, appt.id, "confirmed", now=confirmed_at,
                               timezone=timezone)
        return appt.status
    if roll < 0.12:
        service.set_status(session, appt.id, "cancelled", reason="客户临时有事",
                           now=start - dt.timedelta(hours=rng.uniform(3, 20)),
                           timezone=timezone)
        return "cancelled"
    service.set_status(session, appt.id, "confirmed", now=confirmed_at, timezone=timezone)
    outcome = "no_show" if roll < 0.27 else "attended"
    service.set_status(session, appt.id, outcome,
                       now=start + dt.timedelta(minutes=rng.uniform(5, 40)),
                       timezone=timezone)
    return outcome
