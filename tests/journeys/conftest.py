"""Builders for journey tests: the demo knowledge base and scenarios, a catalogue, and a
customer who writes to the bot."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from siyu.catalog.service import upsert_products
from siyu.journeys import service
from siyu.journeys import tasks as _tasks  # noqa: F401  (registers the job handlers)
from siyu.kb.demo import seed_demo_kb


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        seed_demo_kb(s)
        upsert_products(s, [
            {"sku": "PRO", "name": "益生菌冻干粉 30 条", "price": 199, "cycle_days": 30},
            {"sku": "OAT", "name": "燕麦片 1kg", "price": 59, "cycle_days": 30},
            {"sku": "DUO", "name": "益生菌燕麦组合装", "price": 239, "bundle_of": "PRO|OAT"},
        ])
        service.install_demo_scenarios(s)
        s.commit()
