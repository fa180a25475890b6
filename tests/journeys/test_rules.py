"""The rule language's journey additions parse, print and round-trip like the rest."""

from __future__ import annotations

import pytest

from siyu.segments.rules import (
    Compare,
    InScenario,
    Intent,
    RuleSyntaxError,
    Window,
    describe_zh,
    from_json,
    parse,
    to_json,
    to_text,
)


@pytest.mark.parametrize(("text", "node"), [
    ('journey = "售后"', Compare("journey", parse('journey = "after_sales"').cmp, "after_sales")),
    ('scenario("食用周期结束")', InScenario("食用周期结束")),
    ('intent("退货", last 7d)', Intent("退货", Window(7, "d"))),
    ("intent('complaint')", Intent("complaint")),
])
def test_parse_and_round_trip(text: str, node: object) -> None:
    rule = parse(text)
    assert rule == node
    assert parse(to_text(rule)) == rule and from_json(to_json(rule)) == rule


def test_numbers_and_descriptions() -> None:
    rule = parse("days_until_repurchase <= 3 and orders_for_others(last 30d) >= 1")
    assert describe_zh(rule) == "距复购到期≤3天 且 近30天为他人下单≥1次"
    assert to_json(parse('scenario("投诉")')) == {"field": "scenario", "value": "投诉"}


@pytest.mark.parametrize(("text", "position"), [
    ('journey = "售前"', 10), ("days_until_repurchase(last 3d) <= 3", 21),
    ('intent("退货", last 7)', 19), ("scenario(投诉)", 9),
])
def test_mistakes_point_at_the_character(text: str, position: int) -> None:
    with pytest.raises(RuleSyntaxError) as err:
        parse(text)
    assert err.value.position == position
