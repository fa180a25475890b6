"""Ingest of orders and events: validate every record, resolve identities, insert once.

A batch is one unit of work. Without ``partial`` a batch with any bad record writes nothing;
with ``partial`` the good records land and the bad ones are reported. Record ids come from
the client, so a retried batch stores each record once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Table
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers.identity import Resolver
from siyu.errors import InvalidInput
from siyu.events import hooks
from siyu.events.models import Event, Order
from siyu.events.schemas import EventIn, OrderIn
from siyu.kit.bulk import bulk_insert, select_in
from siyu.kit.perf import paused_gc
from siyu.kit.validation import BatchValidator, RecordError, check_records, validation_context

RecordKind = Literal["orders", "events"]
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
    duplicates: int = 0
    rejected: list[RecordError] = field(default_factory=list)
    merges: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "received": self.received,
            "accepted": self.accepted,
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
    if not fresh:
        return result

    resolver = Resolver(session, source=f"{kind} {source}",
                        exclusive_kinds=settings.exclusive_identity_kinds)
    customer_ids = resolver.resolve_many([rec.refs() for rec in fresh])
    rows = [_row(kind, rec, cid) for rec, cid in zip(fresh, customer_ids, strict=True)]
    bulk_insert(session, _TABLES[kind], rows)
    result.accepted = len(rows)
    result.merges = resolver.merges
    result.conflicts = resolver.conflicts
    hooks.run_after_ingest(session, kind, result.accepted)
    return result
