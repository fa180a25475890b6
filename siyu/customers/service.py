"""Customer profiles: upsert, the 360 view, search, tags, consent and referrals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from siyu.auth import service as auth_service
from siyu.config import Settings
from siyu.customers.errors import CustomerNotFound, InvalidIdentity
from siyu.customers.identity import (
    IdentityRef,
    Resolver,
    canonical_customer_id,
    normalize_identity,
)
from siyu.customers.models import (
    Consent,
    Customer,
    CustomerTag,
    Identity,
    Merge,
    MergeConflict,
    Referral,
    Tag,
)
from siyu.customers.schemas import PROFILE_FIELDS, CustomerIn
from siyu.db import utcnow
from siyu.errors import InvalidInput
from siyu.events.labels import event_type_zh, order_status_zh
from siyu.events.models import Event, Order
from siyu.events.purchases import purchase_stats
from siyu.kit import labels, masking
from siyu.kit.bulk import id_in, pg_insert_rows
from siyu.kit.paging import page_window
from siyu.kit.sqltext import LIKE_ESCAPE, fits_db_int, like_prefix
from siyu.kit.validation import BatchValidator, RecordError, check_records, validation_context

_CUSTOMER_VALIDATOR = BatchValidator(CustomerIn)


@dataclass
class UpsertResult:
    received: int = 0
    created: int = 0
    updated: int = 0
    customer_ids: list[int] = field(default_factory=list)
    rejected: list[RecordError] = field(default_factory=list)
    merges: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "created": self.created,
            "updated": self.updated,
            "customer_ids": self.customer_ids,
            "rejected": [r.to_dict() for r in self.rejected],
            "merges": self.merges,
            "conflicts": self.conflicts,
        }


def _tag_ids(session: Session, names: set[str], kind: str = "manual") -> dict[str, int]:
    if not names:
        return {}
    found = dict(session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(names))).all())
    for name in sorted(names - found.keys()):
        tag = Tag(name=name, kind=kind)
        session.add(tag)
        session.flush()
        found[name] = tag.id
    return found


def upsert_customers(
    session: Session,
    records: Sequence[Any],
    *,
    settings: Settings,
    partial: bool = False,
    source: str = "api",
) -> UpsertResult:
    """Create or update customers; identities are linked (and customers merged) as needed.

    Provided profile fields overwrite stored ones; ``attributes`` are merged key by key;
    tags and consents are added.
    """
    if len(records) > settings.max_batch_records:
        raise InvalidInput(
            f"a batch holds at most {settings.max_batch_records} records; got {len(records)}",
            details={"field": "customers", "reason": "too many records"},
        )
    result = UpsertResult(received=len(records))
    checked = check_records(_CUSTOMER_VALIDATOR, records, context=validation_context(settings))
    result.rejected = checked.rejected
    if checked.rejected and not partial:
        raise InvalidInput(
            f"{len(checked.rejected)} of {len(records)} customers are invalid; nothing was "
            "written (send ?partial=true to store the valid ones)",
            details={"rejected": [r.to_dict() for r in checked.rejected]},
        )
    recs = [rec for _, rec in checked.valid]
    if not recs:
        return result
    before = session.scalar(select(func.max(Customer.id))) or 0
    resolver = Resolver(session, source=f"customers {source}",
                        exclusive_kinds=settings.exclusive_identity_kinds)
    ids = resolver.resolve_many([rec.refs() for rec in recs])
    tag_ids = _tag_ids(session, {t for rec in recs for t in rec.tags})
    customers = {
        c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(set(ids))))
    }
    existing_tags: set[tuple[int, int]] = {
        (row[0], row[1])
        for row in session.execute(
            select(CustomerTag.customer_id, CustomerTag.tag_id).where(
                CustomerTag.customer_id.in_(set(ids))
            )
        )
    }
    referrers = [rec.referred_by for rec in recs if rec.referred_by]
    referrer_ids = (
        Resolver(session, source="referral").resolve_many(
            [[IdentityRef("external_id", r)] for r in referrers]
        )
        if referrers
        else []
    )
    referrer_of = dict(zip(referrers, referrer_ids, strict=True))
    now = utcnow()
    for rec, cid in zip(recs, ids, strict=True):
        customer = customers[cid]
        for name in PROFILE_FIELDS:
            value = getattr(rec, name)
            if value is not None:
                setattr(customer, name, value)
        if rec.attributes:
            customer.attributes = {**(customer.attributes or {}), **rec.attributes}
        customer.updated_at = now
        for tag in rec.tags:
            key = (cid, tag_ids[tag])
            if key not in existing_tags:
                existing_tags.add(key)
                session.add(CustomerTag(customer_id=cid, tag_id=tag_ids[tag], source=source))
        for consent in rec.consents:
            session.add(Consent(customer_id=cid, channel=consent.channel, purpose=consent.purpose,
                                granted=consent.granted, at=consent.at or now,
                                source=consent.source or source))
        if rec.referred_by:
            referrer = referrer_of[rec.referred_by]
            if referrer != cid and session.scalar(
                select(Referral.id).where(Referral.referrer_id == referrer,
                                          Referral.referred_id == cid)
            ) is None:
                session.add(Referral(referrer_id=referrer, referred_id=cid, at=now,
                                     channel=customer.acquisition_channel))
        result.customer_ids.append(cid)
        if cid > before:
            result.created += 1
        else:
            result.updated += 1
    result.merges = resolver.merges
    result.conflicts = resolver.conflicts
    session.flush()
    return result


# -- reading ---------------------------------------------------------------------------------


def mask_value(kind: str, value: str) -> str:
    """Hide the middle of personal identifiers (see :func:`siyu.kit.masking.mask_value`)."""
    return masking.mask_value(kind, value)


def display_phone(value: str) -> str:
    return masking.display_phone(value)


def find_by_identity(session: Session, kind: str, value: str, *, region: str = "CN") -> int:
    """The id of the customer holding (kind, value); raises :class:`CustomerNotFound`."""
    canonical = normalize_identity(kind, value, region)
    customer_id = session.scalar(
        select(Identity.customer_id).where(Identity.kind == kind, Identity.value == canonical)
    )
    if customer_id is None:
        raise CustomerNotFound(f"no customer with identity {kind}:{canonical}")
    return customer_id


def parse_identity_param(text: str) -> tuple[str, str]:
    """``phone:+8613800138000`` -> ("phone", "+8613800138000")."""
    kind, sep, value = text.partition(":")
    if not sep or not value:
        raise InvalidIdentity("identity must be written kind:value, e.g. phone:+8613800138000")
    return kind.strip(), value


def current_consents(session: Session, customer_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.at, Consent.id)
    )
    latest: dict[tuple[str, str], Consent] = {}
    for row in rows:
        latest[(row.channel, row.purpose)] = row
    return [
        {"channel": c.channel, "channel_label": labels.label(c.channel, "channel"),
         "purpose": c.purpose, "purpose_label": labels.label(c.purpose, "purpose"),
         "granted": c.granted, "at": c.at.isoformat(), "source": c.source}
        for c in latest.values()
    ]


def customer_tags(session: Session, customer_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Tag.name, Tag.kind, CustomerTag.source, CustomerTag.created_at)
        .join(CustomerTag, CustomerTag.tag_id == Tag.id)
        .where(CustomerTag.customer_id == customer_id)
        .order_by(Tag.name)
    )
    return [{"name": n, "kind": k, "source": s, "at": at.isoformat()} for n, k, s, at in rows]


def _brand_ids(customer_id: int, identities: Sequence[Identity], merges: Sequence[Merge]
               ) -> tuple[str | None, list[str]]:
    """The customer's own brand id (``external_id``) and the brand ids it holds as aliases.

    A merge moves the merged customer's identities to the kept one, so the kept customer
    may hold several brand ids; its own stays primary and the moved ones (recorded in each
    merge that is not undone) are aliases.
    """
    moved: set[int] = set()
    for merge in merges:
        if merge.kept_id == customer_id and merge.undone_at is None:
            rows = merge.moved.get("identities.customer_id", {}).get("rows", [])
            moved.update(int(row[0]) for row in rows)
    brand = [i for i in identities if i.kind == "external_id"]
    own = [i for i in brand if i.id not in moved] or brand
    if not own:
        return None, []
    return own[0].value, [i.value for i in brand if i is not own[0]]


def get_customer_360(
    session: Session, customer_id: int, *, show_pii: bool = True
) -> dict[str, Any]:
    """Everything the brand knows about a customer, in one read.

    A merged-away id answers with the customer it was merged into (``resolved_from`` says so).
    """
    canonical = canonical_customer_id(session, customer_id)
    customer = session.get(Customer, canonical)
    if customer is None:
        raise CustomerNotFound(f"customer {customer_id} not found")
    identities = session.scalars(
        select(Identity).where(Identity.customer_id == canonical).order_by(Identity.id)
    ).all()
    purchases = purchase_stats(session, canonical)
    event_stats = session.execute(
        select(func.count(), func.max(Event.ts)).where(Event.customer_id == canonical)
    ).one()
    last_activity = max((t for t in (purchases.last_at, event_stats[1]) if t is not None),
                        default=None)
    merges = session.scalars(
        select(Merge).where(or_(Merge.kept_id == canonical, Merge.merged_id == canonical))
        .order_by(Merge.id)
    ).all()
    referred = session.scalar(select(func.count()).where(Referral.referrer_id == canonical))
    referrer = session.scalar(select(Referral.referrer_id).where(Referral.referred_id == canonical))
    external, aliases = _brand_ids(canonical, identities, merges)
    return {
        "id": customer.id,
        "external_id": external,
        "external_id_aliases": aliases,
        "resolved_from": customer_id if canonical != customer_id else None,
        "status": customer.status,
        "profile": {
            "name": customer.name,
            "gender": customer.gender,
            "birthday": customer.birthday.isoformat() if customer.birthday else None,
            "city": customer.city,
            "tier": customer.tier,
            "acquisition_channel": customer.acquisition_channel,
            "advisor_id": customer.advisor_id,
            "advisor_name": auth_service.display_name(session, customer.advisor_id),
        },
        "attributes": (customer.attributes or {}) if show_pii
        else masking.mask_deep(customer.attributes or {}),
        "identities": [
            {"kind": i.kind,
             "value": i.value if show_pii else mask_value(i.kind, i.value),
             "verified": i.verified, "since": i.created_at.isoformat()}
            for i in identities
        ],
        "tags": customer_tags(session, canonical),
        "consents": current_consents(session, canonical),
        "orders": {
            "count": purchases.count,
            "total_amount": purchases.total_amount,
            "first_at": purchases.first_at.isoformat() if purchases.first_at else None,
            "last_at": purchases.last_at.isoformat() if purchases.last_at else None,
        },
        "events": {
            "count": event_stats[0],
            "last_at": event_stats[1].isoformat() if event_stats[1] else None,
        },
        "last_activity_at": last_activity.isoformat() if last_activity else None,
        "referrals": {"referred_count": referred or 0, "referred_by": referrer},
        "merges": [
            {"id": m.id, "kept_id": m.kept_id, "merged_id": m.merged_id, "reason": m.reason,
             "reason_label": labels.merge_reason(m.reason),
             "at": m.created_at.isoformat(), "actor": m.actor,
             "actor_label": labels.label(m.actor),
             "undone_at": m.undone_at.isoformat() if m.undone_at else None,
             "moved": {k: len(v["rows"]) for k, v in m.moved.items() if k != "_dropped"}}
            for m in merges
        ],
        "created_at": customer.created_at.isoformat(),
        "updated_at": customer.updated_at.isoformat(),
    }


@dataclass
class CustomerPage:
    """One page of customers. ``pages`` is at least 1; a ``page`` past it has no items."""

    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    pages: int = 1


def list_customers(
    session: Session,
    *,
    q: str | None = None,
    tag: str | None = None,
    attrs: dict[str, str] | None = None,
    tier: str | None = None,
    city: str | None = None,
    page: int = 1,
    per_page: int = 20,
    show_pii: bool = True,
    region: str = "CN",
) -> CustomerPage:
    """Active customers, newest first, filtered by a search text (name, phone, any identity
    value or siyu id), a tag, profile fields and free-form attributes."""
    if page < 1 or not 1 <= per_page <= 200:
        raise InvalidInput("page must be >= 1 and per_page between 1 and 200",
                           details={"field": "per_page", "reason": "out of range"})
    stmt = select(Customer).where(Customer.status == "active")
    if q:
        q = q.strip()
        conds = [Customer.name.like(like_prefix(q), escape=LIKE_ESCAPE),
                 exists().where(Identity.customer_id == Customer.id, Identity.value == q)]
        if q.isdigit() and fits_db_int(int(q)):
            conds.append(Customer.id == int(q))
        try:
            phone = normalize_identity("phone", q, region)
            conds.append(exists().where(Identity.customer_id == Customer.id,
                                        Identity.kind == "phone", Identity.value == phone))
        except InvalidIdentity:
            pass
        stmt = stmt.where(or_(*conds))
    if tag:
        stmt = stmt.where(
            exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag_id == Tag.id,
                           Tag.name == tag)
        )
    if tier:
        stmt = stmt.where(Customer.tier == tier)
    if city:
        stmt = stmt.where(Customer.city == city)
    for key, value in (attrs or {}).items():
        if not key.replace("_", "").isalnum():
            raise InvalidInput(f"attribute name {key!r} must be letters, digits or _",
                               details={"field": f"attr.{key}", "reason": "invalid name"})
        stmt = stmt.where(Customer.attributes[key].as_string() == value)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Customer.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    ids = [c.id for c in rows]
    phones: dict[int, str] = {}
    if ids:
        for cid, value in session.execute(
            select(Identity.customer_id, Identity.value)
            .where(Identity.customer_id.in_(ids), Identity.kind == "phone")
            .order_by(Identity.id)
        ):
            phones.setdefault(cid, value)
    items = [
        {"id": c.id, "name": c.name, "city": c.city, "tier": c.tier, "gender": c.gender,
         "phone": (display_phone(phones[c.id]) if show_pii else mask_value("phone", phones[c.id]))
         if c.id in phones else None,
         "created_at": c.created_at.isoformat()}
        for c in rows
    ]
    return CustomerPage(items=items, total=total, page=page, per_page=per_page,
                        pages=page_window(total, page, per_page).pages)


def timeline(session: Session, customer_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
    """Orders, events and merges of a customer, newest first."""
    cid = canonical_customer_id(session, customer_id)
    entries: list[dict[str, Any]] = []
    for order in session.scalars(
        select(Order).where(Order.customer_id == cid).order_by(Order.ts.desc()).limit(limit)
    ):
        entries.append({"kind": "order", "at": order.ts, "id": order.id,
                        "summary": f"订单 {order.id} · {order_status_zh(order.status)} · "
                                   f"¥{order.amount:.2f}",
                        "channel": order.channel, "data": {"items": order.items}})
    for event in session.scalars(
        select(Event).where(Event.customer_id == cid).order_by(Event.ts.desc()).limit(limit)
    ):
        entries.append({"kind": "event", "at": event.ts, "id": event.id,
                        "summary": event_type_zh(event.type),
                        "channel": event.channel, "data": event.properties})
    for merge in session.scalars(
        select(Merge).where(or_(Merge.kept_id == cid, Merge.merged_id == cid))
    ):
        entries.append({"kind": "merge", "at": merge.created_at, "id": str(merge.id),
                        "summary": f"合并客户 #{merge.merged_id} → #{merge.kept_id}："
                                   f"{merge.reason}",
                        "channel": None, "data": {}})
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit]


# -- tags, consent, conflicts ----------------------------------------------------------------


def add_tag(session: Session, customer_id: int, name: str, *, source: str = "manual") -> None:
    name = name.strip()
    if not name or len(name) > 60:
        raise InvalidInput("tag must be 1-60 characters", details={"field": "tag",
                                                                   "reason": "length"})
    cid = canonical_customer_id(session, customer_id)
    tag_id = _tag_ids(session, {name})[name]
    if session.get(CustomerTag, (cid, tag_id)) is None:
        session.add(CustomerTag(customer_id=cid, tag_id=tag_id, source=source))
        session.flush()


def set_tag_many(session: Session, customer_ids: Sequence[int], name: str, *,
                 present: bool, source: str = "rule") -> None:
    """Give (``present``) or take away tag ``name`` for many customers at once (ids as
    stored, e.g. from a recomputation); customers that already match are left alone."""
    if not customer_ids:
        return
    tag_id = _tag_ids(session, {name}, kind=source)[name]
    for start in range(0, len(customer_ids), 5000):
        chunk = list(customer_ids[start:start + 5000])
        holding = set(session.scalars(select(CustomerTag.customer_id).where(
            CustomerTag.tag_id == tag_id, CustomerTag.customer_id.in_(chunk))))
        if present:
            session.add_all([CustomerTag(customer_id=cid, tag_id=tag_id, source=source)
                             for cid in chunk if cid not in holding])
        elif holding:
            session.execute(delete(CustomerTag).where(
                CustomerTag.tag_id == tag_id, CustomerTag.customer_id.in_(list(holding))))
    session.flush()


def canonical_customer_ids(session: Session, customer_ids: Sequence[int]) -> dict[int, int]:
    """:func:`canonical_customer_id` for many customers, one query per level of merge
    tombstones: ``{given id: id that now holds its data}``; erased or unknown ids are left
    out."""
    out: dict[int, int] = {}
    pending = {int(c): int(c) for c in customer_ids}  # given id -> current id
    seen: dict[int, set[int]] = {}
    while pending:
        current = sorted(set(pending.values()))
        rows: dict[int, tuple[str, int | None]] = {}
        for start in range(0, len(current), 5000):
            for cid, status, into in session.execute(
                    select(Customer.id, Customer.status, Customer.merged_into_id)
                    .where(id_in(Customer.id, current[start:start + 5000], session))):
                rows[int(cid)] = (status, into)
        nxt: dict[int, int] = {}
        for given, cur in pending.items():
            row = rows.get(cur)
            if row is None or row[0] == "erased":
                continue
            trail = seen.setdefault(given, set())
            if row[0] != "merged" or row[1] is None or cur in trail:
                out[given] = cur
                continue
            trail.add(cur)
            nxt[given] = int(row[1])
        pending = nxt
    return out


def set_tag_for(session: Session, customer_ids: Sequence[int], name: str, *, present: bool,
                source: str = "manual", kind: str = "manual") -> int:
    """:func:`add_tag` (``present``) or :func:`remove_tag` for many customers in set-based
    statements: merged customers' ids are followed to the customer holding their data,
    erased ones skipped, and the tag is created if needed. Safe under concurrency (an
    existing tag or customer tag is left alone, never an integrity error). Returns how
    many customers were given the tag (or lost it)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    name = name.strip()
    if not name or len(name) > 60:
        raise InvalidInput("tag must be 1-60 characters", details={"field": "tag",
                                                                   "reason": "length"})
    ids = sorted(set(canonical_customer_ids(session, customer_ids).values()))
    if not ids:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    if not present:
        tag_id = session.scalar(select(Tag.id).where(Tag.name == name))
        if tag_id is None:
            return 0
        removed = 0
        for start in range(0, len(ids), 5000):
            result = session.execute(delete(CustomerTag).where(
                CustomerTag.tag_id == tag_id, CustomerTag.customer_id.in_(ids[start:start + 5000]))
                .execution_options(synchronize_session=False))
            removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return removed
    now = utcnow()
    tag_id = session.scalar(select(Tag.id).where(Tag.name == name))
    if tag_id is None:
        session.execute(insert(Tag).values(name=name, kind=kind, created_at=now)
                        .on_conflict_do_nothing(index_elements=["name"]))
        tag_id = session.scalar(select(Tag.id).where(Tag.name == name))
    if session.get_bind().dialect.name == "postgresql":
        return len(pg_insert_rows(session, CustomerTag.__table__, [  # type: ignore[arg-type]
            {"customer_id": c, "tag_id": tag_id, "source": source, "created_at": now}
            for c in ids], conflict=["customer_id", "tag_id"], returning=["customer_id"]))
    stmt = (insert(CustomerTag).on_conflict_do_nothing(index_elements=["customer_id", "tag_id"])
            .returning(CustomerTag.customer_id))
    added = 0
    for start in range(0, len(ids), 5000):
        rows = [{"customer_id": c, "tag_id": tag_id, "source": source, "created_at": now}
                for c in ids[start:start + 5000]]
        added += len(session.execute(stmt, rows).all())
    return added


