"""PIPL erasure and export, end to end on a real database: markers planted in every field
that holds the person's data are gone from the SQLite files afterwards, orders still count
in revenue, the erased phone comes back as a new customer who is not marketed to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from siyu import migrate
from siyu.channels import outbox
from siyu.config import Settings
from siyu.customers.identity import IdentityRef
from siyu.customers.models import Customer, Identity
from siyu.customers.service import upsert_customers
from siyu.db import make_engine, make_session_factory
from siyu.events.models import Order
from siyu.events.service import ingest
from siyu.jobs import service as jobs
from siyu.jobs.models import Job
from siyu.jobs.worker import load_tasks
from siyu.privacy import service as privacy
from siyu.privacy.models import AuditEntry, Suppression
from siyu.segments import service as segments
from siyu.service import service as desk
from tests.cli_helpers import run_cli
from tests.console.conftest import Login

PHONE = "13912345678"
MARKERS = {
    "phone": PHONE,
    "email": "markmail7q@example.com",
    "name": "MARKNAME7Q",
    "attribute": "MARKATTR7Q",
    "event": "MARKEVENT7Q",
    "message": "MARKMSG7Q",
    "openid": "MARKOPENID7Q",
    "order_note": "MARKGIFT7Q",
    "outbox": "MARKOUTBOX7Q",
}


def plant(sessions: sessionmaker[Session], settings: Settings) -> int:
    """One person spread over every table that can hold them, with a merged-away record,
    a merge conflict, a conversation and an outbox reply; returns their customer id."""
    with sessions() as session:
        res = upsert_customers(session, [{
            "id": "P-7Q", "name": MARKERS["name"], "city": "杭州",
            "attributes": {"note": MARKERS["attribute"]},
            "identities": [{"kind": "phone", "value": PHONE, "verified": True}],
            "tags": ["高价值"],
            "consents": [{"channel": "sms", "purpose": "marketing", "granted": True}],
        }, {
            # a second record of the same person, merged in below through the e-mail
            "identities": [{"kind": "email", "value": MARKERS["email"]},
                           {"kind": "wechat_openid", "value": MARKERS["openid"]}],
        }], settings=settings)
        ingest(session, "events", [{
            "id": "E-7Q-1", "type": "view_product", "ts": "2026-11-20T09:30:00",
            "properties": {"comment": MARKERS["event"]},
            "identities": [{"kind": "phone", "value": PHONE},
                           {"kind": "email", "value": MARKERS["email"]}],
        }], settings=settings)
        ingest(session, "orders", [
            {"id": "O-7Q-1", "customer_id": "P-7Q", "ts": "2026-11-21T10:00:00",
             "amount": 100.0, "channel": "tmall",
             "items": [{"sku": "A1", "qty": 1, "gift_note": MARKERS["order_note"]}]},
            {"id": "O-7Q-2", "customer_id": "P-7Q", "ts": "2026-11-22T10:00:00",
             "amount": 250.5, "channel": "tmall"},
        ], settings=settings)
        # a family member with their own brand id and the same phone: a merge conflict
        upsert_customers(session, [{"id": "P-7Q-FAMILY", "identities": [
            {"kind": "phone", "value": PHONE}]}], settings=settings)
        inbound = desk.receive_inbound(
            session, channel="webchat", identities=[IdentityRef("phone", "+86" + PHONE, True)],
            text=f"我的快递呢 {MARKERS['message']}", external_id="m-7q-1")
        desk.post_outbound(session, conversation_id=inbound.conversation_id, sender="bot",
                           text=f"您好 {MARKERS['name']}，正在为您查询")
        outbox.enqueue_message(session, key="campaign-7q", customer_id=inbound.customer_id,
                               channel="sms", text=f"{MARKERS['outbox']} 双十二会员日")
        session.commit()
        assert len(set(res.customer_ids)) == 2
        return inbound.customer_id


def _sqlite_bytes(database_url: str) -> bytes:
    path = Path(make_url(database_url).database or "")
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        data += wal.read_bytes()
    return data


def _markers_in(data: bytes) -> list[str]:
    return [name for name, marker in MARKERS.items() if marker.encode() in data]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A migrated SQLite database of the test's own, whichever store the suite runs on:
    the erasure is checked in the files themselves (the PostgreSQL run checks it too)."""
    url = f"sqlite:///{tmp_path / 'erase.db'}"
    eng = make_engine(url)
    migrate.upgrade(eng)
    yield url, eng
    eng.dispose()


