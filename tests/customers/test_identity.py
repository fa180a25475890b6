"""Identity normalisation, resolution, merges, undo and guarded conflicts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers import identity
from siyu.customers.errors import InvalidIdentity, MergeNotUndoable
from siyu.customers.models import Customer, CustomerTag, Identity, Merge, MergeConflict
from siyu.customers.service import add_tag, get_customer_360, upsert_customers
from siyu.events.models import Event, Order
from siyu.events.service import ingest


@pytest.mark.parametrize(
    "raw",
    ["138 0013 8000", "+86-13800138000", "13800138000", "0086 138 0013 8000",
     "+86 138-0013-8000", "(+86)13800138000"],
)
def test_mainland_numbers_normalise_to_one_e164(raw: str) -> None:
    assert identity.normalize_phone(raw) == "+8613800138000"


@pytest.mark.parametrize("raw", ["12345", "138001380001234", "abc", "+86 000 0000 0000", ""])
def test_invalid_phone_is_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentity):
        identity.normalize_identity("phone", raw)


def test_unknown_identity_kind_is_refused() -> None:
    with pytest.raises(InvalidIdentity, match="unknown identity kind"):
        identity.normalize_identity("qq", "12345")


def test_email_is_lowercased_and_checked() -> None:
    assert identity.normalize_identity("email", " Li.Na@Example.COM ") == "li.na@example.com"
    with pytest.raises(InvalidIdentity):
        identity.normalize_identity("email", "not-an-email")


def _count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_two_channels_then_linking_event_merge_into_one(db: Session, settings: Settings) -> None:
    # Given a mini-program buyer known by phone and a WeCom contact known by external user id
    ingest(db, "orders", [{"id": "o1", "identities": [{"kind": "phone", "value": "13800138000"}],
                           "ts": "2026-01-05T10:00:00", "amount": 99}], settings=settings)
    ingest(db, "events", [{"id": "e1", "type": "add_wecom_contact",
                           "identities": [{"kind": "wecom_external_userid", "value": "wmABC"}],
                           "ts": "2026-01-06T10:00:00"}], settings=settings)
    assert _count(db, Customer) == 2
    phone_owner = db.scalar(select(Identity.customer_id).where(Identity.kind == "phone"))
    wecom_owner = db.scalar(select(Identity.customer_id).where(Identity.kind != "phone"))
    assert phone_owner != wecom_owner

    # When an event carries both identities
    result = ingest(db, "events", [{
        "id": "e2", "type": "bind_phone", "ts": "2026-01-07T10:00:00",
        "identities": [{"kind": "wecom_external_userid", "value": "wmABC"},
                       {"kind": "phone", "value": "+86 138 0013 8000"}]}], settings=settings)

    # Then they are one customer with all orders and events, and the merge is recorded
    assert len(result.merges) == 1
    active = db.scalars(select(Customer).where(Customer.status == "active")).all()
    assert len(active) == 1
    survivor = active[0].id
    assert {o.customer_id for o in db.scalars(select(Order))} == {survivor}
    assert {e.customer_id for e in db.scalars(select(Event))} == {survivor}
    view = get_customer_360(db, survivor)
    assert view["orders"]["count"] == 1 and view["events"]["count"] == 2
    assert len(view["merges"]) == 1
    assert {i["kind"] for i in view["identities"]} == {"phone", "wecom_external_userid"}
    # the merged-away id answers with the survivor
    merged_id = view["merges"][0]["merged_id"]
    assert get_customer_360(db, merged_id)["id"] == survivor


def test_undo_merge_restores_both_customers(db: Session, settings: Settings) -> None:
    upsert_customers(db, [{"id": "c1", "identities": [{"kind": "phone", "value": "13800138000"}],
                           "tags": ["VIP"]}], settings=settings)
    ingest(db, "events", [{"id": "e1", "type": "view_product", "ts": "2026-02-01T08:00:00",
                           "identities": [{"kind": "wechat_openid", "value": "oX1"}]}],
           settings=settings)
    openid_owner = db.scalar(select(Identity.customer_id).where(Identity.value == "oX1"))
    add_tag(db, openid_owner, "VIP")
    add_tag(db, openid_owner, "素食")
    res = ingest(db, "events", [{"id": "e2", "type": "login", "ts": "2026-02-02T08:00:00",
                                 "identities": [{"kind": "wechat_openid", "value": "oX1"},
                                                {"kind": "phone", "value": "13800138000"}]}],
                 settings=settings)
    merge = db.get(Merge, res.merges[0])
    assert merge is not None
    kept, dropped = merge.kept_id, merge.merged_id
    assert db.scalar(select(func.count()).where(CustomerTag.customer_id == kept)) == 2

    identity.undo_merge(db, merge.id, actor="test")

    assert db.get(Customer, dropped).status == "active"  # type: ignore[union-attr]
    assert db.scalar(select(Identity.customer_id).where(Identity.value == "oX1")) == dropped
    assert db.scalar(select(Event.customer_id).where(Event.id == "e1")) == dropped
    tags_dropped = set(db.scalars(select(CustomerTag.tag_id).where(
        CustomerTag.customer_id == dropped)))
    assert len(tags_dropped) == 2  # VIP restored after the duplicate was removed, and 素食
    with pytest.raises(MergeNotUndoable):
        identity.undo_merge(db, merge.id, actor="test")


def test_different_verified_phones_or_app_ids_are_not_merged(
    db: Session, settings: Settings
) -> None:
    # Two customers, each with its own app account, share a WeChat openid (a family tablet)
    ingest(db, "events", [
        {"id": "a", "type": "app_login", "ts": "2026-03-01T08:00:00",
         "identities": [{"kind": "app_user_id", "value": "u-1"}]},
        {"id": "b", "type": "app_login", "ts": "2026-03-01T08:00:00",
         "identities": [{"kind": "app_user_id", "value": "u-2"},
                        {"kind": "wechat_openid", "value": "o-shared"}]},
    ], settings=settings)
    res = ingest(db, "events", [{"id": "c", "type": "view_product", "ts": "2026-03-02T08:00:00",
                                 "identities": [{"kind": "app_user_id", "value": "u-1"},
                                                {"kind": "wechat_openid", "value": "o-shared"}]}],
                 settings=settings)
    assert res.merges == []
    assert len(res.conflicts) == 1
    assert db.scalar(select(func.count()).select_from(Customer).where(
        Customer.status == "active")) == 2
    conflict = db.get(MergeConflict, res.conflicts[0])
    assert conflict is not None and conflict.conflict_kind == "app_user_id"
    # the same clash again does not queue a second conflict
    res2 = ingest(db, "events", [{"id": "d", "type": "view_product", "ts": "2026-03-02T09:00:00",
                                  "identities": [{"kind": "app_user_id", "value": "u-1"},
                                                 {"kind": "wechat_openid", "value": "o-shared"}]}],
                  settings=settings)
    assert res2.conflicts == []
    assert _count(db, MergeConflict) == 1

    # a person decides to merge
    identity.resolve_conflict(db, conflict.id, decision="merge", actor="reviewer")
    assert db.scalar(select(func.count()).select_from(Customer).where(
        Customer.status == "active")) == 1


def test_verified_phone_clash_is_queued_but_unverified_merges(
    db: Session, settings: Settings
) -> None:
    upsert_customers(db, [
        {"identities": [{"kind": "phone", "value": "13800138000", "verified": True},
                        {"kind": "email", "value": "a@example.com"}]},
        {"identities": [{"kind": "phone", "value": "13900139000", "verified": True},
                        {"kind": "wechat_openid", "value": "o-9"}]},
    ], settings=settings)
    res = ingest(db, "events", [{"id": "x", "type": "t", "ts": "2026-03-01T08:00:00",
                                 "identities": [{"kind": "email", "value": "a@example.com"},
                                                {"kind": "wechat_openid", "value": "o-9"}]}],
                 settings=settings)
    assert res.merges == [] and len(res.conflicts) == 1
    assert db.get(MergeConflict, res.conflicts[0]).conflict_kind == "phone"  # type: ignore


def test_new_brand_id_sharing_a_phone_becomes_its_own_customer(
    db: Session, settings: Settings
) -> None:
    upsert_customers(db, [{"id": "HY1", "identities": [{"kind": "phone",
                                                        "value": "13800138000"}]}],
                     settings=settings)
    # Family member with their own brand id, registered with the same phone
    res = upsert_customers(db, [{"id": "HY2", "identities": [{"kind": "phone",
                                                              "value": "13800138000"}]}],
                           settings=settings)
    assert res.created == 1 and len(res.conflicts) == 1
    owners = {row.value: row.customer_id for row in db.execute(
        select(Identity.value, Identity.customer_id).where(Identity.kind == "external_id"))}
    assert owners["HY1"] != owners["HY2"]


def test_batch_groups_sharing_new_identities_become_one_customer(
    db: Session, settings: Settings
) -> None:
    res = ingest(db, "events", [
        {"id": "1", "type": "t", "ts": "2026-03-01T08:00:00",
         "identities": [{"kind": "phone", "value": "13800138000"}]},
        {"id": "2", "type": "t", "ts": "2026-03-01T08:00:00",
         "identities": [{"kind": "phone", "value": "13800138000"},
                        {"kind": "wechat_openid", "value": "o-1"}]},
        {"id": "3", "type": "t", "ts": "2026-03-01T08:00:00",
         "identities": [{"kind": "wechat_openid", "value": "o-1"}]},
    ], settings=settings)
    assert res.accepted == 3
    assert _count(db, Customer) == 1
    assert _count(db, Identity) == 2


def test_merge_keeps_the_kept_customers_own_brand_id_and_lists_the_other_as_alias(
    db: Session, settings: Settings
) -> None:
    # 张伟 (HY000004) is on file first; 李娜 (HY000005) is kept when an admin merges them.
    res = upsert_customers(db, [{"id": "HY000004", "name": "张伟"},
                                {"id": "HY000005", "name": "李娜"}], settings=settings)
    zhang, li = res.customer_ids
    identity.merge_customers(db, li, zhang, reason="conflict_reviewed", actor="user:1")
    view = get_customer_360(db, li)
    assert view["external_id"] == "HY000005"
    assert view["external_id_aliases"] == ["HY000004"]
    assert get_customer_360(db, zhang)["external_id"] == "HY000005"  # resolved to 李娜