def remove_tag(session: Session, customer_id: int, name: str) -> bool:
    cid = canonical_customer_id(session, customer_id)
    tag_id = session.scalar(select(Tag.id).where(Tag.name == name))
    row = session.get(CustomerTag, (cid, tag_id)) if tag_id else None
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def record_consent(
    session: Session, customer_id: int, *, channel: str, purpose: str, granted: bool,
    source: str, at: dt.datetime | None = None,
) -> None:
    cid = canonical_customer_id(session, customer_id)
    session.add(Consent(customer_id=cid, channel=channel, purpose=purpose, granted=granted,
                        at=at or utcnow(), source=source))
    session.flush()


def count_conflicts(session: Session, *, status: str = "open") -> int:
    return int(session.scalar(select(func.count()).select_from(MergeConflict)
                              .where(MergeConflict.status == status)) or 0)


def list_conflicts(
    session: Session, *, status: str = "open", show_pii: bool = True,
    limit: int | None = None, offset: int = 0,
) -> list[dict[str, Any]]:
    """Conflicts of ``status``, oldest first; ``limit``/``offset`` cut one page; identity
    values masked unless ``show_pii``."""

    def shown(kind: str, value: str) -> str:
        return value if show_pii else masking.mask_value(kind, value)

    rows = session.scalars(
        select(MergeConflict).where(MergeConflict.status == status).order_by(MergeConflict.id)
        .offset(offset).limit(limit)
    )
    return [
        {"id": c.id, "customer_a_id": c.customer_a_id, "customer_b_id": c.customer_b_id,
         "shared": f"{c.shared_kind}:{shown(c.shared_kind, c.shared_value)}",
         "conflict_kind": c.conflict_kind,
         "value_a": shown(c.conflict_kind, c.value_a),
         "value_b": shown(c.conflict_kind, c.value_b), "source": c.source, "status": c.status,
         "at": c.created_at.isoformat()}
        for c in rows
    ]


