"""Orders that change: a repeated order id with a later version updates the order in place."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics import service as analytics
from siyu.analytics.config import load_config
from siyu.analytics.models import CustomerScore
from siyu.events.models import Event, Order
from siyu.segments import service as segments


def _order(status: str, updated_at: str | None, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": "O-1", "customer_id": "C-1", "ts": "2026-11-01T10:00:00+08:00",
                           "amount": 199.0, "status": status,
                           "items": [{"sku": "HY-PRO-01", "quantity": 1}], **extra}
    if updated_at:
        rec["updated_at"] = updated_at
    return rec


def _post(client: TestClient, *records: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/orders", json={"orders": list(records)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _status_events(s: Session) -> list[dict[str, Any]]:
    return [e.properties for e in s.scalars(
        select(Event).where(Event.type == "order_status_changed").order_by(Event.ts))]


def test_paid_then_refunded_is_one_refunded_order_everywhere(
        client: TestClient, sessions: sessionmaker[Session]) -> None:
    assert _post(client, _order("paid", None))["accepted"] == 1
    with sessions() as s:
        before = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
        assert segments.count_rule(s, "orders >= 1 and spend = 199", now=before).count == 1
    result = _post(client, _order("refunded", "2026-11-05T09:00:00+08:00"))
    assert (result["accepted"], result["updated"], result["duplicates"]) == (0, 1, 0)
    with sessions() as s:
        rows = s.scalars(select(Order)).all()
        assert [(o.id, o.status) for o in rows] == [("O-1", "refunded")]
        assert rows[0].updated_at == dt.datetime(2026, 11, 5, 1, 0, tzinfo=dt.UTC)
        assert _status_events(s) == [{"order_id": "O-1", "from": "paid", "to": "refunded"}]
        now = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
        assert segments.count_rule(s, "orders >= 1", now=now).count == 0
        assert segments.count_rule(s, "spend > 0", now=now).count == 0
        analytics.recompute_scores(s, now=now, config=load_config())
        score = s.scalars(select(CustomerScore)).one()
        assert (score.orders_count, score.spend) == (0, 0.0)
        s.commit()
    customer = client.get("/api/v1/customers", params={"identity": "external_id:C-1"})
    assert customer.status_code == 200, customer.text
    assert customer.json()["orders"]["count"] == 0  # purchases: a refunded order is none
    timeline = client.get(f"/api/v1/customers/{customer.json()['id']}/timeline").json()
    assert [e["kind"] for e in timeline] == ["event", "order"]
    assert timeline[1]["summary"].startswith("订单 O-1 · 已退款")


def test_an_older_update_arriving_late_changes_nothing(
        client: TestClient, sessions: sessionmaker[Session]) -> None:
    _post(client, _order("paid", "2026-11-01T10:00:00+08:00"))
    _post(client, _order("delivered", "2026-11-04T10:00:00+08:00"))
    late = _post(client, _order("shipped", "2026-11-02T10:00:00+08:00"))
    same = _post(client, _order("delivered", "2026-11-04T10:00:00+08:00"))
    assert (late["updated"], late["duplicates"]) == (0, 1)
    assert (same["updated"], same["duplicates"]) == (0, 1)
    with sessions() as s:
        assert s.scalar(select(Order.status)) == "delivered"
        assert _status_events(s) == [{"order_id": "O-1", "from": "paid", "to": "delivered"}]


def test_missing_updated_at_counts_as_ts_and_latest_in_a_batch_wins(
        client: TestClient, sessions: sessionmaker[Session]) -> None:
    # No updated_at: the version is ts, so an update with a later updated_at wins over it,
    # and inside one batch the latest version is the one stored.
    result = _post(client, _order("shipped", "2026-11-03T10:00:00+08:00"),
                   _order("completed", "2026-11-08T10:00:00+08:00"),
                   _order("delivered", "2026-11-06T10:00:00+08:00"))
    assert (result["accepted"], result["duplicates"]) == (1, 2)
    repeat = _post(client, _order("paid", None))  # version = ts, older than stored
    assert repeat["updated"] == 0
    moved = _post(client, _order("refunded", "2026-11-09T10:00:00+08:00",
                                 recipient_name="王芳", recipient_phone="13800000000"))
    assert moved["updated"] == 1
    with sessions() as s:
        order = s.scalars(select(Order)).one()
        assert (order.status, order.recipient_name) == ("refunded", "王芳")
        assert s.scalar(select(func.count()).select_from(Event)) == 1


def test_an_update_without_a_status_change_writes_no_event(
        client: TestClient, sessions: sessionmaker[Session]) -> None:
    _post(client, _order("paid", None))
    result = _post(client, _order("paid", "2026-11-02T10:00:00+08:00", amount=150.0))
    assert result["updated"] == 1
    with sessions() as s:
        assert s.scalar(select(Order.amount)) == 150.0
        assert _status_events(s) == []
