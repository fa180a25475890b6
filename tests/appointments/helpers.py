"""Builders for the appointments tests: an advisor, a customer, a service type and slots."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from siyu.appointments import service
from siyu.auth.service import create_user
from siyu.customers.models import Customer, Identity
from tests.console.conftest import PASSWORD


def advisor(db: Session, username: str = "advisor01", name: str = "陈静",
            role: str = "agent") -> int:
    return create_user(db, username, PASSWORD, role, display_name=name).id


def customer(db: Session, name: str = "林晓雯", phone: str | None = None,
             advisor_id: int | None = None) -> int:
    row = Customer(name=name, advisor_id=advisor_id)
    db.add(row)
    db.flush()
    if phone:
        db.add(Identity(customer_id=row.id, kind="phone", value=phone))
        db.flush()
    return row.id


def hour(hours_from_now: float, now: dt.datetime | None = None) -> dt.datetime:
    base = (now or dt.datetime.now(dt.UTC)).replace(minute=0, second=0, microsecond=0)
    return base + dt.timedelta(hours=hours_from_now)


def nutrition(db: Session) -> int:
    return service.save_service_type(db, "营养咨询", 15).id


def slots(db: Session, advisor_id: int, type_id: int, *hours: float,
          location: str | None = "静安嘉里中心店") -> list[int]:
    return service.publish_slots(db, advisor_id, type_id, [hour(h) for h in hours],
                                 location=location)
