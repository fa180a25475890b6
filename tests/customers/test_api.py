"""The customers API: list bounds and the 360's brand ids."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.service import upsert_customers


def test_a_page_past_the_end_is_empty_and_says_how_many_pages_there_are(
        client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as session:
        upsert_customers(session, [{"id": f"P{i:03d}"} for i in range(45)], settings=settings)
        session.commit()

    last = client.get("/api/v1/customers", params={"page": 3}).json()
    beyond = client.get("/api/v1/customers", params={"page": 99999}).json()

    assert (len(last["items"]), last["total"], last["page"], last["pages"]) == (5, 45, 3, 3)
    assert (beyond["items"], beyond["total"], beyond["page"], beyond["pages"]) == (
        [], 45, 99999, 3)
