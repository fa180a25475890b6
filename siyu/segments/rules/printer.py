"""Canonical rule text (`to_text`) and the Chinese description for the console (`describe_zh`)."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from siyu.events.labels import event_type_zh
from siyu.segments.rules.nodes import (
    And,
    AttrDays,
    Cmp,
    Compare,
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
from siyu.segments.rules.registry import FIELDS, FieldSpec, ValueType

INTENT_LABELS_ZH: dict[str, str] = {}
"""Intent codes to their Chinese titles, for descriptions; the knowledge base fills it when
it loads (siyu.kb), so the rule package itself reads no database."""


def intent_label_zh(code: str) -> str:
    return INTENT_LABELS_ZH.get(code, code)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def literal(value: Scalar) -> str:
    """A number or string as rule text: strings double-quoted with backslash escapes, floats
    always with a decimal point and never in exponent form (the grammar has neither)."""
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in _ESCAPES:
                out.append(_ESCAPES[ch])
            elif unicodedata.category(ch) == "Cc":
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        return text if "." in text else text + ".0"
    return str(value)


def _needs_parens(child: Rule, parent: type[And] | type[Or] | type[Not]) -> bool:
    # An And directly under an Or binds tighter and needs none; every other and/or child
    # is bracketed so the printed text parses back to exactly the same tree.
    if isinstance(child, Or):
        return True
    return isinstance(child, And) and parent is not Or


def to_text(rule: Rule) -> str:
    """Canonical text for ``rule``: lower-case keywords, double-quoted strings, minimal
    parentheses; ``parse(to_text(rule)) == rule`` for every valid rule."""
    if isinstance(rule, And | Or):
        joiner = " and " if isinstance(rule, And) else " or "
        return joiner.join(_child_text(arg, type(rule)) for arg in rule.args)
    if isinstance(rule, Not):
        return "not " + _child_text(rule.arg, Not)
    if isinstance(rule, Compare):
        return f"{rule.field}{_window_call(rule.window)} {_comparison_text(rule.cmp, rule.value)}"
    if isinstance(rule, Tag):
        return f"tag({literal(rule.name)})"
    if isinstance(rule, HasIdentity):
        kind = rule.kind if rule.kind.isidentifier() else literal(rule.kind)
        return f"has({kind})"
    if isinstance(rule, Consent):
        return f"consent({literal(rule.channel)}, {literal(rule.purpose)})"
    if isinstance(rule, InScenario):
        return f"scenario({literal(rule.name)})"
    if isinstance(rule, Intent):
        window = f", last {_window_text(rule.window)}" if rule.window else ""
        return f"intent({literal(rule.intent)}{window})"
    if isinstance(rule, VocLow):
        window = f", last {_window_text(rule.window)}" if rule.window else ""
        return f"voc_low({literal(rule.factor)}{window})"
    if isinstance(rule, EventCount):
        window = f", last {_window_text(rule.window)}" if rule.window else ""
        return f"event({literal(rule.event_type)}{window}) {_comparison_text(rule.cmp, rule.value)}"
    if isinstance(rule, AttrDays):
        return f"attr_days({literal(rule.name)}) {_comparison_text(rule.cmp, rule.value)}"
    return f"attr({literal(rule.name)}) {_comparison_text(rule.cmp, rule.value)}"


def _child_text(child: Rule, parent: type[And] | type[Or] | type[Not]) -> str:
    text = to_text(child)
    return f"({text})" if _needs_parens(child, parent) else text


def _window_text(window: Window) -> str:
    return f"{window.amount}{window.unit}"


def _window_call(window: Window | None) -> str:
    return f"(last {_window_text(window)})" if window else ""


def _items(value: Value) -> tuple[Scalar, ...]:
    return value if isinstance(value, tuple) else (value,)


def _comparison_text(cmp: Cmp, value: Value) -> str:
    items = _items(value)
    if cmp is Cmp.BETWEEN:
        return f"between {literal(items[0])} and {literal(items[1])}"
    if cmp in (Cmp.IN, Cmp.NOT_IN):
        return f"{cmp.value} ({', '.join(literal(v) for v in items)})"
    return f"{cmp.value} {literal(items[0])}"


# -- Chinese description -----------------------------------------------------------------

_UNIT_ZH = {"h": "小时", "d": "天", "w": "周"}
_SYMBOL_ZH = {Cmp.EQ: "=", Cmp.NE: "≠", Cmp.LT: "<", Cmp.LE: "≤", Cmp.GT: ">", Cmp.GE: "≥"}


def describe_zh(rule: Rule) -> str:
    """A readable Chinese description, e.g. ``近30天下单≥2次 且 非标签「投诉中」``."""
    if isinstance(rule, And | Or):
        joiner = " 且 " if isinstance(rule, And) else " 或 "
        return joiner.join(_child_zh(arg, type(rule)) for arg in rule.args)
    if isinstance(rule, Not):
        return "非" + _child_zh(rule.arg, Not)
    if isinstance(rule, Compare):
        spec = FIELDS[rule.field]
        label = spec.label_zh
        if spec.window:
            label = _window_zh(rule.window) + label
        return label + _comparison_zh(spec, rule.cmp, rule.value)
    if isinstance(rule, Tag):
        return f"标签「{rule.name}」"
    if isinstance(rule, HasIdentity):
        return "已绑定" + FIELDS["has_identity"].enum_label_zh(rule.kind)
    if isinstance(rule, Consent):
        return f"已授权「{rule.channel}」渠道用于「{rule.purpose}」"
    if isinstance(rule, InScenario):
        return f"处于场景「{rule.name}」"
    if isinstance(rule, Intent):
        return f"{_window_zh(rule.window)}咨询意图「{intent_label_zh(rule.intent)}」"
    if isinstance(rule, VocLow):
        return f"{_window_zh(rule.window)}对「{rule.factor}」体验不满"
    if isinstance(rule, EventCount):
        label = f"{_window_zh(rule.window)}「{event_type_zh(rule.event_type)}」事件"
        return label + _comparison_zh(FIELDS["event"], rule.cmp, rule.value)
    if isinstance(rule, AttrDays):
        return f"距属性「{rule.name}」日期" + _comparison_zh(
            FIELDS["attr_days"], rule.cmp, rule.value
        )
    return f"属性「{rule.name}」" + _comparison_zh(FIELDS["attr"], rule.cmp, rule.value)


def _child_zh(child: Rule, parent: type[And] | type[Or] | type[Not]) -> str:
    text = describe_zh(child)
    return f"（{text}）" if _needs_parens(child, parent) else text


def _window_zh(window: Window | None) -> str:
    return f"近{window.amount}{_UNIT_ZH[window.unit]}" if window else "累计"


def _value_zh(spec: FieldSpec, value: Scalar) -> str:
    if isinstance(value, str):
        shown = spec.enum_label_zh(value) if spec.value_type is ValueType.ENUM else value
        return f"「{shown}」"
    return literal(value) + spec.unit_zh


def _comparison_zh(spec: FieldSpec, cmp: Cmp, value: Value) -> str:
    items = _items(value)
    if cmp is Cmp.BETWEEN:
        low = literal(items[0]) if not isinstance(items[0], str) else f"「{items[0]}」"
        return f"在{low}~{_value_zh(spec, items[1])}之间"
    if cmp in (Cmp.IN, Cmp.NOT_IN):
        verb = "属于" if cmp is Cmp.IN else "不属于"
        return verb + "、".join(_value_zh(spec, v) for v in items)
    shown = _value_zh(spec, items[0])
    if isinstance(items[0], str) and cmp in (Cmp.EQ, Cmp.NE):
        return ("为" if cmp is Cmp.EQ else "不为") + shown
    return _SYMBOL_ZH[cmp] + shown
