"""Every rule form against the hand-made population (see conftest): exact member sets."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.customers.models import Customer, Tag
from siyu.segments import service
from siyu.segments.compiler import compile_rule
from siyu.segments.errors import InvalidRule
from siyu.segments.rules import parse
from tests.segments.conftest import DAY, NOW, Population, ago

CASES: list[tuple[str, set[str]]] = [
    # orders: counted statuses only; all time and windows; zero included
    ("orders >= 3", {"A", "F"}),
    ("orders(last 30d) >= 2", {"A"}),
    ("orders(last 30d) >= 1", {"A", "B"}),  # B's order exactly 30 days ago is inside
    ("orders(last 30d) = 0", {"C", "D", "F"}),  # C's is 1 s too old; refunds do not count
    ("orders < 1", {"D"}),
    ("orders between 1 and 2", {"B", "C"}),
    ("orders in (0, 3)", {"A", "D", "F"}),
    ("orders not in (0, 3)", {"B", "C"}),
    ("spend between 100 and 500", {"C", "F"}),
    ("spend < 100", {"B", "D"}),
    ("spend(last 90d) >= 300", {"A", "C"}),
    ("spend(last 2w) > 1000", set()),
    ("avg_order_value > 150", {"A", "C"}),
    ("not avg_order_value > 150", {"B", "D", "F"}),
    ("avg_order_value < 1000", {"A", "B", "C", "F"}),  # no orders: no average, false
    ("referrals >= 2", {"F"}),
    ("referrals(last 30d) >= 1", {"F"}),
    ("referrals(last 30d) = 0", {"A", "B", "C", "D"}),
    # events, including "never"
    ('event("coupon_used", last 30d) = 0', {"B", "C", "D", "F"}),
    ('event("coupon_used") >= 1', {"A", "B", "F"}),
    ('event("coupon_used") = 0', {"C", "D"}),
    ('event("view_product", last 2h) = 1', {"D"}),
    ('event("coupon_used", last 31d) >= 1', {"A", "B"}),
    # profile, with missing values false and "not" true
    ('city = "上海"', {"A", "D", "F"}),
    ('city != "上海"', {"B"}),
    ('not city = "上海"', {"B", "C"}),
    ('gender = "female"', {"A"}),
    ('tier in ("VIP", "会员")', {"A", "B", "D", "F"}),
    ('tier not in ("VIP")', {"B"}),
    ('not tier = "VIP"', {"B", "C"}),
    ("age >= 36", {"A"}),  # 36th birthday today (in Shanghai)
    ("age = 35", {"B"}),  # turns 36 tomorrow
    ("age < 36", {"B", "D"}),
    ("age between 20 and 35", {"B", "D"}),
    ("tenure_days >= 10", {"A", "B", "D", "F"}),  # B exactly 10 days, C a second short
    ("tenure_days = 9", {"C"}),
    # attributes: numbers and numeric strings compare as numbers
    ('attr("car_mileage") > 5000', {"A"}),
    ('attr("car_mileage") > 4000', {"A", "B"}),
    ('attr("car_mileage") between 4800 and 4800', {"B"}),
    ('attr("car_mileage") = "abc"', {"C"}),
    ('attr("color") in ("red", "blue")', {"A"}),
    ('not attr("car_mileage") > 5000', {"B", "C", "D", "F"}),
    ('attr("no_such") != "x"', set()),
    # tags, identities, consent (latest decision wins; ties by id)
    ('tag("VIP")', {"A", "D"}),
    ('not tag("投诉中")', {"A", "C", "D", "F"}),
    ('tag("没有这个标签")', set()),
    ("has(wecom_external_userid)", {"A", "D"}),
    ("has(phone) and not has(wecom_external_userid)", {"B", "F"}),
    ('consent("sms", "marketing")', {"B"}),
    ('consent("wecom", "marketing")', set()),
    # scores: a missing row (C) is false, and true under "not"
    ('lifecycle = "decline"', {"B"}),
    ('lifecycle != "decline"', {"A", "D", "F"}),
    ('not lifecycle = "decline"', {"A", "C", "D", "F"}),
    ("rfm_r >= 2", {"A", "B"}),
    ('rfm_tier = "VIP"', {"A"}),
    ("clv > 20", {"A", "B"}),
    ("last_order_days > 60", {"B", "F"}),
    ("last_order_days > 61", {"F"}),  # B's last order is exactly 61 days ago
    ("last_order_days <= 1", {"A"}),
    ("first_order_days >= 400", {"F"}),
    ("last_active_days = 0", {"D"}),
    ("not last_order_days > 60", {"A", "C", "D"}),
    # combinations
    ('tier in ("VIP") and orders(last 30d) >= 2 and not tag("投诉中")', {"A"}),
    ('(city = "上海" or city = "北京") and not has(wecom_external_userid)', {"B", "F"}),
    ('not (tag("VIP") or lifecycle = "decline") and orders >= 1', {"C", "F"}),
    # beside a behaviour condition, lookups are correlated probes: same answers
    ('orders >= 1 and consent("sms", "marketing")', {"B"}),
    ('orders >= 1 and not lifecycle = "decline"', {"A", "C", "F"}),
    ('orders >= 1 and tag("VIP")', {"A"}),
    ('orders >= 1 and (has(phone) or last_order_days > 100)', {"A", "B", "F"}),
    ('event("coupon_used") >= 1 and not consent("sms", "marketing")', {"A", "F"}),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rule_selects_exactly(db: Session, population: Population, text: str,
                              expected: set[str]) -> None:
    ids = db.scalars(compile_rule(parse(text), now=NOW)).all()
    assert population.names(ids) == expected
    assert service.count_rule(db, text, now=NOW).count == len(expected)


def test_windows_follow_now(db: Session, population: Population) -> None:
    # A day later, B's order (30 days ago today) has left the 30-day window.
    later = NOW + DAY
    ids = db.scalars(compile_rule(parse("orders(last 30d) >= 1"), now=later)).all()
    assert population.names(ids) == {"A"}
    # Evaluated 11 days earlier, A's orders of 1 and 10 days ago had not happened yet.
    earlier = ago(11)
    ids = db.scalars(compile_rule(parse("orders >= 1"), now=earlier)).all()
    assert population.names(ids) == {"A", "B", "C", "F"}
    assert population.names(db.scalars(compile_rule(parse("orders >= 2"), now=earlier))) \
        == {"F"}


INJECTIONS = [
    "tag(\"x') OR 1=1 --\")",
    "city = \"上海' OR '1'='1\"",
    "tier in (\"VIP\\\" OR 1=1 --\")",
    "attr(\"a') OR 1=1; DROP TABLE tags; --\") = \"x\"",
    "attr(\"a\\\"b') OR 1=1 --\") = \"x\"",
    "event(\"x'; DELETE FROM customers; --\") >= 1",
    "consent(\"sms' OR '1'='1\", \"marketing\")",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_are_only_values(db: Session, population: Population,
                                           text: str) -> None:
    rule = parse(text)
    statement = compile_rule(rule, now=NOW)
    sql = str(statement.compile(dialect=db.get_bind().dialect,
                                compile_kwargs={"render_postcompile": True}))
    assert "1=1" not in sql and "DROP" not in sql and "DELETE" not in sql
    assert db.scalars(statement).all() == []
    # Nothing was changed by running it.
    assert db.scalar(select(func.count()).select_from(Customer)) == 6
    assert db.scalar(select(func.count()).select_from(Tag)) == 2


def test_count_refuses_bad_rules_with_position(db: Session, population: Population) -> None:
    with pytest.raises(InvalidRule) as info:
        service.count_rule(db, "orderz >= 3 and tag(\"VIP\")", now=NOW)
    assert info.value.position == 0
    assert "orderz" in info.value.error.message
    with pytest.raises(InvalidRule) as info:
        service.count_rule(db, 'tier in ("VIP") and city = 5', now=NOW)
    assert info.value.position == 27
    with pytest.raises(InvalidRule) as info:
        service.count_rule(db, "orders(last 30d) >= ", now=NOW)
    assert info.value.position == 20


def test_explain_shows_placeholders_not_values(db: Session, population: Population,
                                               sessions: sessionmaker[Session]) -> None:
    info = service.explain_rule(db, 'tag("投诉中") and orders(last 30d) >= 2', now=NOW)
    assert info["text"] == 'tag("投诉中") and orders(last 30d) >= 2'
    assert info["rule"] == {"op": "and", "args": [
        {"field": "tag", "value": "投诉中"},
        {"field": "orders", "window": {"last": 30, "unit": "d"}, "cmp": ">=", "value": 2}]}
    assert info["description_zh"] == "标签「投诉中」 且 近30天下单≥2次"
    assert "投诉中" not in info["sql"]
    assert "投诉中" in info["params"].values()
    assert ago(30).isoformat() in info["params"].values()