def live_customer_id(session: Session, customer_id: int) -> int:
    """The customer a write addressed to ``customer_id`` lands on: the customer, or the one a
    merge kept (followed to the end); :class:`NotFound` naming the field when there is no
    such customer or they were erased."""
    from siyu.errors import NotFound

    row = session.get(Customer, customer_id)
    if row is None or row.status == "erased":
        raise NotFound(f"没有编号为 {customer_id} 的客户",
                       details=[{"field": "customer_id", "reason": "not found"}])
    if row.status == "merged" and row.merged_into_id is not None:
        return live_customer_id(session, int(row.merged_into_id))
    return int(row.id)


def customer_exists(session: Session, customer_id: int) -> bool:
    return session.scalar(
        select(exists().where(and_(Customer.id == customer_id)))
    ) is True


# -- console reads ---------------------------------------------------------------------------


def filter_options(session: Session, *, limit: int = 200) -> dict[str, list[str]]:
    """The tags, tiers and cities in use (up to ``limit`` of each, sorted), for filter
    suggestions in the console."""
    active = Customer.status == "active"
    tiers = session.scalars(
        select(Customer.tier).where(active, Customer.tier.is_not(None))
        .distinct().order_by(Customer.tier).limit(limit)
    )
    cities = session.scalars(
        select(Customer.city).where(active, Customer.city.is_not(None))
        .distinct().order_by(Customer.city).limit(limit)
    )
    tags = session.scalars(
        select(Tag.name).where(exists().where(CustomerTag.tag_id == Tag.id))
        .order_by(Tag.name).limit(limit)
    )
    return {"tags": list(tags), "tiers": [t for t in tiers if t],
            "cities": [c for c in cities if c]}


