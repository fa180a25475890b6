"""Identity normalisation and resolution: many channel identities, one customer.

Resolution rules, in order:

* Every (kind, value) pair belongs to at most one customer.
* A record whose identities are all unknown creates one new customer.
* A record whose identities belong to two or more customers merges them into the customer
  holding the highest-priority identity (``external_id`` first, see ``KIND_PRIORITY``) --
  unless the two carry *different* values of a kind that names one person (configured in
  ``Settings.exclusive_identity_kinds``; phone numbers count only when both are verified).
  Then nothing is merged and a :class:`MergeConflict` is queued for a person to decide,
  because a wrong merge sends one person's messages to another.
* Merges record every row they move, so they can be inspected and undone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import phonenumbers
from sqlalchemy import Table, and_, delete, or_, select, tuple_, update
from sqlalchemy.orm import Session

from siyu.customers.errors import (
    ConflictAlreadyResolved,
    CustomerNotFound,
    InvalidIdentity,
    MergeNotUndoable,
)
from siyu.customers.models import (
    IDENTITY_KINDS,
    Customer,
    CustomerTag,
    Identity,
    Merge,
    MergeConflict,
    Referral,
)
from siyu.db import Base, utcnow
from siyu.kit.bulk import bulk_insert, insert_returning_ids, select_in

KIND_PRIORITY: dict[str, int] = {
    kind: rank
    for rank, kind in enumerate(
        (
            "external_id",
            "app_user_id",
            "wechat_unionid",
            "phone",
            "email",
            "wecom_external_userid",
            "wechat_openid",
            "wecom_userid",
            "voiceprint_id",
        )
    )
}
DEFAULT_EXCLUSIVE_KINDS: tuple[str, ...] = ("external_id", "app_user_id", "wechat_unionid")


class IdentityRef(NamedTuple):
    """A normalised identity as carried by an ingested record. (A named tuple: a batch
    builds one per identity, and tuples are made and hashed in C.)"""

    kind: str
    value: str
    verified: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.value)


def normalize_phone(value: str, region: str = "CN") -> str:
    """Return the E.164 form of a phone number, or raise :class:`InvalidIdentity`.

    ``138 0013 8000``, ``+86-13800138000`` and ``0086 138 0013 8000`` are one number.
    """
    raw = value.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity(f"invalid phone number {value!r}: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidIdentity(f"invalid phone number {value!r}: not a valid number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_identity(kind: str, value: Any, region: str = "CN") -> str:
    """Validate an identity and return its canonical value (raises :class:`InvalidIdentity`)."""
    if kind not in IDENTITY_KINDS:
        raise InvalidIdentity(
            f"unknown identity kind {kind!r}; expected one of {', '.join(IDENTITY_KINDS)}"
        )
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidIdentity(f"identity value for {kind} must be a string")
    text = str(value).strip()
    if not text:
        raise InvalidIdentity(f"identity value for {kind} is empty")
    if len(text) > 200:
        raise InvalidIdentity(f"identity value for {kind} is longer than 200 characters")
    if kind == "phone":
        return normalize_phone(text, region)
    if kind == "email":
        text = text.lower()
        local, _, domain = text.partition("@")
        if not local or "." not in domain or " " in text:
            raise InvalidIdentity(f"invalid e-mail address {value!r}")
    return text


def _lookup(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Owners of the given identities. One ``kind = ? AND value IN (...)`` query per kind and
    chunk, which the (kind, value) unique index answers directly."""
    by_kind: dict[str, list[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, []).append(value)
    found: dict[tuple[str, str], int] = {}
    table: Table = Identity.__table__  # type: ignore[assignment]
    for kind, values in by_kind.items():
        for value, customer_id in select_in(session, table, ("value", "customer_id"), "value",
                                            values, equals={"kind": kind}):
            found[(kind, value)] = customer_id
    return found


def _identities_of(session: Session, customer_id: int) -> list[Identity]:
    return list(session.scalars(select(Identity).where(Identity.customer_id == customer_id)))


def _exclusive_clash(
    mine: Sequence[Identity] | Sequence[IdentityRef],
    theirs: Sequence[Identity] | Sequence[IdentityRef],
    exclusive: Sequence[str],
) -> tuple[str, str, str] | None:
    """The first kind where both sides hold values but share none: (kind, mine, theirs)."""
    for kind in (*exclusive, "phone"):
        a = {i.value for i in mine if i.kind == kind and (kind != "phone" or i.verified)}
        b = {i.value for i in theirs if i.kind == kind and (kind != "phone" or i.verified)}
        if a and b and not (a & b):
            return kind, sorted(a)[0], sorted(b)[0]
    return None


class Resolver:
    """Resolves records' identities to customer ids, creating, linking and merging."""

    def __init__(
        self,
        session: Session,
        *,
        source: str,
        exclusive_kinds: Sequence[str] = DEFAULT_EXCLUSIVE_KINDS,
    ):
        self.session = session
        self.source = source
        self.exclusive = tuple(exclusive_kinds)
        self.merges: list[int] = []
        self.conflicts: list[int] = []

    # -- batch path ------------------------------------------------------------------------
    def resolve_many(self, groups: Sequence[Sequence[IdentityRef]]) -> list[int]:
        """One customer id per group, in order. Groups must not be empty.

        The common cases (all identities known to one customer, or all unknown) are done
        with a few set-based statements; groups that touch several customers or clash on an
        exclusive identity go through :meth:`resolve_one`.
        """
        owners = _lookup(self.session, {ref.key for group in groups for ref in group})
        # Placeholders for customers this batch creates are negative numbers.
        new_customers: list[list[IdentityRef]] = []
        new_links: dict[tuple[str, str], tuple[int, bool]] = {}
        result: list[int] = [0] * len(groups)
        complex_groups: list[int] = []

        for index, group in enumerate(groups):
            known = {owners[ref.key] for ref in group if ref.key in owners}
            if not known:
                new_customers.append(list(group))
                placeholder = -len(new_customers)
                for ref in group:
                    owners[ref.key] = placeholder
                    new_links[ref.key] = (placeholder, ref.verified)
                result[index] = placeholder
                continue
            if len(known) > 1:
                complex_groups.append(index)
                continue
            owner = known.pop()
            fresh = [ref for ref in group if ref.key not in owners]
            if owner > 0 and any(self._is_exclusive(ref) for ref in fresh):
                complex_groups.append(index)
                continue
            if owner < 0 and _exclusive_clash(new_customers[-owner - 1], fresh, self.exclusive):
                complex_groups.append(index)
                continue
            for ref in fresh:
                owners[ref.key] = owner
                new_links[ref.key] = (owner, ref.verified)
                if owner < 0:
                    new_customers[-owner - 1].append(ref)
            result[index] = owner

        real_ids: list[int] = []
        if new_customers:
            now = utcnow()
            real_ids = insert_returning_ids(
                self.session,
                Customer.__table__,  # type: ignore[arg-type]
                [
                    {"attributes": {}, "status": "active", "created_at": now, "updated_at": now}
                    for _ in new_customers
                ],
            )
        if new_links:
            now = utcnow()
            bulk_insert(
                self.session,
                Identity.__table__,  # type: ignore[arg-type]
                [
                    {
                        "customer_id": real_ids[-owner - 1] if owner < 0 else owner,
                        "kind": kind,
                        "value": value,
                        "verified": verified,
                        "created_at": now,
                    }
                    for (kind, value), (owner, verified) in new_links.items()
                ],
            )
            _after_new_identities(self.session, [
                (real_ids[-owner - 1] if owner < 0 else owner, kind, value)
                for (kind, value), (owner, _) in new_links.items()])
        for index, owner in enumerate(result):
            if owner < 0:
                result[index] = real_ids[-owner - 1]
        for index in complex_groups:
            result[index] = self.resolve_one(groups[index])
        return result

    def _is_exclusive(self, ref: IdentityRef) -> bool:
        return ref.kind in self.exclusive or (ref.kind == "phone" and ref.verified)

    # -- careful path ----------------------------------------------------------------------
    def resolve_one(self, group: Sequence[IdentityRef]) -> int:
        """Resolve one record's identities, merging or queueing conflicts as needed."""
        owners = _lookup(self.session, {ref.key for ref in group})
        if not owners:
            return self._create(group)
        ranked = sorted(
            (ref for ref in group if ref.key in owners), key=lambda r: KIND_PRIORITY[r.kind]
        )
        anchor = ranked[0]
        primary = owners[anchor.key]
        for other in dict.fromkeys(owners[ref.key] for ref in ranked):
            if other == primary:
                continue
            shared = next(ref for ref in ranked if owners[ref.key] == other)
            clash = _exclusive_clash(
                _identities_of(self.session, primary), _identities_of(self.session, other),
                self.exclusive,
            )
            if clash:
                self._queue_conflict(primary, other, shared, clash)
            else:
                merge = merge_customers(
                    self.session, primary, other,
                    # the kind only: reasons are shown to roles that may not see the value
                    reason=f"shared identity {shared.kind} ({self.source})",
                    actor="system",
                )
                self.merges.append(merge.id)
        fresh = [ref for ref in group if ref.key not in owners]
        if not fresh:
            return primary
        clash = _exclusive_clash(_identities_of(self.session, primary), fresh, self.exclusive)
        if clash:
            # The record names someone else (a different brand id, app account, ...) who shares
            # a phone or account with ``primary``: keep them apart and let a person decide.
            created = self._create(fresh)
            self._queue_conflict(primary, created, anchor, clash)
            return created
        self._link(primary, fresh)
        return primary

    def _create(self, refs: Sequence[IdentityRef]) -> int:
        customer = Customer(attributes={}, status="active")
        self.session.add(customer)
        self.session.flush()
        self._link(customer.id, refs)
        return customer.id

    def _link(self, customer_id: int, refs: Sequence[IdentityRef]) -> None:
        for ref in refs:
            self.session.add(
                Identity(customer_id=customer_id, kind=ref.kind, value=ref.value,
                         verified=ref.verified)
            )
        self.session.flush()
        _after_new_identities(self.session, [(customer_id, r.kind, r.value) for r in refs])

    def _queue_conflict(
        self, a: int, b: int, shared: IdentityRef, clash: tuple[str, str, str]
    ) -> None:
        pair = or_(
            and_(MergeConflict.customer_a_id == a, MergeConflict.customer_b_id == b),
            and_(MergeConflict.customer_a_id == b, MergeConflict.customer_b_id == a),
        )
        existing = self.session.scalar(
            select(MergeConflict.id).where(pair, MergeConflict.status == "open")
        )
        if existing is not None:
            return
        kind, value_a, value_b = clash
        conflict = MergeConflict(
            customer_a_id=a, customer_b_id=b, shared_kind=shared.kind,
            shared_value=shared.value, conflict_kind=kind, value_a=value_a, value_b=value_b,
            source=self.source[:120], status="open",
        )
        self.session.add(conflict)
        self.session.flush()
        self.conflicts.append(conflict.id)


def _after_new_identities(session: Session, rows: list[tuple[int, str, str]]) -> None:
    """An identity of an erased person arriving again keeps them out of marketing."""
    from siyu.privacy import service as privacy

    privacy.honour_do_not_contact(session, rows)


# -- merging ---------------------------------------------------------------------------------

_NOT_MOVED = {"customer_merges", "merge_conflicts", "customers"}

SetAside = Callable[[Session, int, int], list[dict[str, Any]]]
"""``set_aside(session, keep_id, drop_id)``: delete the dropped customer's rows that cannot
follow it to the kept one (a unique per-customer row the kept customer already has, a row
that would make the merged customer refer themselves) and return them as JSON-able dicts."""
Restore = Callable[[Session, int, list[dict[str, Any]]], None]
"""``restore(session, merged_id, rows)``: put back on undo what ``set_aside`` returned."""

_MERGE_HOOKS: dict[str, tuple[SetAside, Restore]] = {}


def register_merge_hook(name: str, set_aside: SetAside, restore: Restore) -> None:
    """Let a domain set rows aside before a merge moves every customer reference, and put
    them back when the merge is undone (keyed by ``name``; registering again replaces).
    What was set aside is kept in the merge record under ``_dropped[name]``."""
    _MERGE_HOOKS[name] = (set_aside, restore)


def _customer_references() -> list[tuple[Table, str]]:
    """Every (table, column) with a foreign key to customers.id that a merge must move.

    Found from the metadata, so a table added by any domain is moved without being listed
    here; a table opts out with ``info={"merge": "skip"}``.
    """
    refs: list[tuple[Table, str]] = []
    for table in Base.metadata.sorted_tables:
        if table.name in _NOT_MOVED or table.info.get("merge") == "skip":
            continue
        for column in table.columns:
            if any(fk.column.table.name == "customers" for fk in column.foreign_keys):
                refs.append((table, column.name))
    return refs


def _row_key(table: Table, skip: str) -> list[str]:
    return [c.name for c in table.primary_key.columns if c.name != skip]


def merge_customers(
    session: Session, keep_id: int, drop_id: int, *, reason: str, actor: str
) -> Merge:
    """Fold ``drop_id`` into ``keep_id``: identities, orders, events, tags and every other row
    that points at the customer move; the dropped customer stays as a tombstone pointing at
    the kept one. Returns the :class:`Merge` record, which :func:`undo_merge` can reverse.
    """
    if keep_id == drop_id:
        raise MergeNotUndoable("cannot merge a customer into itself")
    keep = session.get(Customer, keep_id)
    drop = session.get(Customer, drop_id)
    if keep is None or keep.status != "active":
        raise CustomerNotFound(f"customer {keep_id} not found or not active")
    if drop is None or drop.status != "active":
        raise CustomerNotFound(f"customer {drop_id} not found or not active")

    dropped: dict[str, list[dict[str, Any]]] = {}
    # Tags both carry: the dropped copy is deleted (and restored on undo).
    dup_tags = list(
        session.scalars(
            select(CustomerTag.tag_id).where(
                CustomerTag.customer_id == drop_id,
                CustomerTag.tag_id.in_(
                    select(CustomerTag.tag_id).where(CustomerTag.customer_id == keep_id)
                ),
            )
        )
    )
    if dup_tags:
        dropped["customer_tags"] = [{"tag_id": t} for t in dup_tags]
        session.execute(
            delete(CustomerTag).where(
                CustomerTag.customer_id == drop_id, CustomerTag.tag_id.in_(dup_tags)
            )
        )
    # Referrals between the two, or duplicated by the merge, would become self- or
    # double-referrals.
    ref_rows = session.execute(
        select(Referral).where(
            or_(
                and_(Referral.referrer_id == drop_id, Referral.referred_id == keep_id),
                and_(Referral.referrer_id == keep_id, Referral.referred_id == drop_id),
                and_(
                    Referral.referrer_id == drop_id,
                    Referral.referred_id.in_(
                        select(Referral.referred_id).where(Referral.referrer_id == keep_id)
                    ),
                ),
                and_(
                    Referral.referred_id == drop_id,
                    Referral.referrer_id.in_(
                        select(Referral.referrer_id).where(Referral.referred_id == keep_id)
                    ),
                ),
            )
        )
    ).scalars().all()
    if ref_rows:
        dropped["referrals"] = [
            {"referrer_id": r.referrer_id, "referred_id": r.referred_id,
             "at": r.at.isoformat(), "channel": r.channel}
            for r in ref_rows
        ]
        session.execute(delete(Referral).where(Referral.id.in_([r.id for r in ref_rows])))

    for name, (set_aside, _restore) in _MERGE_HOOKS.items():
        aside = set_aside(session, keep_id, drop_id)
        if aside:
            dropped[name] = aside

    moved: dict[str, Any] = {}
    for table, column in _customer_references():
        key_cols = _row_key(table, column)
        if not key_cols:
            continue
        col = table.c[column]
        keys = [list(row) for row in session.execute(
            select(*[table.c[k] for k in key_cols]).where(col == drop_id)
        )]
        if not keys:
            continue
        session.execute(update(table).where(col == drop_id).values({column: keep_id}))
        moved[f"{table.name}.{column}"] = {"key": key_cols, "rows": keys}
    if dropped:
        moved["_dropped"] = dropped

    drop.status = "merged"
    drop.merged_into_id = keep_id
    keep_attrs = dict(drop.attributes or {})
    keep_attrs.update(keep.attributes or {})
    keep.attributes = keep_attrs
    for field in ("name", "gender", "birthday", "city", "tier", "acquisition_channel",
                  "advisor_id"):
        if getattr(keep, field) is None and getattr(drop, field) is not None:
            setattr(keep, field, getattr(drop, field))
    merge = Merge(kept_id=keep_id, merged_id=drop_id, reason=reason[:200], moved=moved,
                  actor=actor)
    session.add(merge)
    session.flush()
    return merge


def undo_merge(session: Session, merge_id: int, *, actor: str) -> Merge:
    """Reverse a merge: the moved rows go back and the dropped customer is active again.

    Rows that arrived for the kept customer after the merge stay where they are.
    """
    merge = session.get(Merge, merge_id)
    if merge is None:
        raise CustomerNotFound(f"merge {merge_id} not found")
    if merge.undone_at is not None:
        raise MergeNotUndoable(f"merge {merge_id} was already undone")
    keep = session.get(Customer, merge.kept_id)
    drop = session.get(Customer, merge.merged_id)
    if keep is None or drop is None or keep.status != "active":
        raise MergeNotUndoable(
            f"customer {merge.kept_id} was merged again later; undo that merge first"
        )
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    for name, spec in merge.moved.items():
        if name == "_dropped":
            continue
        table_name, column = name.split(".")
        table = tables[table_name]
        key_cols: list[str] = spec["key"]
        rows: list[list[Any]] = spec["rows"]
        for start in range(0, len(rows), 400):
            chunk = rows[start : start + 400]
            key_expr = (
                table.c[key_cols[0]].in_([r[0] for r in chunk])
                if len(key_cols) == 1
                else tuple_(*[table.c[k] for k in key_cols]).in_([tuple(r) for r in chunk])
            )
            session.execute(
                update(table)
                .where(table.c[column] == merge.kept_id, key_expr)
                .values({column: merge.merged_id})
            )
    dropped = merge.moved.get("_dropped", {})
    for row in dropped.get("customer_tags", []):
        session.add(CustomerTag(customer_id=merge.merged_id, tag_id=row["tag_id"],
                                source="merge-undo"))
    from datetime import datetime

    for row in dropped.get("referrals", []):
        session.add(Referral(referrer_id=row["referrer_id"], referred_id=row["referred_id"],
                             at=datetime.fromisoformat(row["at"]), channel=row["channel"]))
    for name, (_set_aside, restore) in _MERGE_HOOKS.items():
        if dropped.get(name):
            restore(session, merge.merged_id, dropped[name])
    drop.status = "active"
    drop.merged_into_id = None
    merge.undone_at = utcnow()
    merge.undone_by = actor
    session.flush()
    return merge


def resolve_conflict(session: Session, conflict_id: int, *, decision: str, actor: str) -> None:
    """Decide a queued conflict: ``merge`` folds b into a, ``keep_apart`` closes it."""
    conflict = session.get(MergeConflict, conflict_id)
    if conflict is None:
        raise CustomerNotFound(f"merge conflict {conflict_id} not found")
    if conflict.status != "open":
        raise ConflictAlreadyResolved(f"merge conflict {conflict_id} is already {conflict.status}")
    if decision == "merge":
        merge_customers(
            session, conflict.customer_a_id, conflict.customer_b_id,
            reason=f"conflict {conflict_id} reviewed by {actor}", actor=actor,
        )
        conflict.status = "merged"
    elif decision == "keep_apart":
        conflict.status = "kept_apart"
    else:
        raise InvalidIdentity("decision must be 'merge' or 'keep_apart'")
    conflict.resolved_at = utcnow()
    conflict.resolved_by = actor
    session.flush()


def canonical_customer_id(session: Session, customer_id: int) -> int:
    """Follow merge tombstones to the customer that now holds ``customer_id``'s data."""
    seen: set[int] = set()
    current = customer_id
    while True:
        row = session.execute(
            select(Customer.status, Customer.merged_into_id).where(Customer.id == current)
        ).first()
        if row is None or row.status == "erased":
            raise CustomerNotFound(f"customer {customer_id} not found")
        if row.status != "merged" or row.merged_into_id is None or current in seen:
            return current
        seen.add(current)
        current = row.merged_into_id