def test_erase_leaves_no_trace_in_the_sqlite_files(
    monkeypatch: pytest.MonkeyPatch, sqlite_store: tuple[str, Engine],
) -> None:
    database_url, engine = sqlite_store
    sessions = make_session_factory(engine)
    settings = Settings(database_url=database_url, environment="test")
    cid = plant(sessions, settings)
    with engine.connect() as conn:  # everything is in the files before the erasure
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    assert set(_markers_in(_sqlite_bytes(database_url))) == set(MARKERS)

    result = run_cli(monkeypatch, database_url, "customers", "erase", f"phone:{PHONE}", "--yes")
    assert result.exit_code == 0, result.output
    assert "identities" in result.output and "messages" in result.output

    assert _markers_in(_sqlite_bytes(database_url)) == []
    with sessions() as session:
        # orders still count in revenue, anonymously, with the erased tombstone
        assert session.scalar(select(func.sum(Order.amount))) == pytest.approx(350.5)
        tomb = session.get(Customer, cid)
        assert tomb is not None and tomb.status == "erased" and tomb.name is None
        assert session.scalar(select(func.count()).select_from(Identity)
                              .where(Identity.customer_id == cid)) == 0
        # phone, e-mail, openid and brand id are kept as keyed hashes
        assert session.scalar(select(func.count()).select_from(Suppression)) == 4
        entry = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "customer.erase")).one()
        assert entry.target == f"customer:{cid}" and entry.actor.startswith("cli:")

    # safe to repeat, by phone or by id
    again = run_cli(monkeypatch, database_url, "customers", "erase", f"phone:{PHONE}", "--yes")
    assert again.exit_code == 0 and "already erased" in again.output
    again = run_cli(monkeypatch, database_url, "customers", "erase", str(cid), "--yes")
    assert again.exit_code == 0 and "already erased" in again.output
    shown = run_cli(monkeypatch, database_url, "customers", "show", str(cid))
    assert shown.exit_code == 2


def test_erased_phone_comes_back_as_a_new_customer_who_is_not_marketed_to(
    sessions: sessionmaker[Session], settings: Settings,
) -> None:
    cid = plant(sessions, settings)
    with sessions() as session:
        privacy.erase_customer(session, settings, cid, actor="user:admin")
        session.commit()
    with sessions() as session:
        back = desk.receive_inbound(
            session, channel="webchat", identities=[IdentityRef("phone", "+86" + PHONE, True)],
            text="你好", external_id="m-7q-2")
        session.commit()
    assert back.customer_id != cid
    with sessions() as session:
        assert not privacy.may_contact(session, settings, back.customer_id, channel="sms")
        assert segments.count_rule(session, 'consent("sms", "marketing")').count == 0
        # even after an import that says they once agreed
        upsert_customers(session, [{"identities": [{"kind": "phone", "value": PHONE}],
                                    "consents": [{"channel": "sms", "purpose": "marketing",
                                                  "granted": True,
                                                  "at": "2026-01-01T00:00:00"}]}],
                         settings=settings)
        assert not privacy.may_contact(session, settings, back.customer_id, channel="sms")


def test_consent_withdrawal_takes_effect_at_once(
    sessions: sessionmaker[Session], settings: Settings,
) -> None:
    from siyu.customers import service as customers

    cid = plant(sessions, settings)
    with sessions() as session:
        assert privacy.may_contact(session, settings, cid, channel="sms")
        customers.record_consent(session, cid, channel="sms", purpose="marketing",
                                 granted=False, source="customer")
        assert not privacy.may_contact(session, settings, cid, channel="sms")
        assert segments.count_rule(session, 'consent("sms", "marketing")').count == 0


def test_export_holds_everything_about_the_person(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings,
) -> None:
    cid = plant(sessions, settings)
    response = client.get(f"/api/v1/customers/{cid}/export")
    assert response.status_code == 200
    doc = response.json()
    tables = doc["tables"]
    for name in ("customers", "identities", "customer_tags", "consents", "orders", "events",
                 "conversations", "messages", "customer_merges", "merge_conflicts",
                 "channel_deliveries"):
        assert tables.get(name), f"export lacks {name}"
    text = json.dumps(doc, ensure_ascii=False)
    for name, marker in MARKERS.items():
        assert marker in text, f"export lacks the {name}"
    assert tables["customer_tags"][0]["tag_name"] == "高价值"
    assert len(doc["customer_ids"]) == 2  # the merged-away record is part of the person
    with sessions() as session:
        (entry,) = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "customer.export")).all()
        assert entry.target == f"customer:{cid}" and entry.detail["rows"] > 10


