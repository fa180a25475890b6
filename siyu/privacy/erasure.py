"""PIPL data-subject rights: export everything siyu holds on a person, and erase it.

Both walk :mod:`siyu.privacy.registry`: a table declared there is exported and erased
without code here, through its ``link`` columns (customer ids) or its ``via`` parent. Only
the anonymised tables (customers, orders) and the ``custom`` ones (jobs, web chat phone
codes) have handlers below. Tables are reached through ``Base.metadata``, not through other
domains' models, so a new domain's table needs a registry line and nothing else.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, delete, func, or_, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from siyu.db import Base, utcnow
from siyu.privacy import registry
from siyu.privacy.models import Suppression

EXPORT_FORMAT = "siyu.customer-export/1"
ERASED = "erased"
# Keys of an order line that describe the product, kept when the order is anonymised;
# anything else on the line (engraving texts, gift notes, addresses) is dropped.
ORDER_ITEM_KEYS = frozenset({"sku", "product_id", "product", "name", "category", "qty",
                             "quantity", "price", "unit_price", "amount", "currency"})
# Job payload keys naming the person's rows: the table whose ids they hold (None: customers).
JOB_PAYLOAD_KEYS: dict[str, str | None] = {
    "customer_id": None, "conversation_id": "conversations", "message_id": "messages",
    "delivery_id": "channel_deliveries"}


def _tables() -> dict[str, Table]:
    import siyu.models  # noqa: F401  (every domain's tables in the metadata)

    return dict(Base.metadata.tables)


@dataclass
class Person:
    """The customer ids that make up one person: the live record and every record that was
    merged into it (their tombstones)."""

    customer_id: int
    ids: list[int]
    # Primary keys of rows reached through ``via`` parents, per parent table.
    owned: dict[str, list[Any]] = field(default_factory=dict)


def person_ids(session: Session, customer_id: int) -> list[int]:
    tables = _tables()
    customers = tables["customers"]
    ids = {customer_id}
    frontier = {customer_id}
    while frontier:
        found = set(session.scalars(select(customers.c.id).where(
            customers.c.merged_into_id.in_(frontier))))
        frontier = found - ids
        ids |= found
    return sorted(ids)


def _condition(holding: registry.Holding, table: Table, person: Person
               ) -> ColumnElement[bool] | None:
    conds = [table.c[col].in_(person.ids) for col in holding.link]
    if holding.via is not None:
        column, parent = holding.via
        conds.append(table.c[column].in_(person.owned.get(parent, [])))
    return or_(*conds) if conds else None


def _resolve(session: Session, customer_id: int) -> Person:
    """The person and, in dependency order, the keys of every parent row a ``via`` table
    refers to (materialised first, so deleting in any order finds the same rows)."""
    tables = _tables()
    person = Person(customer_id, person_ids(session, customer_id))
    parents = {h.via[1] for h in registry.holdings() if h.via is not None}
    parents |= {t for t in JOB_PAYLOAD_KEYS.values() if t is not None and t in tables}
    pending = set(parents)
    while pending:
        progressed = False
        for name in sorted(pending):
            holding = registry.REGISTRY[name]
            if holding.via is not None and holding.via[1] in pending:
                continue
            table = tables[name]
            (pk,) = table.primary_key.columns
            cond = _condition(holding, table, person)
            person.owned[name] = ([] if cond is None
                                  else list(session.scalars(select(pk).where(cond))))
            pending.discard(name)
            progressed = True
        if not progressed:
            raise RuntimeError(f"privacy registry: cycle among via parents {sorted(pending)}")
    return person


# -- export ------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def export_person(session: Session, customer_id: int) -> dict[str, Any]:
    """One JSON-ready document with every row of every registered table that belongs to the
    person (profile, identities, tags, consents, orders, events, conversations, messages,
    scores, deliveries, and whatever tables are declared later)."""
    tables = _tables()
    person = _resolve(session, customer_id)
    out: dict[str, list[dict[str, Any]]] = {}
    for holding in registry.holdings():
        if not holding.export:
            continue
        table = tables[holding.table]
        cond = _condition(holding, table, person)
        if cond is None:
            continue
        order = list(table.primary_key.columns)
        rows = session.execute(select(table).where(cond).order_by(*order)).mappings()
        out[holding.table] = [{k: _plain(v) for k, v in row.items()} for row in rows]
    tag_ids = {row["tag_id"] for row in out.get("customer_tags", [])}
    if tag_ids:  # the tag names, so the document reads without the brand's tag table
        tags = tables["tags"]
        names = dict(session.execute(select(tags.c.id, tags.c.name)
                                     .where(tags.c.id.in_(tag_ids))).all())
        for row in out["customer_tags"]:
            row["tag_name"] = names.get(row["tag_id"])
    return {"format": EXPORT_FORMAT, "generated_at": utcnow().isoformat(),
            "customer_id": person.customer_id, "customer_ids": person.ids, "tables": out}


# -- erasure -----------------------------------------------------------------------------------


@dataclass
class ErasureReport:
    customer_id: int
    customer_ids: list[int]
    already_erased: bool = False
    removed: dict[str, int] = field(default_factory=dict)
    anonymised: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0
    touched: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "customer_ids": self.customer_ids,
                "already_erased": self.already_erased, "removed": self.removed,
                "anonymised": self.anonymised, "suppressed_identities": self.suppressed}


Digest = Callable[[str, str], str]


def _anonymise_customers(session: Session, table: Table, person: Person) -> int:
    result = session.execute(
        update(table).where(table.c.id.in_(person.ids)).values(
            name=None, gender=None, birthday=None, city=None, tier=None,
            acquisition_channel=None, advisor_id=None, attributes={}, status=ERASED,
            merged_into_id=None, updated_at=utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _anonymise_orders(session: Session, table: Table, person: Person) -> int:
    count = 0
    for order_id, items in session.execute(
            select(table.c.id, table.c["items"]).where(table.c.customer_id.in_(person.ids))):
        kept = [{k: v for k, v in item.items() if k in ORDER_ITEM_KEYS}
                for item in (items or []) if isinstance(item, dict)]
        # the orders stay with the anonymous tombstone: revenue totals keep them
        session.execute(update(table).where(table.c.id == order_id).values(
            customer_id=person.customer_id, items=kept))
        count += 1
    return count


def _erase_jobs(session: Session, table: Table, person: Person, _: Sequence[str]) -> int:
    """Queued or finished jobs whose payload names the person (outbox deliveries, ...)."""
    keys = {key: person.ids if parent is None else person.owned.get(parent, [])
            for key, parent in JOB_PAYLOAD_KEYS.items()}
    conds = [table.c.payload[key].as_integer().in_(values)
             for key, values in keys.items() if values]
    if not conds:
        return 0
    result = session.execute(delete(table).where(or_(*conds)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _erase_codes(session: Session, table: Table, _: Person, phones: Sequence[str]) -> int:
    if not phones:
        return 0
    result = session.execute(delete(table).where(table.c.phone.in_(list(phones))))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


ANONYMISERS: dict[str, Callable[[Session, Table, Person], int]] = {
    "customers": _anonymise_customers,
    "orders": _anonymise_orders,
}
CUSTOM_ERASERS: dict[str, Callable[[Session, Table, Person, Sequence[str]], int]] = {
    "jobs": _erase_jobs,
    "channel_verification_codes": _erase_codes,
}


def customer_status(session: Session, customer_id: int) -> str | None:
    customers = _tables()["customers"]
    status: str | None = session.scalar(select(customers.c.status)
                                        .where(customers.c.id == customer_id))
    return status


def plan_erasure(session: Session, customer_id: int) -> dict[str, int]:
    """How many rows erasing the person would remove or anonymise, per table (a dry run)."""
    tables = _tables()
    person = _resolve(session, customer_id)
    counts: dict[str, int] = {}
    for holding in registry.holdings():
        if holding.erase in ("none", "custom"):
            continue
        table = tables[holding.table]
        cond = _condition(holding, table, person)
        if cond is None:
            continue
        n = session.scalar(select(func.count()).select_from(table).where(cond)) or 0
        if n:
            counts[holding.table] = n
    return counts


def erase_person(session: Session, customer_id: int, *, digest: Digest) -> ErasureReport:
    """Remove the person's personal data from every registered table, in the caller's
    transaction. Identity values are first kept as keyed hashes (``digest(kind, value)``)
    in ``privacy_suppressions`` so that do-not-contact outlives the data; orders stay,
    anonymous, for accounting; the customer row stays as a tombstone marked ``erased``.
    Safe to repeat: a tombstone already erased reports nothing removed."""
    tables = _tables()
    person = _resolve(session, customer_id)
    report = ErasureReport(customer_id, person.ids)
    if customer_status(session, customer_id) == ERASED and len(person.ids) == 1:
        report.already_erased = True
    identities = tables["identities"]
    pairs = session.execute(select(identities.c.kind, identities.c.value)
                            .where(identities.c.customer_id.in_(person.ids))).all()
    phones = [value for kind, value in pairs if kind == "phone"]
    digests = sorted({digest(kind, value) for kind, value in pairs})
    if digests:
        known = set(session.scalars(select(Suppression.digest)
                                    .where(Suppression.digest.in_(digests))))
        for value in digests:
            if value not in known:
                session.add(Suppression(digest=value, created_at=utcnow()))
        report.suppressed = len(digests)
        session.flush()
    order = {t.name: i for i, t in enumerate(reversed(Base.metadata.sorted_tables))}
    for holding in sorted(registry.holdings(), key=lambda h: order.get(h.table, -1)):
        table = tables[holding.table]
        if holding.erase == "none":
            continue
        if holding.erase == "custom":
            n = CUSTOM_ERASERS[holding.table](session, table, person, phones)
            target = report.removed
        elif holding.erase == "anonymise":
            n = ANONYMISERS[holding.table](session, table, person)
            target = report.anonymised
        else:
            cond = _condition(holding, table, person)
            if cond is None:
                continue
            result = session.execute(delete(table).where(cond))
            n = int(result.rowcount or 0)  # type: ignore[attr-defined]
            target = report.removed
        if n:
            target[holding.table] = n
            report.touched.append(holding.table)
    if report.already_erased:  # re-clearing the tombstone and its orders is no news
        for name in ("customers", "orders"):
            report.anonymised.pop(name, None)
            if name in report.touched:
                report.touched.remove(name)
    session.flush()
    return report


def reclaim_space(engine: Engine, tables: Sequence[str]) -> None:
    """After an erasure has committed, make sure deleted values are gone from the files.

    SQLite: every connection runs with ``secure_delete=ON`` (freed space is zeroed), and a
    ``wal_checkpoint(TRUNCATE)`` moves the zeroed pages into the database file and empties
    the write-ahead log, which still holds the old page images. PostgreSQL: ``VACUUM`` of
    the touched tables, so the dead row versions are reclaimed now rather than whenever
    autovacuum comes by. Backups are out of scope (see docs/privacy.md).
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return
    if engine.dialect.name == "postgresql" and tables:
        known = set(_tables())
        names = ", ".join(f'"{t}"' for t in tables if t in known)
        if names:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f"VACUUM {names}"))
