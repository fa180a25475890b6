"""Builders for the playbook tests: customers with identities and consent, playbook files,
events through the real ingest, and the engine run with an injected clock."""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.models import Delivery
from siyu.config import Settings
from siyu.customers.models import Consent, Customer, Identity
from siyu.events.service import ingest
from siyu.playbooks import engine, service
from siyu.playbooks.models import PlaybookRun, StepLog
from tests.console.conftest import (  # noqa: F401  (the console fixtures, for console tests)
    live_server,
    login,
    make_user,
    staff,
)

# 2026-03-02 10:00 in Shanghai: inside the default sending hours.
NOON = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, at: dt.datetime = NOON) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **kw: float) -> dt.datetime:
        self.at += dt.timedelta(**kw)
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_customer(s: Session, *, name: str = "王芳", email: str | None = None,
                  phone: str | None = None, consent: tuple[str, ...] = ("email", "sms"),
                  gender: str | None = None, city: str | None = None,
                  attributes: dict[str, Any] | None = None, external: str | None = None
                  ) -> int:
    c = Customer(name=name, gender=gender, city=city, attributes=attributes or {})
    s.add(c)
    s.flush()
    if email is None and phone is None and external is None:
        email = f"c{c.id}@example.com"
    for kind, value in (("email", email), ("phone", phone),
                        ("external_id", external)):
        if value:
            s.add(Identity(customer_id=c.id, kind=kind, value=value))
    for channel in consent:
        s.add(Consent(customer_id=c.id, channel=channel, purpose="marketing", granted=True,
                      at=NOON - dt.timedelta(days=30), source="test"))
    s.flush()
    return c.id


def apply(s: Session, text: str, file: str = "pb.yaml") -> dict[str, Any]:
    return service.apply(s, textwrap.dedent(text), file=file)


def fire(s: Session, settings: Settings, customer_id: int, type_: str, at: dt.datetime, *,
         eid: str | None = None, source: str = "api", **props: Any) -> None:
    """Ingest one event for ``customer_id`` (named by its external id ``x<id>``)."""
    ident = s.scalar(select(Identity).where(Identity.customer_id == customer_id,
                                            Identity.kind == "external_id"))
    if ident is None:
        s.add(Identity(customer_id=customer_id, kind="external_id", value=f"x{customer_id}"))
        s.flush()
        value = f"x{customer_id}"
    else:
        value = ident.value
    ingest(s, "events", [{"id": eid or f"e-{type_}-{customer_id}-{at.timestamp()}",
                          "type": type_, "ts": at.isoformat(), "properties": props,
                          "identities": [{"kind": "external_id", "value": value}]}],
           settings=settings, source=source)


def tick(s: Session, clock: Clock, rounds: int = 5) -> int:
    total = 0
    for _ in range(rounds):
        n = engine.process_due(s, now=clock(), limit=500)
        s.flush()
        total += n
        if n == 0:
            break
    return total


def outbox_rows(s: Session) -> list[Delivery]:
    return list(s.scalars(select(Delivery).where(Delivery.key.is_not(None))
                          .order_by(Delivery.id)))


def logs(s: Session, outcome: str | None = None) -> list[StepLog]:
    stmt = select(StepLog).order_by(StepLog.id)
    if outcome:
        stmt = stmt.where(StepLog.outcome == outcome)
    return list(s.scalars(stmt))


def runs(s: Session) -> list[PlaybookRun]:
    return list(s.scalars(select(PlaybookRun).order_by(PlaybookRun.id)))


def count(s: Session, model: Any) -> int:
    return int(s.scalar(select(func.count()).select_from(model)) or 0)


__all__ = ["NOON", "Clock", "apply", "count", "fire", "logs", "make_customer", "outbox_rows",
           "runs", "sessionmaker", "tick"]


@pytest.fixture(autouse=True)
def _playbook_clock(clock: Clock) -> Any:
    from siyu.playbooks import clock as pb_clock

    pb_clock.use_clock(clock)
    yield
    pb_clock.use_clock(None)
