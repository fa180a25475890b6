"""What an operator sees first on the demo's dashboard: LTV/CAC ratios for every
acquisition channel (the demo's costs), and the stage-change chart over the months that have
data only."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics.config import load_config
from siyu.analytics.console import transition_range
from siyu.analytics.reports import ltv_cac
from siyu.config import Settings
from siyu.demo import catalog, generator
from siyu.demo.cli import DEMO_SCORING_CONFIG


def test_the_demo_prices_every_acquisition_channel_so_ltv_cac_has_ratios(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    config = load_config(DEMO_SCORING_CONFIG)
    assert set(config.acquisition_cost) == set(catalog.ACQUISITION_CHANNELS)
    generator.seed_demo(sessions, settings, customers=100, seed=42,
                        now=dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC))
    with sessions() as session:
        channels = ltv_cac(session, config)["channels"]
    assert {c["channel"] for c in channels} >= set(catalog.ACQUISITION_CHANNELS)
    for c in channels:
        if c["channel"] in catalog.ACQUISITION_CHANNELS:
            assert c["ltv_cac"] is not None, c


def test_the_stage_chart_starts_at_the_first_month_with_a_change() -> None:
    months = [f"2026-{m:02d}" for m in range(1, 13)]
    series = {"growth": [0] * 7 + [3, 0, 2, 1, 4], "churned": [0] * 8 + [1, 0, 0, 0]}
    shown, by_stage = transition_range({"months": months, "series": series})
    assert shown == months[7:]
    assert by_stage["growth"] == [3, 0, 2, 1, 4] and by_stage["churned"] == [0, 1, 0, 0, 0]
    assert transition_range({"months": months, "series": {"growth": [0] * 12}})[0] == []