def test_erase_api_then_every_route_of_the_customer_answers_404(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings,
) -> None:
    cid = plant(sessions, settings)
    response = client.post(f"/api/v1/customers/{cid}/erase")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["removed"]["identities"] == 4 and body["anonymised"]["orders"] == 2
    assert MARKERS["phone"] not in response.text
    for path in (f"/api/v1/customers/{cid}", f"/api/v1/customers/{cid}/timeline",
                 f"/api/v1/customers/{cid}/export", f"/api/v1/customers?identity=phone:{PHONE}"):
        assert client.get(path).status_code == 404, path
    again = client.post(f"/api/v1/customers/{cid}/erase")
    assert again.status_code == 200 and again.json()["already_erased"] is True
    with sessions() as session:  # PostgreSQL: the VACUUM is left to a durable job
        vacuums = session.scalars(select(Job).where(Job.name == "privacy.vacuum")).all()
        assert len(vacuums) == (1 if session.get_bind().dialect.name == "postgresql" else 0)
    if vacuums:
        assert "messages" in vacuums[0].payload["tables"]
        load_tasks()  # the handlers, as a worker starting up registers them
        assert jobs.run_due(sessions, worker="test").done >= 1
        with sessions() as session:
            assert session.get(Job, vacuums[0].id).status == "done"  # type: ignore[union-attr]
    for bad in ("99999999999999999999", "0", "-1", "abc"):
        assert client.post(f"/api/v1/customers/{bad}/erase").status_code == 422, bad
        assert client.get(f"/api/v1/customers/{bad}/export").status_code == 422, bad


@pytest.mark.parametrize("role", ["agent", "analyst", "operator"])
def test_only_admins_export_or_erase(
    staff: None, login: Login, sessions: sessionmaker[Session], settings: Settings, role: str,
) -> None:
    cid = plant(sessions, settings)
    client = login(role)
    console = {"X-Siyu-Console": "1"}
    assert client.get(f"/api/v1/customers/{cid}/export", headers=console).status_code == 403
    assert client.post(f"/api/v1/customers/{cid}/erase", headers=console).status_code == 403
    # without the console header a session cookie is no credential at all
    assert client.post(f"/api/v1/customers/{cid}/erase").status_code == 401
    with sessions() as session:
        assert session.get(Customer, cid).status == "active"  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action.not_like("login.%"))) == 0


def test_admin_console_user_may_export(
    staff: None, login: Login, sessions: sessionmaker[Session], settings: Settings,
) -> None:
    cid = plant(sessions, settings)
    client = login("admin")
    response = client.get(f"/api/v1/customers/{cid}/export", headers={"X-Siyu-Console": "1"})
    assert response.status_code == 200
    with sessions() as session:
        assert session.scalars(select(AuditEntry.actor).where(
            AuditEntry.action.not_like("login.%"))).all() == ["user:admin"]


def test_erase_without_yes_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: sessionmaker[Session],
    settings: Settings,
) -> None:
    cid = plant(sessions, settings)
    result = run_cli(monkeypatch, database_url, "customers", "erase", str(cid))
    assert result.exit_code == 2
    assert "--yes" in result.output and "identities" in result.output
    with sessions() as session:
        assert session.get(Customer, cid).status == "active"  # type: ignore[union-attr]


def test_export_cli(monkeypatch: pytest.MonkeyPatch, database_url: str,
                   sessions: sessionmaker[Session], settings: Settings, tmp_path: Path) -> None:
    cid = plant(sessions, settings)
    out = tmp_path / "p.json"
    result = run_cli(monkeypatch, database_url, "customers", "export", str(cid),
                     "--output", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["customer_id"] == cid and MARKERS["message"] in out.read_text(encoding="utf-8")


def test_withdrawal_stops_marketing_already_queued(
    sessions: sessionmaker[Session], settings: Settings,
) -> None:
    from siyu.channels.models import Delivery
    from siyu.customers import service as customers

    cid = plant(sessions, settings)
    with sessions() as session:
        queued = outbox.enqueue_message(session, key="promo-7q-2", customer_id=cid,
                                        channel="sms", text="双十二")
        service_reply = outbox.enqueue_message(session, key="notice-7q", customer_id=cid,
                                               channel="sms", text="订单已发货",
                                               purpose="service")
        customers.record_consent(session, cid, channel="sms", purpose="marketing",
                                 granted=False, source="customer")
        session.commit()
    with sessions() as session:
        adapters: dict[str, Any] = {"sms": object()}
        outcome = outbox.begin_send(session, queued, adapters)
        assert isinstance(outcome, outbox.Outcome) and outcome.status == "failed"
        assert "withdrawn" in outcome.reason
        # a service message (an order notice) is not marketing: it goes on
        assert not isinstance(outbox.begin_send(session, service_reply, adapters),
                              outbox.Outcome)
        session.commit()
        assert session.get(Delivery, queued).state == "failed"  # type: ignore[union-attr]
