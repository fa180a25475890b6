"""attr_days("name"): whole days since a YYYY-MM-DD string attribute, on both stores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from siyu.customers.models import Customer
from siyu.segments import service
from siyu.segments.compiler import compile_rule
from siyu.segments.errors import InvalidRule
from siyu.segments.rules import (
    AttrDays,
    Cmp,
    RuleSyntaxError,
    describe_zh,
    from_json,
    parse,
    to_json,
    to_text,
)

# 2026-06-15 20:00 in Shanghai; 16:30 UTC is already 2026-06-16 00:30 there.
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)

OWNERS: dict[str, object] = {
    "old": "2025-06-14",  # 366 days before 2026-06-15
    "year": "2025-06-15",  # exactly 365
    "young": "2025-12-15",  # 182
    "stamp": "2025-06-14T09:30:00+08:00",  # a time after the date is ignored
    "spaced": "2025-06-14 09:30",
    "future": "2026-06-20",  # -5
    "unknown": "不知道",
    "impossible": "2023-02-30",
    "short": "2023-5-10",
    "number": 20230510,
    "glued": "2025-06-14x",
    "list": ["2025-06-14"],
}


@pytest.fixture
def owners(sessions: sessionmaker[Session]) -> Iterator[dict[str, int]]:
    with sessions() as session:
        rows = {name: Customer(name=name, attributes={"bought": value})
                for name, value in OWNERS.items()}
        rows["none"] = Customer(name="none", attributes={})
        session.add_all(rows.values())
        session.commit()
        yield {name: c.id for name, c in rows.items()}


def _names(db: Session, text: str, now: dt.datetime = NOW) -> set[str]:
    ids = set(db.scalars(compile_rule(parse(text), now=now)).all())
    return {c.name for c in db.query(Customer).filter(Customer.id.in_(ids))} if ids else set()


CASES: list[tuple[str, set[str]]] = [
    ('attr_days("bought") > 365', {"old", "stamp", "spaced"}),
    ('attr_days("bought") >= 365', {"old", "year", "stamp", "spaced"}),
    ('attr_days("bought") = 365', {"year"}),
    ('attr_days("bought") < 0', {"future"}),
    ('attr_days("bought") = -5', {"future"}),
    ('attr_days("bought") between 100 and 365', {"year", "young"}),
    ('attr_days("bought") in (182, 366)', {"young", "old", "stamp", "spaced"}),
    # not a date (or not there): false under every comparison, true only under "not"
    ('attr_days("bought") != 365', {"old", "young", "stamp", "spaced", "future"}),
    ('attr_days("bought") not in (365)', {"old", "young", "stamp", "spaced", "future"}),
    ('attr_days("bought") > -1000000000', {"old", "year", "young", "stamp", "spaced",
                                             "future"}),
    ('attr_days("bought") < 1000000000', {"old", "year", "young", "stamp", "spaced",
                                            "future"}),
    ('not attr_days("bought") >= -1000000', {"unknown", "impossible", "short", "number",
                                              "glued", "list", "none"}),
    ('attr_days("no_such") >= 0', set()),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_attr_days_selects_exactly(db: Session, owners: dict[str, int], text: str,
                                   expected: set[str]) -> None:
    assert _names(db, text) == expected
    assert service.count_rule(db, text, now=NOW).count == len(expected)


def test_days_are_counted_in_the_brand_time_zone(db: Session, owners: dict[str, int]) -> None:
    # 16:30 UTC is the next day in Shanghai: "year" is 366 days old there.
    late = NOW.replace(hour=16, minute=30)
    assert "year" in _names(db, 'attr_days("bought") > 365', now=late)
    assert "year" not in _names(db, 'attr_days("bought") > 365', now=NOW)


def test_huge_day_counts_do_not_overflow(db: Session, owners: dict[str, int]) -> None:
    assert _names(db, 'attr_days("bought") > 1000000000000') == set()
    assert _names(db, 'attr_days("bought") >= -1000000000000') == {
        "old", "year", "young", "stamp", "spaced", "future"}


def test_attr_days_round_trips_text_json_and_description() -> None:
    rule = parse('ATTR_DAYS(\'car_purchase_date\') > 365')
    assert rule == AttrDays("car_purchase_date", Cmp.GT, 365)
    assert to_text(rule) == 'attr_days("car_purchase_date") > 365'
    assert to_json(rule) == {"field": "attr_days", "name": "car_purchase_date",
                             "cmp": ">", "value": 365}
    assert from_json(to_json(rule)) == rule
    assert describe_zh(rule) == "距属性「car_purchase_date」日期>365天"


@pytest.mark.parametrize(
    ("text", "position", "message", "message_zh"),
    [
        ('attr_days("d") > "不知道"', 17, "'attr_days' expects a number, got \"不知道\"",
         "字段 'attr_days' 需要数字"),
        ('attr_days("d") > 1.5', 17, "'attr_days' expects a whole number, got 1.5",
         "字段 'attr_days' 需要整数"),
        ("attr_days(d) > 1", 10, "expected the attribute name as a quoted string, found 'd'",
         "属性名需要用引号括起来"),
        ('attr_days("d" > 1', 14, "expected ')' after the attribute name, found '>'",
         "属性名之后此处应为 ')'"),
        ('orders >= 1 and attr_days("d")', 30,
         "expected a comparison (=, !=, <, <=, >, >=, in, not in, between) after "
         "'attr_days', found the end of the rule", "'attr_days' 之后应为比较运算符"),
        ('attr_day("d") > 1', 0, "unknown field 'attr_day'; did you mean 'attr_days'?",
         "未知字段 'attr_day'"),
    ],
)
def test_attr_days_syntax_errors_point_at_the_mistake(
    text: str, position: int, message: str, message_zh: str
) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse(text)
    assert info.value.position == position
    assert info.value.message == message
    assert info.value.message_zh.startswith(f"第 {position + 1} 个字符处：{message_zh}")


def test_count_refuses_a_bad_attr_days_rule_with_position(db: Session) -> None:
    with pytest.raises(InvalidRule) as info:
        service.count_rule(db, 'attr("mileage_km") > 5000 and attr_days("d") > "x"', now=NOW)
    assert info.value.position == 47


def test_json_form_is_validated() -> None:
    with pytest.raises(Exception) as info:
        from_json({"field": "attr_days", "name": "d", "cmp": ">", "value": "x"})
    assert getattr(info.value, "path", None) == "$.value"
