"""Background jobs of the appointments domain: the reminder 24 hours before."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from siyu.appointments import service
from siyu.appointments.models import UPCOMING, Appointment
from siyu.config import get_settings
from siyu.db import utcnow
from siyu.jobs.service import job


def remind(session: Session, appointment_id: int, starts_at: str, *,
           now: dt.datetime | None = None) -> bool:
    """Write ``appointment_reminder_due`` for the appointment, once, if it is still upcoming
    at the time the job was queued for (a reschedule queues its own reminder; a cancelled
    or moved appointment makes the old job a no-op). Returns whether it wrote the event."""
    appt = session.get(Appointment, appointment_id)
    if appt is None or appt.status not in UPCOMING or appt.starts_at.isoformat() != starts_at:
        return False
    now = now or utcnow()
    if appt.starts_at <= now:
        return False
    return service.emit_event(session, appt, service.REMINDER_DUE,
                              timezone=get_settings().timezone, now=now,
                              key=f"{appt.starts_at:%Y%m%d%H%M}")


@job(service.REMIND_JOB)
def remind_job(session: Session, payload: dict[str, Any]) -> None:
    remind(session, int(payload["appointment_id"]), str(payload["starts_at"]))