def customer_cards(
    session: Session, customer_ids: Sequence[int], *, show_pii: bool = True
) -> dict[int, dict[str, Any]]:
    """A short card (name, city, tier, status, first phone) per customer id, masked unless
    ``show_pii``; ids that do not exist are left out."""
    ids = set(customer_ids)
    if not ids:
        return {}
    cards: dict[int, dict[str, Any]] = {
        c.id: {"id": c.id, "name": c.name, "city": c.city, "tier": c.tier, "status": c.status,
               "merged_into_id": c.merged_into_id, "phone": None}
        for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))
    }
    for cid, value in session.execute(
        select(Identity.customer_id, Identity.value)
        .where(Identity.customer_id.in_(ids), Identity.kind == "phone")
        .order_by(Identity.id)
    ):
        card = cards.get(cid)
        if card is not None and card["phone"] is None:
            card["phone"] = display_phone(value) if show_pii else mask_value("phone", value)
    return cards


def latest_consents_for(session: Session, customer_ids: list[int]
                        ) -> dict[tuple[int, str, str], tuple[bool, str | None]]:
    """The consent in force per (customer, channel, purpose) for many customers:
    ``{(customer_id, channel, purpose): (granted, source)}`` (the latest decision wins)."""
    out: dict[tuple[int, str, str], tuple[bool, str | None]] = {}
    for start in range(0, len(customer_ids), 500):
        rows = session.execute(
            select(Consent.customer_id, Consent.channel, Consent.purpose, Consent.granted,
                   Consent.source)
            .where(id_in(Consent.customer_id, customer_ids[start:start + 500], session))
            .order_by(Consent.at, Consent.id))
        for cid, channel, purpose, granted, source in rows:
            out[(int(cid), channel, purpose)] = (bool(granted), source)
    return out


