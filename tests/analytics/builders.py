"""Small builders for analytics tests: customers with orders and events placed on brand-zone
calendar days relative to today."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers.service import upsert_customers
from siyu.events.service import ingest

ZONE = ZoneInfo("Asia/Shanghai")


def today() -> dt.date:
    return dt.datetime.now(ZONE).date()


def end_of_today() -> dt.datetime:
    """The last microsecond of today in Shanghai, as UTC: scoring "as of" it sees all of
    today's data."""
    start = dt.datetime.combine(today() + dt.timedelta(days=1), dt.time(), ZONE)
    return (start - dt.timedelta(microseconds=1)).astimezone(dt.UTC)


def at(days_ago: int, hour: int = 12, minute: int = 0) -> str:
    """ISO time ``days_ago`` days before today at ``hour:minute`` Shanghai time."""
    day = today() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour, minute), ZONE).isoformat()


def add_customers(session: Session, settings: Settings, *records: dict[str, Any]) -> list[int]:
    return upsert_customers(session, list(records), settings=settings).customer_ids


def add_orders(session: Session, settings: Settings, customer: str,
               *orders: tuple[int, float] | tuple[int, float, str] | dict[str, Any]) -> None:
    """Orders for brand customer id ``customer``: ``(days_ago, amount[, status])`` at noon,
    or full dicts."""
    rows = []
    for i, spec in enumerate(orders):
        if isinstance(spec, dict):
            rows.append({"customer_id": customer, **spec})
            continue
        days_ago, amount, *status = spec
        rows.append({"id": f"{customer}-o{i}-{days_ago}", "customer_id": customer,
                     "ts": at(days_ago), "amount": amount,
                     "status": status[0] if status else "completed"})
    ingest(session, "orders", rows, settings=settings)


def add_events(session: Session, settings: Settings, customer: str,
               *events: tuple[int, str] | tuple[int, str, dict[str, Any]]) -> None:
    rows = []
    for i, (days_ago, kind, *props) in enumerate(events):
        rows.append({"id": f"{customer}-e{i}-{kind}", "customer_id": customer, "type": kind,
                     "ts": at(days_ago), "properties": props[0] if props else {}})
    ingest(session, "events", rows, settings=settings)
