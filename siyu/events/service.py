"""Ingest of orders and events: validate every record, resolve identities, insert once.

A batch is one unit of work. Without ``partial`` a batch with any bad record writes nothing;
with ``partial`` the good records land and the bad ones are reported. Record ids come from
the client, so a retried batch stores each record once.

Orders change after they are placed (paid -> shipped -> delivered, or -> refunded): a
repeated order id whose version (``updated_at``, else ``ts``) is later than the stored one
updates the stored order in place, and a change of status writes an
``order_status_changed`` event {order_id, from, to} on the customer's timeline. The same or
an older version is a duplicate and changes nothing, so updates arriving out of order end
in the latest state. Within one batch the latest version of an id wins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers.identity import Resolver
from siyu.errors import InvalidInput
from siyu.events import hooks
from siyu.events.models import Event, Order
from siyu.events.schemas import EventIn, OrderIn
from siyu.kit.bulk import bulk_insert, id_in, select_in
from siyu.kit.perf import paused_gc
from siyu.kit.validation import BatchValidator, RecordError, check_records, validation_context

RecordKind = Literal["orders", "events"]
ORDER_STATUS_CHANGED = "order_status_changed"
"""Timeline event of an order whose status changed: {order_id, from, to}."""
_VALIDATORS: dict[str, BatchValidator[Any]] = {
    "orders": BatchValidator(OrderIn),
    "events": BatchValidator(EventIn),
}
_TABLES: dict[str, Table] = {"orders": Order.__table__, "events": Event.__table__}  # type: ignore[dict-item]


@dataclass
class IngestResult:
    """What a batch did: ``accepted`` new records, ``duplicates`` already stored, and why
    each ``rejected`` record was refused."""

    kind: str
    received: int = 0
    accepted: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: list[RecordError] = field(default_factory=list)
    merges: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "received": self.received,
            "accepted": self.accepted,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "rejected": [r.to_dict() for r in self.rejected],
            "merges": self.merges,
            "conflicts": self.conflicts,
        }


def _row(kind: str, rec: Any, customer_id: int) -> dict[str, Any]:
    # created_at comes from the server default: one less timestamp to convert per row.
    if kind == "orders":
        return {
            "id": rec.id, "customer_id": customer_id, "ts": rec.ts, "amount": rec.amount,
            "currency": rec.currency, "status": rec.status, "channel": rec.channel,
            "items": [i.model_dump(exclude_none=True) for i in rec.items],
            "updated_at": rec.updated_at, "recipient_name": rec.recipient_name,
            "recipient_phone": rec.recipient_phone, "recipient_address": rec.recipient_address,
        }
    return {
        "id": rec.id, "customer_id": customer_id, "type": rec.type, "ts": rec.ts,
        "channel": rec.channel, "properties": rec.properties,
    }


def ingest(
    session: Session,
    kind: RecordKind,
    records: Sequence[Any],
    *,
    settings: Settings,
    partial: bool = False,
    source: str = "api",
) -> IngestResult:
    """Validate and store a batch of orders or events (see the module docstring)."""
    with paused_gc():
        return _ingest(session, kind, records, settings=settings, partial=partial, source=source)


def _ingest(
    session: Session,
    kind: RecordKind,
    records: Sequence[Any],
    *,
    settings: Settings,
    partial: bool,
    source: str,
) -> IngestResult:
    if len(records) > settings.max_batch_records:
        raise InvalidInput(
            f"a batch holds at most {settings.max_batch_records} records; got {len(records)}",
            details={"field": kind, "reason": "too many records"},
        )
    result = IngestResult(kind=kind, received=len(records))
    checked = check_records(_VALIDATORS[kind], records, context=validation_context(settings))
    result.rejected = checked.rejected
    if checked.rejected and not partial:
        raise InvalidInput(
            f"{len(checked.rejected)} of {len(records)} {kind} are invalid; nothing was written "
            "(send ?partial=true to store the valid ones)",
            details={"rejected": [r.to_dict() for r in checked.rejected]},
        )

    if kind == "orders":
        latest = _latest_versions([rec for _, rec in checked.valid])
        result.duplicates += len(checked.valid) - len(latest)
        stored = {row[0] for row in select_in(session, _TABLES[kind], ("id",), "id",
                                              list(latest))}
        fresh = [rec for oid, rec in latest.items() if oid not in stored]
        changed = (_update_orders(session, [latest[oid] for oid in stored], source)
                   if stored else [])
        result.updated = len(changed)
        result.duplicates += len(stored) - len(changed)
    else:
        # Ids stored before, or repeated inside this batch, are duplicates: retries are no-ops.
        seen: set[str] = set()
        ids = [rec.id for _, rec in checked.valid]
        seen.update(row[0] for row in select_in(session, _TABLES[kind], ("id",), "id", ids))
        fresh = []
        for _, rec in checked.valid:
            if rec.id in seen:
                result.duplicates += 1
                continue
            seen.add(rec.id)
            fresh.append(rec)
        changed = []
    if not fresh and not changed:
        return result

    customer_ids: list[int] = []
    if fresh:
        resolver = Resolver(session, source=f"{kind} {source}",
                            exclusive_kinds=settings.exclusive_identity_kinds)
        customer_ids = resolver.resolve_many([rec.refs() for rec in fresh])
        rows = [_row(kind, rec, cid) for rec, cid in zip(fresh, customer_ids, strict=True)]
        bulk_insert(session, _TABLES[kind], rows)
        result.accepted = len(rows)
        result.merges = resolver.merges
        result.conflicts = resolver.conflicts
        hooks.run_after_rows(session, kind, rows, source)
    hooks.run_after_ingest(session, kind, result.accepted + result.updated)
    hooks.run_after_change(session, kind, sorted({*customer_ids, *changed}))
    return result


def _latest_versions(records: Sequence[OrderIn]) -> dict[str, OrderIn]:
    """One record per order id: the latest version (the first of equal versions)."""
    latest: dict[str, OrderIn] = {}
    for rec in records:
        held = latest.get(rec.id)
        if held is None or rec.version > held.version:
            latest[rec.id] = rec
    return latest


def _status_event_id(order_id: str, version: dt.datetime, status: str) -> str:
    # Deterministic, so the same change is one timeline entry however often it is computed.
    digest = hashlib.sha1(f"{order_id}|{version.isoformat()}|{status}".encode()).hexdigest()
    return f"order-status-{digest[:32]}"


def _update_orders(session: Session, records: Sequence[OrderIn], source: str) -> list[int]:
    """Apply the records that are newer than the stored orders; returns the customer ids of
    the orders that changed (one per changed order). The ``order_status_changed`` events go
    to the row hooks like ingested events (playbook triggers)."""
    table = _TABLES["orders"]
    stored = {row.id: row for row in session.execute(
        select(table.c.id, table.c.customer_id, table.c.ts, table.c.updated_at,
               table.c.status).where(table.c.id.in_([r.id for r in records])))}
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    customers: list[int] = []
    for rec in records:
        row = stored[rec.id]
        if rec.version <= (row.updated_at or row.ts):
            continue
        updates.append({
            "_id": rec.id, "amount": rec.amount, "currency": rec.currency,
            "status": rec.status, "channel": rec.channel,
            "items": [i.model_dump(exclude_none=True) for i in rec.items],
            "updated_at": rec.version, "recipient_name": rec.recipient_name,
            "recipient_phone": rec.recipient_phone,
            "recipient_address": rec.recipient_address,
        })
        customers.append(row.customer_id)
        if rec.status != row.status:
            events.append({
                "id": _status_event_id(rec.id, rec.version, rec.status),
                "customer_id": row.customer_id, "type": ORDER_STATUS_CHANGED,
                "ts": rec.version, "channel": rec.channel,
                "properties": {"order_id": rec.id, "from": row.status, "to": rec.status},
            })
    if updates:
        session.execute(
            update(table).where(table.c.id == bindparam("_id")).values(
                {name: bindparam(name) for name in updates[0] if name != "_id"}),
            updates, execution_options={"synchronize_session": False})
    if events:
        bulk_insert(session, _TABLES["events"], events)
        hooks.run_after_rows(session, "events", events, source)
    return customers


def customers_in_scenario(session: Session, customer_ids: list[int], scenario: str
                          ) -> set[int]:
    """Which of ``customer_ids`` are in ``scenario`` now: their latest ``scenario_entered``
    / ``scenario_exited`` event for it is an entry (the journeys' timeline contract)."""
    from sqlalchemy import select

    inside: dict[int, tuple[Any, bool]] = {}
    for start in range(0, len(customer_ids), 500):
        rows = session.execute(
            select(Event.customer_id, Event.ts, Event.type, Event.properties)
            .where(id_in(Event.customer_id, customer_ids[start:start + 500], session),
                   Event.type.in_(("scenario_entered", "scenario_exited"))))
        for cid, ts, typ, props in rows:
            if (props or {}).get("scenario") != scenario:
                continue
            if cid not in inside or inside[cid][0] <= ts:
                inside[int(cid)] = (ts, typ == "scenario_entered")
    return {cid for cid, (_, entered) in inside.items() if entered}


def orders_since(session: Session, customer_ids: list[int], since: Any, *,
                 status: str | None = None) -> list[tuple[int, Any, str]]:
    """``(customer_id, ts, status)`` of the customers' orders at or after ``since``."""
    from sqlalchemy import select

    out: list[tuple[int, Any, str]] = []
    for start in range(0, len(customer_ids), 500):
        stmt = select(Order.customer_id, Order.ts, Order.status).where(
            Order.customer_id.in_(customer_ids[start:start + 500]), Order.ts >= since)
        if status is not None:
            stmt = stmt.where(Order.status == status)
        out.extend((int(c), t, s) for c, t, s in session.execute(stmt))
    return out


def events_since(session: Session, customer_ids: list[int], since: Any, types: list[str]
                 ) -> list[tuple[int, Any, str, dict[str, Any]]]:
    """``(customer_id, ts, type, properties)`` of the customers' events of ``types``."""
    from sqlalchemy import select

    out: list[tuple[int, Any, str, dict[str, Any]]] = []
    for start in range(0, len(customer_ids), 500):
        rows = session.execute(select(Event.customer_id, Event.ts, Event.type, Event.properties)
                               .where(Event.customer_id.in_(customer_ids[start:start + 500]),
                                      Event.ts >= since, Event.type.in_(types)))
        out.extend((int(c), t, ty, dict(p or {})) for c, t, ty, p in rows)
    return out


def last_orders(session: Session, customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each customer's latest order: ``{customer_id: {ts, amount, items, count}}``."""
    from sqlalchemy import func, select

    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start:start + 500]
        counts = dict(session.execute(select(Order.customer_id, func.count())
                                      .where(id_in(Order.customer_id, chunk, session))
                                      .group_by(Order.customer_id)).all())
        rows = session.execute(select(Order.customer_id, Order.ts, Order.amount, Order.items)
                               .where(id_in(Order.customer_id, chunk, session))
                               .order_by(Order.customer_id, Order.ts))
        for cid, ts, amount, items in rows:
            out[int(cid)] = {"ts": ts, "amount": amount, "items": list(items or []),
                             "count": int(counts.get(cid, 0))}
    return out


def recent_events(session: Session, type_: str, since: Any, *, limit: int = 1000
                  ) -> list[tuple[int, Any, str, dict[str, Any], str]]:
    """``(customer_id, ts, type, properties, id)`` of events of ``type_`` since ``since``."""
    from sqlalchemy import select

    rows = session.execute(select(Event.customer_id, Event.ts, Event.type, Event.properties,
                                  Event.id)
                           .where(Event.type == type_, Event.ts >= since)
                           .order_by(Event.ts).limit(limit))
    return [(int(c), t, ty, dict(p or {}), str(i)) for c, t, ty, p, i in rows]


def recent_orders(session: Session, status: str, since: Any, *, limit: int = 1000
                  ) -> list[tuple[int, Any, str, float]]:
    """``(customer_id, ts, id, amount)`` of orders in ``status`` since ``since``."""
    from sqlalchemy import select

    rows = session.execute(select(Order.customer_id, Order.ts, Order.id, Order.amount)
                           .where(Order.status == status, Order.ts >= since)
                           .order_by(Order.ts).limit(limit))
    return [(int(c), t, str(i), float(a)) for c, t, i, a in rows]


def record(session: Session, customer_id: int, type_: str, *, id: str, ts: dt.datetime,
           properties: dict[str, Any] | None = None, channel: str | None = None,
           source: str = "api") -> bool:
    """Write one timeline event of a known customer on behalf of another domain (an
    appointment booked, cancelled ...), stored once per ``id``. The row hooks see it as
    they see an ingested event, so playbook triggers and ``wait_for`` react to it. It
    queues no recomputation per event (the hourly journeys run sees it). Returns whether it
    was new."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    row = {"id": id[:100], "customer_id": customer_id, "type": type_, "ts": ts,
           "channel": channel, "properties": properties or {}}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stored = session.scalar(insert(Event).values(row).on_conflict_do_nothing(
        index_elements=["id"]).returning(Event.id))
    if stored is None:
        return False
    hooks.run_after_rows(session, "events", [row], source)
    return True
