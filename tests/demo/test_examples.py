"""Every example rule a newcomer reads — the README's, the segment builder's placeholder and
its field chips — counts someone on the demo brand; Chinese values are accepted where codes
are, and the lifecycle stages carry the same names in rules as on the dashboard."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics.config import ScoringConfig
from siyu.analytics.scoring import LABELS_ZH
from siyu.analytics.service import fit_clv, recompute_scores
from siyu.config import Settings
from siyu.db import make_session_factory
from siyu.demo.generator import seed_demo
from siyu.segments import service as segments
from siyu.segments.console import SNIPPETS
from siyu.segments.rules import RuleError, parse
from siyu.segments.rules.registry import LIFECYCLE_STAGES
from tests.conftest import empty_all_tables

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)


def example_rules() -> list[tuple[str, str]]:
    """(where, rule) for every example rule shown to people."""
    found: list[tuple[str, str]] = []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for line in readme.splitlines():
        if "siyu segments count" in line:
            found += [("README", r) for r in re.findall(r"\(`([^`]+)`\)", line)]
    builder = (ROOT / "siyu/segments/templates/segments/new.html").read_text(encoding="utf-8")
    found += [("builder placeholder", r) for r in re.findall(r"placeholder='例如：([^']+)'",
                                                             builder)]
    found += [(f"builder chip {name}", snippet) for name, snippet in SNIPPETS]
    return found


@pytest.fixture(scope="module")
def demo(engine: Engine, database_url: str) -> Iterator[sessionmaker[Session]]:
    empty_all_tables(engine)
    sessions = make_session_factory(engine)
    seed_demo(sessions, Settings(database_url=database_url, environment="test"),
              customers=2_000, seed=7, now=NOW)
    with sessions() as session:  # as `siyu demo` does before scoring
        fit_clv(session, calibration_end=NOW.date(), time_unit="week", holdout_end=None,
                today=NOW.date(), timezone="Asia/Shanghai")
        session.commit()
    recompute_scores(sessions, now=NOW, config=ScoringConfig())
    yield sessions
    empty_all_tables(engine)


def test_the_examples_are_found() -> None:
    where = {w for w, _ in example_rules()}
    assert {"README", "builder placeholder"} <= where and len(where) > 10


def test_every_example_rule_counts_someone_on_the_demo_brand(
        demo: sessionmaker[Session]) -> None:
    with demo() as session:
        counts = {(where, rule): segments.count_rule(session, rule, now=NOW).count
                  for where, rule in example_rules()}
    assert all(n > 0 for n in counts.values()), {k: n for k, n in counts.items() if n == 0}


def test_lifecycle_accepts_the_dashboards_chinese_names_and_stores_codes() -> None:
    for code, zh in LIFECYCLE_STAGES:
        assert LABELS_ZH[code] == zh  # the dashboard's name is the rule language's
        assert parse(f'lifecycle = "{zh}"') == parse(f'lifecycle = "{code}"')
    assert parse('lifecycle = "获取期"') == parse('lifecycle = "acquisition"')


def test_an_unknown_lifecycle_lists_the_chinese_names_too() -> None:
    with pytest.raises(RuleError) as caught:
        parse('lifecycle = "引入期"')
    text = str(caught.value) + " ".join(str(getattr(caught.value, a, "")) for a in
                                        ("message_zh", "errors"))
    assert "获取期" in text and "acquisition" in text, text