def customers_with_tag(session: Session, customer_ids: list[int], name: str) -> set[int]:
    """Which of ``customer_ids`` carry tag ``name``."""
    out: set[int] = set()
    for start in range(0, len(customer_ids), 500):
        out.update(int(c) for c in session.scalars(
            select(CustomerTag.customer_id).join(Tag, Tag.id == CustomerTag.tag_id)
            .where(Tag.name == name,
                   id_in(CustomerTag.customer_id, customer_ids[start:start + 500], session))))
    return out


def identities_for(session: Session, customer_ids: list[int]) -> dict[int, dict[str, str]]:
    """The first identity of each kind per customer: ``{customer_id: {kind: value}}``."""
    out: dict[int, dict[str, str]] = {}
    for start in range(0, len(customer_ids), 500):
        rows = session.execute(select(Identity.customer_id, Identity.kind, Identity.value)
                               .where(id_in(Identity.customer_id,
                                            customer_ids[start:start + 500], session))
                               .order_by(Identity.id))
        for cid, kind, value in rows:
            out.setdefault(int(cid), {}).setdefault(kind, value)
    return out


SALUTATIONS = {"male": "先生", "female": "女士"}


def profiles_for(session: Session, customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What a message template may say about each customer: ``{customer_id: {id, name,
    gender, salutation (先生/女士, empty when unknown), city, tier, birthday, attributes,
    advisor_id, advisor (display name), advisor_username}}``."""
    from siyu.auth.models import User

    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(customer_ids), 500):
        # the columns a template sees, not whole Customer objects (their loading was
        # most of the batch's profile read)
        rows = session.execute(
            select(Customer.id, Customer.name, Customer.gender, Customer.city, Customer.tier,
                   Customer.birthday, Customer.attributes, Customer.advisor_id,
                   User.display_name, User.username)
            .outerjoin(User, User.id == Customer.advisor_id)
            .where(id_in(Customer.id, customer_ids[start:start + 500], session)))
        for cid, name, gender, city, tier, birthday, attributes, advisor_id, advisor, \
                username in rows:
            out[cid] = {"id": cid, "name": name or "", "gender": gender,
                        "salutation": SALUTATIONS.get(gender or "", ""),
                        "city": city, "tier": tier,
                        "birthday": birthday.isoformat() if birthday else None,
                        "attributes": dict(attributes or {}), "advisor_id": advisor_id,
                        "advisor": advisor or "", "advisor_username": username}
    return out
