"""The segment rule language: parsing, printing, JSON form, validation and errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from siyu.errors import SiyuError
from siyu.segments.rules import (
    FIELDS,
    And,
    AttrCompare,
    AttrDays,
    Cmp,
    Compare,
    Consent,
    EventCount,
    FieldKind,
    HasIdentity,
    InScenario,
    Intent,
    Not,
    Or,
    Rule,
    RuleJsonError,
    RuleSyntaxError,
    Tag,
    ValueType,
    VocLow,
    Window,
    describe_zh,
    from_json,
    parse,
    to_json,
    to_text,
    validate,
)
from siyu.segments.rules.nodes import WindowUnit

D30 = {"last": 30, "unit": "d"}
LIFECYCLES = "acquisition, growth, maturity, decline, churned, reactivated"
AUDIENCES = "mainstream, pioneer, seed, potential, influencer, follower, ideal"
KINDS = (
    "phone, email, wecom_userid, wecom_external_userid, wechat_openid, wechat_unionid, "
    "app_user_id, external_id, voiceprint_id"
)
CMPS = "'=', '!=', '<', '<=', '>', '>=', 'in', 'not in', 'between'"

FORMS: list[tuple[str, dict[str, Any]]] = [
    ("orders >= 3", {"field": "orders", "cmp": ">=", "value": 3}),
    ("spend between 100 and 500", {"field": "spend", "cmp": "between", "value": [100, 500]}),
    ("orders(last 30d) >= 2", {"field": "orders", "window": D30, "cmp": ">=", "value": 2}),
    (
        "spend(last 90d) > 1000",
        {"field": "spend", "window": {"last": 90, "unit": "d"}, "cmp": ">", "value": 1000},
    ),
    ("last_order_days > 60", {"field": "last_order_days", "cmp": ">", "value": 60}),
    ('tag("VIP")', {"field": "tag", "value": "VIP"}),
    ('tier in ("VIP", "会员")', {"field": "tier", "cmp": "in", "value": ["VIP", "会员"]}),
    ('tier not in ("VIP")', {"field": "tier", "cmp": "not in", "value": ["VIP"]}),
    ('lifecycle = "decline"', {"field": "lifecycle", "cmp": "=", "value": "decline"}),
    (
        "has(wecom_external_userid)",
        {"field": "has_identity", "value": "wecom_external_userid"},
    ),
    (
        'event("coupon_used", last 30d) = 0',
        {"field": "event", "event_type": "coupon_used", "window": D30, "cmp": "=", "value": 0},
    ),
    (
        'event("view_product") >= 1',
        {"field": "event", "event_type": "view_product", "cmp": ">=", "value": 1},
    ),
    (
        'event("coupon_used") = 0',
        {"field": "event", "event_type": "coupon_used", "cmp": "=", "value": 0},
    ),
    (
        "orders(last 2w) >= 1",
        {"field": "orders", "window": {"last": 2, "unit": "w"}, "cmp": ">=", "value": 1},
    ),
    (
        "orders(last 12h) >= 1",
        {"field": "orders", "window": {"last": 12, "unit": "h"}, "cmp": ">=", "value": 1},
    ),
    (
        'consent("sms", "marketing")',
        {"field": "consent", "channel": "sms", "purpose": "marketing"},
    ),
    ('city = "上海"', {"field": "city", "cmp": "=", "value": "上海"}),
    ('gender = "female"', {"field": "gender", "cmp": "=", "value": "female"}),
    ("age >= 30", {"field": "age", "cmp": ">=", "value": 30}),
    (
        'attr("car_mileage") > 5000',
        {"field": "attr", "name": "car_mileage", "cmp": ">", "value": 5000},
    ),
    (
        'attr("car_age_years") >= 1',
        {"field": "attr", "name": "car_age_years", "cmp": ">=", "value": 1},
    ),
    ('attr("color") != "red"', {"field": "attr", "name": "color", "cmp": "!=", "value": "red"}),
    ("rfm_r <= 2", {"field": "rfm_r", "cmp": "<=", "value": 2}),
    ("rfm_f < 4.5", {"field": "rfm_f", "cmp": "<", "value": 4.5}),
    ("rfm_m in (4, 5)", {"field": "rfm_m", "cmp": "in", "value": [4, 5]}),
    ("rfm_score >= 12", {"field": "rfm_score", "cmp": ">=", "value": 12}),
    ('rfm_tier = "重要价值客户"', {"field": "rfm_tier", "cmp": "=", "value": "重要价值客户"}),
    ("clv > 2000.5", {"field": "clv", "cmp": ">", "value": 2000.5}),
    ("p_alive < 0.3", {"field": "p_alive", "cmp": "<", "value": 0.3}),
    ("fan_score >= 80", {"field": "fan_score", "cmp": ">=", "value": 80}),
    (
        'audience in ("seed", "influencer")',
        {"field": "audience", "cmp": "in", "value": ["seed", "influencer"]},
    ),
    ("value_asset > 0.5", {"field": "value_asset", "cmp": ">", "value": 0.5}),
    (
        "brand_asset between 0.2 and 0.8",
        {"field": "brand_asset", "cmp": "between", "value": [0.2, 0.8]},
    ),
    ("retention_asset != 0", {"field": "retention_asset", "cmp": "!=", "value": 0}),
    ("first_order_days > 365", {"field": "first_order_days", "cmp": ">", "value": 365}),
    ("last_active_days <= 7", {"field": "last_active_days", "cmp": "<=", "value": 7}),
    ("tenure_days >= 730", {"field": "tenure_days", "cmp": ">=", "value": 730}),
    ("referrals >= 3", {"field": "referrals", "cmp": ">=", "value": 3}),
    ("avg_order_value > 300", {"field": "avg_order_value", "cmp": ">", "value": 300}),
    ("spend > -1", {"field": "spend", "cmp": ">", "value": -1}),
    (
        'tier in ("VIP") and orders(last 30d) >= 2 and not tag("投诉中")',
        {
            "op": "and",
            "args": [
                {"field": "tier", "cmp": "in", "value": ["VIP"]},
                {"field": "orders", "window": D30, "cmp": ">=", "value": 2},
                {"op": "not", "arg": {"field": "tag", "value": "投诉中"}},
            ],
        },
    ),
    (
        'tag("A") or tag("B")',
        {"op": "or", "args": [{"field": "tag", "value": "A"}, {"field": "tag", "value": "B"}]},
    ),
]


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[t for t, _ in FORMS])
def test_each_form_parses_to_the_exact_json(text: str, expected: dict[str, Any]) -> None:
    rule = parse(text)
    assert to_json(rule) == expected
    assert from_json(expected) == rule


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[t for t, _ in FORMS])
def test_each_form_is_its_own_canonical_text(text: str, expected: dict[str, Any]) -> None:
    rule = parse(text)
    assert to_text(rule) == text
    assert parse(to_text(rule)) == rule
    assert from_json(to_json(rule)) == rule


def test_ast_nodes_for_a_combined_rule() -> None:
    rule = parse('tier in ("VIP") and orders(last 30d) >= 2 and not tag("投诉中")')
    assert rule == And(
        (
            Compare("tier", Cmp.IN, ("VIP",)),
            Compare("orders", Cmp.GE, 2, Window(30, "d")),
            Not(Tag("投诉中")),
        )
    )


def test_every_node_type_is_built() -> None:
    assert parse('attr("car_mileage") > 5000') == AttrCompare("car_mileage", Cmp.GT, 5000)
    assert parse('event("x", last 1w) between 1 and 3') == EventCount(
        "x", Cmp.BETWEEN, (1, 3), Window(1, "w")
    )
    assert parse('consent("sms", "marketing")') == Consent("sms", "marketing")
    assert parse("has(phone)") == HasIdentity("phone")
    assert parse('has("email")') == HasIdentity("email")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ('ORDERS(LAST 30D) >= 2 AND NOT TAG("x")', 'orders(last 30d) >= 2 and not tag("x")'),
        ("Tier IN ('VIP', 'SVIP')", 'tier in ("VIP", "SVIP")'),
        ("spend BETWEEN 1 AND 2", "spend between 1 and 2"),
        ("tier NOT IN ('a')", 'tier not in ("a")'),
        ("orders == 1", "orders = 1"),
        ("orders <> 1", "orders != 1"),
        ("  orders>=1 and tag('x')  ", 'orders >= 1 and tag("x")'),
        ("HAS(Phone)", "has(phone)"),
        ('tag("a\\"b\\\\c\\n\\u4e2d")', 'tag("a\\"b\\\\c\\n中")'),
        ("tag('it\\'s')", 'tag("it\'s")'),
        ("((orders >= 1))", "orders >= 1"),
        ("clv > 1.50", "clv > 1.5"),
        ("orders(last 30d)>=2\n  and\ttag('x')", 'orders(last 30d) >= 2 and tag("x")'),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    assert to_text(parse(text)) == canonical


def test_integer_and_decimal_literals_keep_their_type() -> None:
    assert type(parse("clv > 2").value) is int  # type: ignore[union-attr]
    assert type(parse("clv > 2.0").value) is float  # type: ignore[union-attr]
    assert to_text(parse("clv > 2.0")) == "clv > 2.0"


def test_injection_text_is_just_a_string_value() -> None:
    rule = parse('tag("x\' OR 1=1 --")')
    assert rule == Tag("x' OR 1=1 --")
    assert to_json(rule) == {"field": "tag", "value": "x' OR 1=1 --"}


# -- precedence and grouping -------------------------------------------------------------

A, B, C = Tag("a"), Tag("b"), Tag("c")


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('tag("a") or tag("b") and tag("c")', Or((A, And((B, C))))),
        ('tag("a") and tag("b") or tag("c")', Or((And((A, B)), C))),
        ('not tag("a") and tag("b")', And((Not(A), B))),
        ('not tag("a") or tag("b")', Or((Not(A), B))),
        ('not (tag("a") or tag("b"))', Not(Or((A, B)))),
        ('(tag("a") or tag("b")) and tag("c")', And((Or((A, B)), C))),
        ('tag("a") and tag("b") and tag("c")', And((A, B, C))),
        ('(tag("a") and tag("b")) and tag("c")', And((And((A, B)), C))),
        ('tag("a") or (tag("b") or tag("c"))', Or((A, Or((B, C))))),
        ('not not tag("a")', Not(Not(A))),
        ('NOT tag("a") AND NOT tag("b")', And((Not(A), Not(B)))),
        ('orders between 1 and 2 and tag("a")', And((Compare("orders", Cmp.BETWEEN, (1, 2)), A))),
    ],
)
def test_precedence_not_over_and_over_or(text: str, rule: Rule) -> None:
    assert parse(text) == rule
    assert parse(to_text(rule)) == rule


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (Or((A, And((B, C)))), 'tag("a") or tag("b") and tag("c")'),
        (And((Or((A, B)), C)), '(tag("a") or tag("b")) and tag("c")'),
        (And((And((A, B)), C)), '(tag("a") and tag("b")) and tag("c")'),
        (Or((Or((A, B)), C)), '(tag("a") or tag("b")) or tag("c")'),
        (Not(And((A, B))), 'not (tag("a") and tag("b"))'),
        (Not(Not(A)), 'not not tag("a")'),
    ],
)
def test_printer_uses_minimal_parentheses(rule: Rule, text: str) -> None:
    assert to_text(rule) == text


# -- Chinese description -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zh"),
    [
        ('orders(last 30d) >= 2 and not tag("投诉中")', "近30天下单≥2次 且 非标签「投诉中」"),
        ("orders >= 3", "累计下单≥3次"),
        ("spend between 100 and 500", "累计消费金额在100~500元之间"),
        ("spend(last 2w) > 1000", "近2周消费金额>1000元"),
        ("last_order_days > 60", "距最近一次下单>60天"),
        ('tier in ("VIP", "会员")', "会员等级属于「VIP」、「会员」"),
        ('tier not in ("VIP")', "会员等级不属于「VIP」"),
        ('lifecycle = "decline"', "生命周期阶段为「衰退期」"),
        ('gender != "male"', "性别不为「男」"),
        ("has(wecom_external_userid)", "已绑定企业微信外部联系人"),
        ('event("coupon_used", last 12h) = 0', "近12小时「使用优惠券」事件=0次"),
        ('event("view_product") >= 1', "累计「浏览商品」事件≥1次"),
        ('event("vr_tryon") >= 1', "累计「vr_tryon」事件≥1次"),  # no Chinese name: as sent
        ('consent("sms", "marketing")', "已授权「sms」渠道用于「marketing」"),
        ('attr("car_mileage") > 5000', "属性「car_mileage」>5000"),
        ("age >= 30", "年龄≥30岁"),
        ("p_alive < 0.3", "存活概率<0.3"),
        (
            '(tag("a") or tag("b")) and not (tag("c") and age < 18)',
            "（标签「a」 或 标签「b」） 且 非（标签「c」 且 年龄<18岁）",
        ),
    ],
)
def test_describe_zh(text: str, zh: str) -> None:
    assert describe_zh(parse(text)) == zh


# -- errors: exact positions -------------------------------------------------------------

ERRORS: list[tuple[str, int, str]] = [
    # malformed
    ("(orders >= 3", 0, "'(' is never closed"),
    ("orders >= 3)", 11, "unmatched ')'"),
    ("orders >= 3 and", 15, "expected a condition after 'and', found the end of the rule"),
    ('orders >= 3 or or tag("a")', 15, "expected a condition after 'or', found 'or'"),
    ("and orders > 1", 0, "expected a condition, found 'and'"),
    (
        "orders >=",
        9,
        "expected a value (a number or a quoted string) after '>=', found the end of the rule",
    ),
    (
        'orders >= and tag("a")',
        10,
        "expected a value (a number or a quoted string) after '>=', found 'and'",
    ),
    (
        "orders",
        6,
        "expected a comparison (=, !=, <, <=, >, >=, in, not in, between) after 'orders', "
        "found the end of the rule",
    ),
    ('orders >= 3 tag("x")', 12, "expected 'and', 'or' or the end of the rule, found 'tag'"),
    ('(orders >= 3 tag("x"))', 13, "expected ')', 'and' or 'or', found 'tag'"),
    ("spend between 1 2", 16, "expected 'and' between the two bounds, found '2'"),
    ("tier in ()", 9, "the list is empty"),
    ('tier in ("a"', 8, "'(' is never closed"),
    ('tier in "a"', 8, "expected '(' to start the list, found '\"a\"'"),
    ('consent("sms")', 13, "expected ',' between channel and purpose, found ')'"),
    ("", 0, "the rule is empty"),
    ('"abc', 0, "string is never closed"),
    ('tag("a\\q")', 6, "unknown escape '\\q' in string"),
    ('tag（"VIP"）', 3, "full-width character '（'; use '(' instead"),
    # unknown fields
    ("ordrs >= 3", 0, "unknown field 'ordrs'; did you mean 'orders'?"),
    ('tier in ("VIP") and ordrs >= 3', 20, "unknown field 'ordrs'; did you mean 'orders'?"),
    ("zzz > 1", 0, "unknown field 'zzz'"),
    ('城市 = "上海"', 0, "unknown field '城市'; did you mean 'city'?"),
    # wrong types and operators
    ('orders >= "abc"', 10, "'orders' expects a number, got \"abc\""),
    (
        "lifecycle = 5",
        12,
        f"'lifecycle' expects one of {LIFECYCLES}; got 5",
    ),
    (
        'lifecycle = "sleeping"',
        12,
        f"\"sleeping\" is not a valid 'lifecycle' value (one of {LIFECYCLES})",
    ),
    (
        'gender = "Female"',
        9,
        "\"Female\" is not a valid 'gender' value (one of male, female, unknown); "
        "did you mean 'female'?",
    ),
    (
        'audience in ("seed", "kol")',
        21,
        f"\"kol\" is not a valid 'audience' value (one of {AUDIENCES})",
    ),
    (
        "has(qq)",
        4,
        f"\"qq\" is not a valid 'has' value (one of {KINDS})",
    ),
    (
        "has(1)",
        4,
        f"expected an identity kind ({KINDS}), found '1'",
    ),
    ("city = 5", 7, "'city' expects a string, got 5"),
    ('tier > "VIP"', 5, "operator '>' cannot be used with 'tier' (use '=', '!=', 'in', 'not in')"),
    ("orders >= 2.5", 10, "'orders' expects a whole number, got 2.5"),
    ("spend between 500 and 100", 14, "lower bound 500 is greater than upper bound 100"),
    ('attr("x") in (1, "a")', 17, "values in one list must all be numbers or all be strings"),
    ("tag(VIP)", 4, "expected the tag name as a quoted string, found 'VIP'"),
    ('tag("")', 4, "tag name must not be empty"),
    ('tag("a") = 1', 9, "expected 'and', 'or' or the end of the rule, found '='"),
    (
        "spend > 99999999999999999999",
        8,
        "number 99999999999999999999 is out of range (at most 1e+15 in size)",
    ),
    # windows
    ('tier(last 30d) = "VIP"', 4, "'tier' does not take a time window"),
    ("age(last 30d) > 1", 3, "'age' does not take a time window"),
    ("orders(last 0d) > 1", 12, "window length must be positive, got 0"),
    ("orders(last -5d) > 1", 12, "window length must be positive, got -5"),
    ("orders(last 3651d) > 1", 12, "window is longer than 3650 days"),
    ("orders(last 522w) > 1", 12, "window is longer than 3650 days"),
    ("orders(last 87601h) > 1", 12, "window is longer than 3650 days"),
    ("orders(last 1.5d) > 1", 12, "window length must be a whole number, got 1.5"),
    ("orders(last 3m) > 1", 13, 'unknown window unit "m"; use h, d or w (a month is 30d)'),
    ("orders(last 30) > 1", 14, "the window needs a unit: h, d or w (e.g. last 30d)"),
    ("orders(30d) > 1", 7, "expected 'last' to start the window (e.g. last 30d), found '30d'"),
    ('event("x", last 0h) = 0', 16, "window length must be positive, got 0"),
    # injection
    ('tag("VIP") ; DROP TABLE customers', 11, "unexpected character ';'"),
    ("orders >= 1; DELETE FROM customers", 11, "unexpected character ';'"),
    ("orders >= 1 -- comment", 12, "unexpected character '-'"),
]


@pytest.mark.parametrize(("text", "position", "message"), ERRORS, ids=[t for t, _, _ in ERRORS])
def test_syntax_errors_have_exact_positions(text: str, position: int, message: str) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse(text)
    assert info.value.position == position
    assert info.value.message == message
    assert info.value.text == text
    assert info.value.message_zh.startswith(f"第 {position + 1} 个字符处：")


def test_chinese_message_suggests_the_closest_field() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse('tier in ("VIP") and ordrs >= 3')
    assert info.value.message_zh == "第 21 个字符处：未知字段 'ordrs'，您是不是想输入 'orders'？"


def test_chinese_messages_for_wrong_types() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse('lifecycle = "sleeping"')
    assert info.value.message_zh == (
        "第 13 个字符处：\"sleeping\" 不是有效的 'lifecycle' 取值，可选：获取期（acquisition）、"
        "成长期（growth）、成熟期（maturity）、衰退期（decline）、流失期（churned）、"
        "回流期（reactivated）"
    )
    with pytest.raises(RuleSyntaxError) as info:
        parse('orders >= "abc"')
    assert info.value.message_zh == "第 11 个字符处：字段 'orders' 需要数字，而不是 \"abc\""


def test_the_leftmost_error_is_reported() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse("ordrs >= 1 ; drop")
    assert info.value.position == 0


def test_caret_points_at_the_position() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse('tag("VIP") ; DROP TABLE customers')
    assert info.value.caret() == 'tag("VIP") ; DROP TABLE customers\n           ^'


def test_caret_counts_wide_characters_twice_and_shows_the_right_line() -> None:
    err = RuleSyntaxError("x", 14, 'tag("会员")\nand ordrs > 1')
    assert err.caret() == "and ordrs > 1\n    ^"
    err = RuleSyntaxError("x", 10, 'tag("会员") ;')
    assert err.caret() == 'tag("会员") ;\n            ^'


def test_caret_at_the_end_of_the_text() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse("orders >=")
    assert info.value.caret() == "orders >=\n         ^"


def test_caret_cuts_long_lines() -> None:
    text = 'tag("a") and ' * 20 + "ordrs > 1"
    with pytest.raises(RuleSyntaxError) as info:
        parse(text)
    assert info.value.position == 260
    assert info.value.caret() == "…" + text[220:] + "\n" + " " * 41 + "^"


def test_syntax_error_is_a_422_siyu_error() -> None:
    with pytest.raises(SiyuError) as info:
        parse("ordrs >= 3")
    err = info.value
    assert err.status_code == 422
    assert err.to_dict() == {
        "error": "rule_syntax_error",
        "message": "unknown field 'ordrs'; did you mean 'orders'?",
        "details": {
            "position": 0,
            "message_zh": "第 1 个字符处：未知字段 'ordrs'，您是不是想输入 'orders'？",
        },
    }


# -- limits ------------------------------------------------------------------------------


def test_text_length_limit() -> None:
    ok = "orders >= 1" + " " * (4000 - 11)
    assert parse(ok) == Compare("orders", Cmp.GE, 1)
    with pytest.raises(RuleSyntaxError) as info:
        parse(ok + " ")
    assert info.value.position == 4000
    assert info.value.message == "rule is 4001 characters long; the limit is 4000"


def test_nesting_limit_with_not() -> None:
    assert parse("not " * 20 + 'tag("a")') is not None
    with pytest.raises(RuleSyntaxError) as info:
        parse("not " * 21 + 'tag("a")')
    assert info.value.position == 80
    assert info.value.message == "the rule is nested more than 20 levels deep"


def test_nesting_limit_with_parentheses() -> None:
    assert parse("(" * 20 + 'tag("a")' + ")" * 20) == Tag("a")
    with pytest.raises(RuleSyntaxError) as info:
        parse("(" * 21 + 'tag("a")' + ")" * 21)
    assert info.value.position == 20


def _alternating(levels: int) -> str:
    # a or (b and (c or (d and ...))): each level is one and/or node in the tree but only
    # every level is bracketed, so this tests the tree depth, not the bracket depth.
    text = 'tag("z")'
    for i in range(levels):
        text = f'tag("{i}") {"or" if i % 2 == 0 else "and"} ({text})'
    return text


def test_nesting_limit_on_the_tree() -> None:
    assert parse(_alternating(20)) is not None
    with pytest.raises(RuleSyntaxError) as info:
        parse(_alternating(21))
    assert info.value.message == "the rule is nested more than 20 levels deep"


def test_in_list_limit() -> None:
    items = ", ".join(f'"t{i}"' for i in range(500))
    rule = parse(f"tier in ({items})")
    assert isinstance(rule, Compare)
    assert len(rule.value) == 500  # type: ignore[arg-type]
    text = f'tier in ({items}, "t500")'
    with pytest.raises(RuleSyntaxError) as info:
        parse(text)
    assert info.value.position == text.index('"t500"')
    assert info.value.message == "a list may hold at most 500 values"


# -- JSON --------------------------------------------------------------------------------

JSON_ERRORS: list[tuple[Any, str, str]] = [
    ([], "$", "expected an object"),
    ({}, "$", "expected an object with 'op' or 'field'"),
    ({"op": "xor", "args": []}, "$.op", "unknown op 'xor'; expected 'and', 'or' or 'not'"),
    (
        {"op": "and", "args": [{"field": "tag", "value": "a"}]},
        "$.args",
        "'and' needs a list of at least two rules",
    ),
    ({"op": "not"}, "$", "missing key 'arg'"),
    ({"op": "not", "arg": {"field": "tag", "value": "a"}, "x": 1}, "$.x", "unknown key 'x'"),
    (
        {"field": "ordrs", "cmp": ">=", "value": 1},
        "$.field",
        "unknown field 'ordrs'; did you mean 'orders'?",
    ),
    ({"field": "orders", "cmp": ">="}, "$", "missing key 'value'"),
    (
        {"field": "orders", "cmp": "~", "value": 1},
        "$.cmp",
        f'unknown operator "~"; expected one of {CMPS}',
    ),
    ({"field": "orders", "cmp": 1, "value": 1}, "$.cmp", "operator must be a string, got 1"),
    (
        {"field": "orders", "cmp": ">=", "value": True},
        "$.value",
        "'orders' expects a number, got True",
    ),
    (
        {"field": "orders", "cmp": ">=", "value": 2.0},
        "$.value",
        "'orders' expects a whole number, got 2.0",
    ),
    (
        {"field": "orders", "cmp": ">=", "value": [1]},
        "$.value",
        "'>=' takes a single value, not a list",
    ),
    ({"field": "orders", "cmp": "in", "value": 1}, "$.value", "'in' needs a list of values"),
    (
        {"field": "spend", "cmp": "between", "value": [1]},
        "$.value",
        "'between' needs exactly two values, the lower and the upper bound",
    ),
    (
        {"field": "tier", "cmp": "in", "value": ["a", 5]},
        "$.value[1]",
        "'tier' expects a string, got 5",
    ),
    (
        {"field": "tier", "cmp": "in", "value": ["a"] * 501},
        "$.value[500]",
        "a list may hold at most 500 values",
    ),
    (
        {"field": "lifecycle", "cmp": "=", "value": "sleeping"},
        "$.value",
        f"\"sleeping\" is not a valid 'lifecycle' value (one of {LIFECYCLES})",
    ),
    (
        {"field": "tier", "window": D30, "cmp": "=", "value": "VIP"},
        "$.window",
        "'tier' does not take a time window",
    ),
    (
        {"field": "orders", "window": {"last": 0, "unit": "d"}, "cmp": ">=", "value": 1},
        "$.window.last",
        "window length must be positive, got 0",
    ),
    (
        {"field": "orders", "window": {"last": 1, "unit": "m"}, "cmp": ">=", "value": 1},
        "$.window.unit",
        'unknown window unit "m"; use h, d or w (a month is 30d)',
    ),
    (
        {"field": "orders", "window": {"last": "30", "unit": "d"}, "cmp": ">=", "value": 1},
        "$.window.last",
        'window length must be a whole number, got "30"',
    ),
    (
        {"field": "orders", "window": 30, "cmp": ">=", "value": 1},
        "$.window",
        'window must be an object {"last": <whole number>, "unit": "h" | "d" | "w"}',
    ),
    (
        {"field": "spend", "cmp": ">", "value": float("inf")},
        "$.value",
        "number inf is out of range (at most 1e+15 in size)",
    ),
    (
        {"field": "spend", "cmp": ">", "value": None},
        "$.value",
        "'spend' expects a number, got None",
    ),
    ({"field": "tag", "value": 5}, "$.value", "tag name must be a string, got 5"),
    ({"field": "tag", "value": "x" * 201}, "$.value", "tag name is longer than 200 characters"),
    (
        {"field": "has_identity", "value": "qq"},
        "$.value",
        f"\"qq\" is not a valid 'has' value (one of {KINDS})",
    ),
    ({"field": "consent", "channel": "sms"}, "$", "missing key 'purpose'"),
    (
        {"field": "event", "event_type": "", "cmp": "=", "value": 0},
        "$.event_type",
        "event type must not be empty",
    ),
    (
        {"field": "attr", "name": "x", "cmp": "between", "value": [5, "a"]},
        "$.value[1]",
        "values in one list must all be numbers or all be strings",
    ),
    (
        {
            "op": "and",
            "args": [
                {"field": "tag", "value": "a"},
                {"op": "not", "arg": {"field": "tier", "cmp": "in", "value": ["a", ""]}},
            ],
        },
        "$.args[1].arg.value[1]",
        "a string value must not be empty",
    ),
]


@pytest.mark.parametrize(
    ("data", "path", "message"), JSON_ERRORS, ids=[p + ":" + m[:30] for _, p, m in JSON_ERRORS]
)
def test_json_errors_have_exact_paths(data: Any, path: str, message: str) -> None:
    with pytest.raises(RuleJsonError) as info:
        from_json(data)
    assert info.value.path == path
    assert info.value.message == message
    assert info.value.status_code == 422


def test_json_error_in_chinese() -> None:
    with pytest.raises(RuleJsonError) as info:
        from_json(
            {
                "op": "or",
                "args": [
                    {"field": "tag", "value": "a"},
                    {"field": "ordrs", "cmp": "=", "value": 1},
                ],
            }
        )
    assert info.value.message_zh == "$.args[1].field: 未知字段 'ordrs'，您是不是想输入 'orders'？"


def test_json_depth_limit() -> None:
    data: dict[str, Any] = {"field": "tag", "value": "a"}
    for _ in range(20):
        data = {"op": "not", "arg": data}
    assert from_json(data) == parse("not " * 20 + 'tag("a")')
    with pytest.raises(RuleJsonError) as info:
        from_json({"op": "not", "arg": data})
    assert info.value.path == "$" + ".arg" * 20
    assert info.value.message == "the rule is nested more than 20 levels deep"


def test_json_rule_too_long_as_text() -> None:
    args = [{"field": "tag", "value": "x" * 200} for _ in range(20)]
    with pytest.raises(RuleJsonError) as info:
        from_json({"op": "or", "args": args})
    assert info.value.path == "$"
    assert info.value.message == "the rule's text form is longer than 4000 characters"


def test_json_null_window_means_all_time() -> None:
    data = {"field": "orders", "window": None, "cmp": ">=", "value": 1}
    assert from_json(data) == Compare("orders", Cmp.GE, 1)


def test_validate_checks_an_ast_built_in_code() -> None:
    ok = And((Compare("orders", Cmp.GE, 2, Window(30, "d")), Tag("VIP")))
    assert validate(ok) == ok
    with pytest.raises(RuleJsonError) as info:
        validate(And((Tag("VIP"), Compare("lifecycle", Cmp.EQ, "sleeping"))))
    assert info.value.path == "$.args[1].value"


def test_window_lengths() -> None:
    assert Window(2, "w").hours == 336
    assert Window(12, "h").to_timedelta() == timedelta(hours=12)
    assert Window(30, "d").to_timedelta() == timedelta(days=30)


# -- registry ------------------------------------------------------------------------------


def test_registry_shape() -> None:
    assert FIELDS["orders"].window and FIELDS["orders"].integer
    assert FIELDS["orders"].operators == frozenset(Cmp)
    assert not FIELDS["tier"].window
    assert FIELDS["tier"].operators == {Cmp.EQ, Cmp.NE, Cmp.IN, Cmp.NOT_IN}
    assert FIELDS["lifecycle"].enum_values == {
        "acquisition", "growth", "maturity", "decline", "churned", "reactivated",
    }  # fmt: skip
    assert FIELDS["audience"].enum_values == {
        "mainstream", "pioneer", "seed", "potential", "influencer", "follower", "ideal",
    }  # fmt: skip
    assert FIELDS["gender"].enum_values == {"male", "female", "unknown"}
    assert FIELDS["has_identity"].text_name == "has"
    assert FIELDS["has_identity"].enum_values == {
        "phone", "email", "wecom_userid", "wecom_external_userid", "wechat_openid",
        "wechat_unionid", "app_user_id", "external_id", "voiceprint_id",
    }  # fmt: skip
    windowed = sorted(name for name, spec in FIELDS.items() if spec.window)
    assert windowed == ["avg_order_value", "event", "intent", "orders", "orders_for_others",
                        "referrals", "spend", "voc_low"]


# -- properties ----------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=12)
_MAX: dict[WindowUnit, int] = {"h": 87600, "d": 3650, "w": 521}


def _windows_in(unit: WindowUnit) -> st.SearchStrategy[Window]:
    return st.integers(1, _MAX[unit]).map(lambda n: Window(n, unit))


_windows = st.one_of(*(_windows_in(u) for u in _MAX))
_ints = st.integers(-(10**15), 10**15)
_floats = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)


def _scalars(spec_name: str) -> st.SearchStrategy[Any]:
    spec = FIELDS[spec_name]
    if spec.value_type is ValueType.ENUM:
        return st.sampled_from(sorted(spec.enum_values))
    if spec.value_type is ValueType.STRING:
        return _text
    if spec.integer:
        return _ints
    if spec.value_type is ValueType.NUMBER:
        return st.one_of(_ints, _floats)
    return st.one_of(_ints, _floats, _text)


@st.composite
def _comparison(draw: st.DrawFn, spec_name: str) -> tuple[Cmp, Any]:
    spec = FIELDS[spec_name]
    cmp = draw(st.sampled_from(sorted(spec.operators)))
    if spec.value_type is ValueType.NUMBER_OR_STRING:
        base = draw(st.sampled_from(["num", "str"]))
        values = st.one_of(_ints, _floats) if base == "num" else _text
    else:
        values = _scalars(spec_name)
    if cmp is Cmp.BETWEEN:
        low, high = sorted([draw(values), draw(values)])
        return cmp, (low, high)
    if cmp in (Cmp.IN, Cmp.NOT_IN):
        return cmp, tuple(draw(st.lists(values, min_size=1, max_size=4)))
    return cmp, draw(values)


@st.composite
def _conditions(draw: st.DrawFn) -> Rule:
    spec = FIELDS[draw(st.sampled_from(sorted(FIELDS)))]
    window = draw(st.none() | _windows) if spec.window else None
    if spec.kind is FieldKind.TAG:
        return Tag(draw(_text))
    if spec.kind is FieldKind.IDENTITY:
        return HasIdentity(draw(st.sampled_from(sorted(spec.enum_values))))
    if spec.kind is FieldKind.CONSENT:
        return Consent(draw(_text), draw(_text))
    if spec.kind is FieldKind.SCENARIO:
        return InScenario(draw(_text))
    if spec.kind is FieldKind.INTENT:
        return Intent(draw(_text), window)
    if spec.kind is FieldKind.VOC_LOW:
        return VocLow(draw(_text), window)
    cmp, value = draw(_comparison(spec.name))
    if spec.kind is FieldKind.EVENT:
        return EventCount(draw(_text), cmp, value, window)
    if spec.kind is FieldKind.ATTR:
        return AttrCompare(draw(_text), cmp, value)
    if spec.kind is FieldKind.ATTR_DAYS:
        return AttrDays(draw(_text), cmp, value)
    return Compare(spec.name, cmp, value, window)


_rules = st.recursive(
    _conditions(),
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=4).map(lambda xs: And(tuple(xs))),
        st.lists(children, min_size=2, max_size=4).map(lambda xs: Or(tuple(xs))),
        children.map(Not),
    ),
    max_leaves=12,
)


def _depth(rule: Rule) -> int:
    if isinstance(rule, And | Or):
        return 1 + max(_depth(a) for a in rule.args)
    if isinstance(rule, Not):
        return 1 + _depth(rule.arg)
    return 0


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_rules)
def test_round_trips_for_generated_rules(rule: Rule) -> None:
    assume(_depth(rule) <= 20 and len(to_text(rule)) <= 4000)
    assert parse(to_text(rule)) == rule
    assert from_json(to_json(rule)) == rule
    assert to_text(parse(to_text(rule))) == to_text(rule)
    assert describe_zh(rule)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        rule = parse(text)
    except RuleSyntaxError as err:
        assert 0 <= err.position <= len(text)
        assert err.caret()
    else:
        assert parse(to_text(rule)) == rule
