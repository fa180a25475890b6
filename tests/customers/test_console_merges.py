"""The merge-review queue (合并审核) comes in pages, oldest first."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.service import upsert_customers
from tests.console.conftest import (  # noqa: F401  (console fixtures)
    Login,
    login,
    make_user,
    staff,
)


def conflicts(sessions: sessionmaker[Session], settings: Settings, n: int) -> None:
    """``n`` pairs of customers sharing a phone under different brand ids."""
    with sessions() as s:
        for i in range(n):
            phone = f"139{i:08d}"
            for suffix in ("A", "B"):
                upsert_customers(s, [{"id": f"K{i}{suffix}", "name": f"客户{i}{suffix}",
                                      "identities": [{"kind": "phone", "value": phone}]}],
                                 settings=settings)
        s.commit()


@pytest.mark.usefixtures("staff")
def test_the_merge_review_queue_is_paginated(
        login: Login, sessions: sessionmaker[Session], settings: Settings) -> None:  # noqa: F811
    conflicts(sessions, settings, 23)
    client = login("operator")
    first = client.get("/merges/conflicts").text
    shown = re.findall(r'<section class="card conflict" id="conflict-(\d+)">', first)
    assert len(shown) == 10 and shown == sorted(shown, key=int)
    assert "第 1 / 3 页" in first and "共 23 条待审核" in first
    assert 'href="/merges/conflicts?page=2"' in first
    last = client.get("/merges/conflicts", params={"page": 3}).text
    tail = re.findall(r'<section class="card conflict" id="conflict-(\d+)">', last)
    assert len(tail) == 3 and int(tail[0]) > int(shown[-1])
    assert "第 21–23 条" in last
    # Past the end: the last page, not an empty one.
    assert "第 3 / 3 页" in client.get("/merges/conflicts", params={"page": 50}).text
