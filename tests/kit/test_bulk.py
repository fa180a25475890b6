"""The bulk helpers used by ingest: ids come back in row order, lookups bind their values."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.customers.models import Customer, Identity
from siyu.db import utcnow
from siyu.kit.bulk import bulk_insert, insert_returning_ids, select_in


def _customer_rows(names: list[str]) -> list[dict[str, object]]:
    now = utcnow()
    return [{"name": n, "attributes": {"n": n}, "status": "active", "created_at": now,
             "updated_at": now} for n in names]


def test_insert_returning_ids_gives_each_row_its_own_id_in_order(db: Session) -> None:
    # More rows than one SQLite statement holds, so the chunking is exercised too.
    names = [f"客户{i}" for i in range(9_000)]
    ids = insert_returning_ids(db, Customer.__table__, _customer_rows(names))  # type: ignore[arg-type]
    assert len(ids) == len(set(ids)) == len(names)
    stored = {cid: name for cid, name in db.execute(select(Customer.id, Customer.name))}
    assert [stored[i] for i in ids] == names
    assert db.get(Customer, ids[123]).attributes == {"n": "客户123"}  # type: ignore[union-attr]


def test_insert_returning_ids_after_existing_rows_and_gaps(db: Session) -> None:
    first = insert_returning_ids(db, Customer.__table__, _customer_rows(["a", "b", "c"]))  # type: ignore[arg-type]
    db.execute(Customer.__table__.delete().where(Customer.id == first[1]))
    more = insert_returning_ids(db, Customer.__table__, _customer_rows(["d", "e"]))  # type: ignore[arg-type]
    assert min(more) > max(first)
    stored = {cid: name for cid, name in db.execute(select(Customer.id, Customer.name))}
    assert [stored[i] for i in more] == ["d", "e"]
    assert insert_returning_ids(db, Customer.__table__, []) == []  # type: ignore[arg-type]


def test_select_in_finds_rows_by_value_and_equality(db: Session) -> None:
    ids = insert_returning_ids(db, Customer.__table__, _customer_rows(["x", "y"]))  # type: ignore[arg-type]
    now = utcnow()
    table = Identity.__table__
    values = [f"o-{i}" for i in range(12_000)]
    bulk_insert(db, table, [  # type: ignore[arg-type]
        {"customer_id": ids[i % 2], "kind": "wechat_openid", "value": v, "verified": False,
         "created_at": now} for i, v in enumerate(values)])
    bulk_insert(db, table, [{"customer_id": ids[0], "kind": "email", "value": "o-3",  # type: ignore[arg-type]
                             "verified": False, "created_at": now}])
    wanted = [*values[::3], "o-missing", "x' OR '1'='1"]
    rows = select_in(db, table, ("value", "customer_id"), "value", wanted,  # type: ignore[arg-type]
                     equals={"kind": "wechat_openid"})
    found = dict(rows)
    assert set(found) == set(values[::3])
    assert found["o-3"] == ids[1]  # the e-mail "o-3" of the other kind is not mixed in
    assert select_in(db, table, ("value",), "value", [], equals={"kind": "email"}) == []  # type: ignore[arg-type]


def test_a_duplicate_key_is_sqlalchemys_integrity_error_on_every_store(db: Session) -> None:
    # run_unit retries a batch that lost a race on a unique key by catching this error;
    # PostgreSQL's COPY path must raise it too, not psycopg's own.
    ids = insert_returning_ids(db, Customer.__table__, _customer_rows(["x"]))  # type: ignore[arg-type]
    row = {"customer_id": ids[0], "kind": "phone", "value": "+8613800138000",
           "verified": False, "created_at": utcnow()}
    bulk_insert(db, Identity.__table__, [row])  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        bulk_insert(db, Identity.__table__, [row])  # type: ignore[arg-type]
