"""No agent, analyst or operator sees a full phone number or e-mail address through any API
route, export or page that shows customers; admins do, and their unmasked reads are audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.identity import IdentityRef
from siyu.customers.service import upsert_customers
from siyu.events.service import ingest
from siyu.privacy.models import AuditEntry
from siyu.segments import service as segments
from siyu.service import service as desk
from tests.console.conftest import Login

PHONE = "13812345678"
EMAIL = "hidden.person@example.com"
CONSOLE = {"X-Siyu-Console": "1"}


def _plant(sessions: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    with sessions() as session:
        res = upsert_customers(session, [{
            "id": "M-1", "name": "陈静", "attributes": {"备用电话": PHONE, "mail": EMAIL},
            "identities": [{"kind": "phone", "value": PHONE, "verified": True},
                           {"kind": "email", "value": EMAIL}],
        }], settings=settings)
        cid = res.customer_ids[0]
        ingest(session, "events", [{"id": "ev-m", "customer_id": "M-1", "type": "form_submit",
                                    "ts": "2026-11-30T08:00:00",
                                    "properties": {"phone": PHONE, "email": EMAIL}}],
               settings=settings)
        # a family member with their own brand id and the same phone: a merge conflict
        upsert_customers(session, [{"id": "M-2", "identities": [
            {"kind": "phone", "value": PHONE}]}], settings=settings)
        inbound = desk.receive_inbound(session, channel="webchat",
                                       identities=[IdentityRef("phone", "+86" + PHONE, True)],
                                       text="你好", external_id="mask-1")
        segment = segments.create_segment(session, "有手机号", "has(phone)", created_by="t")
        session.commit()
    return {"cid": cid, "sid": segment.id, "conv": inbound.conversation_id}


API = ["/api/v1/customers", "/api/v1/customers/{cid}", "/api/v1/customers?identity=phone:"
       + PHONE, "/api/v1/customers/{cid}/timeline", "/api/v1/merge-conflicts",
       "/api/v1/segments/{sid}/members", "/api/v1/segments/{sid}/export.csv",
       "/api/v1/customers/{cid}/scores", "/api/v1/conversations/{conv}",
       "/api/v1/conversations/{conv}/messages", "/api/v1/customers/{cid}/export"]
PAGES = ["/customers", "/customers/{cid}", "/merges/conflicts", "/service",
         "/service/conversations/{conv}", "/segments"]


@pytest.mark.parametrize("role", ["agent", "analyst", "operator"])
def test_no_full_phone_or_email_for_roles_without_pii(
    staff: None, login: Login, sessions: sessionmaker[Session], settings: Settings, role: str,
) -> None:
    ids = _plant(sessions, settings)
    client = login(role)
    answered = 0
    for path in API:
        response = client.get(path.format(**ids), headers=CONSOLE)
        assert response.status_code in (200, 403, 404), (path, response.status_code)
        answered += response.status_code == 200
        assert PHONE not in response.text, (role, path)
        assert EMAIL not in response.text, (role, path)
    for path in PAGES:
        response = client.get(path.format(**ids))
        assert response.status_code in (200, 403), (path, response.status_code)
        answered += response.status_code == 200
        assert PHONE not in response.text, (role, path)
        assert EMAIL not in response.text, (role, path)
    assert answered >= 4  # the role did read customers, masked
    with sessions() as session:
        assert session.scalars(select(AuditEntry.action)
                               .where(AuditEntry.action == "pii.read")).all() == []


def test_admin_sees_values_and_the_read_is_audited(
    staff: None, login: Login, sessions: sessionmaker[Session], settings: Settings,
) -> None:
    ids = _plant(sessions, settings)
    client = login("admin")
    assert PHONE in client.get(f"/api/v1/customers/{ids['cid']}", headers=CONSOLE).text
    assert PHONE in client.get(f"/customers/{ids['cid']}").text
    export = client.get(f"/api/v1/segments/{ids['sid']}/export.csv", headers=CONSOLE)
    assert export.status_code == 200 and PHONE not in export.text  # exports always mask
    with sessions() as session:
        rows = session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)
                               .where(AuditEntry.action.not_like("login.%"))
                               .order_by(AuditEntry.id)).all()
    assert [tuple(r) for r in rows] == [
        ("user:admin", "pii.read", f"customer:{ids['cid']}"),
        ("user:admin", "pii.read", f"customer:{ids['cid']}"),
        ("user:admin", "segment.export", f"segment:{ids['sid']}")]
