"""The segment rule language (人群圈选规则): text syntax, AST, JSON form, validation.

Operators write rules as text; the database stores them as JSON; the two round-trip::

    rule = parse('tier in ("VIP") and orders(last 30d) >= 2 and not tag("投诉中")')
    to_json(rule)    # stored form, below
    to_text(rule)    # canonical text; parse(to_text(r)) == r
    describe_zh(rule)  # '会员等级属于「VIP」 且 近30天下单≥2次 且 非标签「投诉中」'

Text syntax (keywords and field names case-insensitive; precedence ``not`` > ``and`` > ``or``)::

    orders >= 3                      spend between 100 and 500        (inclusive)
    orders(last 30d) >= 2            spend(last 2w) > 1000            (units: h, d, w)
    tier in ("VIP", "会员")          tier not in ("VIP")              lifecycle = "decline"
    tag("VIP")                       has(wecom_external_userid)       consent("sms", "marketing")
    event("coupon_used", last 30d) = 0                                event("view_product") >= 1
    attr("car_mileage") > 5000       attr("color") = "red"            age >= 30
    attr_days("car_purchase_date") > 365   (whole days since a "YYYY-MM-DD" string attribute)
    journey = "售后"                 scenario("食用周期结束")          days_until_repurchase <= 3
    intent("退货", last 7d)          orders_for_others(last 30d) >= 1  (siyu.journeys)
    voc_low("物流", last 30d)                                           (siyu.voc)
    not (a or b) and c

Operators ``=  !=  <  <=  >  >=  in (...)  not in (...)  between A and B`` (``==`` and
``<>`` are read as ``=`` and ``!=``). Strings in double or single quotes with ``\\\\ \\" \\'
\\n \\t \\r \\uXXXX`` escapes; numbers are integers or decimals (``-`` allowed). Which field
takes which operators, values and windows is in `registry.FIELDS`.

JSON form (stable; keys exactly as listed, no others accepted)::

    {"op": "and", "args": [<rule>, <rule>, ...]}        two or more args; "or" likewise
    {"op": "not", "arg": <rule>}
    {"field": "orders", "cmp": ">=", "value": 3}                        all time
    {"field": "orders", "window": {"last": 30, "unit": "d"}, "cmp": ">=", "value": 2}
    {"field": "spend", "cmp": "between", "value": [100, 500]}           [low, high]
    {"field": "tier", "cmp": "in", "value": ["VIP", "会员"]}           also "not in"
    {"field": "tag", "value": "VIP"}
    {"field": "has_identity", "value": "wecom_external_userid"}
    {"field": "consent", "channel": "sms", "purpose": "marketing"}
    {"field": "event", "event_type": "coupon_used", "window": {"last": 30, "unit": "d"},
     "cmp": "=", "value": 0}                                            window optional
    {"field": "attr", "name": "car_mileage", "cmp": ">", "value": 5000}
    {"field": "attr_days", "name": "car_purchase_date", "cmp": ">", "value": 365}
    {"field": "scenario", "value": "食用周期结束"}
    {"field": "intent", "value": "return_request", "window": {"last": 7, "unit": "d"}}
    {"field": "voc_low", "value": "物流", "window": {"last": 30, "unit": "d"}}

``cmp`` is one of ``= != < <= > >= in "not in" between``. ``window.unit`` is ``h``, ``d``
or ``w``; a missing window means all time. Integer literals stay JSON integers, decimals
JSON floats. Values are data, never SQL: the compiler must bind them as parameters.

Limits: text ≤ 4000 characters, and/or/not nesting ≤ 20, lists ≤ 500 values, windows
1 hour to 3650 days, strings ≤ 200 characters, numbers within ±10^15.

Errors: `RuleSyntaxError` (text; 0-based ``position``, ``message_zh``, ``caret()``) and
`RuleJsonError` (JSON; ``path`` like ``$.args[1].value[0]``), both `RuleError`, HTTP 422.
"""

from siyu.segments.rules.errors import RuleError, RuleJsonError, RuleSyntaxError
from siyu.segments.rules.jsonform import from_json, to_json, validate
from siyu.segments.rules.nodes import (
    And,
    AttrCompare,
    AttrDays,
    Cmp,
    Compare,
    Condition,
    Consent,
    EventCount,
    HasIdentity,
    InScenario,
    Intent,
    Not,
    Or,
    Rule,
    Scalar,
    Tag,
    Value,
    VocLow,
    Window,
)
from siyu.segments.rules.parser import parse
from siyu.segments.rules.printer import describe_zh, to_text
from siyu.segments.rules.registry import FIELDS, TEXT_FIELDS, FieldKind, FieldSpec, ValueType

__all__ = [
    "FIELDS",
    "TEXT_FIELDS",
    "And",
    "AttrCompare",
    "AttrDays",
    "Cmp",
    "Compare",
    "Condition",
    "Consent",
    "EventCount",
    "FieldKind",
    "FieldSpec",
    "HasIdentity",
    "InScenario",
    "Intent",
    "Not",
    "Or",
    "Rule",
    "RuleError",
    "RuleJsonError",
    "RuleSyntaxError",
    "Scalar",
    "Tag",
    "Value",
    "ValueType",
    "VocLow",
    "Window",
    "describe_zh",
    "from_json",
    "parse",
    "to_json",
    "to_text",
    "validate",
]
