"""The stored (JSON) form of a rule: `to_json`, and `from_json`, which validates."""

from __future__ import annotations

from typing import Any, NoReturn, cast

from siyu.segments.rules.checks import (
    Part,
    Problem,
    check_comparison,
    check_enum,
    check_text_arg,
    check_window,
    did_you_mean,
)
from siyu.segments.rules.errors import RuleJsonError
from siyu.segments.rules.nodes import (
    And,
    AttrCompare,
    AttrDays,
    Compare,
    Consent,
    EventCount,
    HasIdentity,
    InScenario,
    Intent,
    Not,
    Or,
    Rule,
    Tag,
    Value,
    VocLow,
    Window,
    WindowUnit,
)
from siyu.segments.rules.printer import to_text
from siyu.segments.rules.registry import (
    FIELDS,
    MAX_DEPTH,
    MAX_TEXT_LENGTH,
    FieldKind,
    FieldSpec,
)


def to_json(rule: Rule) -> dict[str, Any]:
    """The JSON-ready dict for ``rule`` (see the package docstring for the format)."""
    if isinstance(rule, And | Or):
        return {
            "op": "and" if isinstance(rule, And) else "or",
            "args": [to_json(a) for a in rule.args],
        }
    if isinstance(rule, Not):
        return {"op": "not", "arg": to_json(rule.arg)}
    if isinstance(rule, Tag):
        return {"field": "tag", "value": rule.name}
    if isinstance(rule, HasIdentity):
        return {"field": "has_identity", "value": rule.kind}
    if isinstance(rule, Consent):
        return {"field": "consent", "channel": rule.channel, "purpose": rule.purpose}
    if isinstance(rule, InScenario):
        return {"field": "scenario", "value": rule.name}
    if isinstance(rule, VocLow):
        low: dict[str, Any] = {"field": "voc_low", "value": rule.factor}
        if rule.window is not None:
            low["window"] = {"last": rule.window.amount, "unit": rule.window.unit}
        return low
    if isinstance(rule, Intent):
        found: dict[str, Any] = {"field": "intent", "value": rule.intent}
        if rule.window is not None:
            found["window"] = {"last": rule.window.amount, "unit": rule.window.unit}
        return found
    out: dict[str, Any]
    if isinstance(rule, Compare):
        out = {"field": rule.field}
    elif isinstance(rule, EventCount):
        out = {"field": "event", "event_type": rule.event_type}
    elif isinstance(rule, AttrDays):
        out = {"field": "attr_days", "name": rule.name}
    else:
        out = {"field": "attr", "name": rule.name}
    window = getattr(rule, "window", None)
    if window is not None:
        out["window"] = {"last": window.amount, "unit": window.unit}
    out["cmp"] = rule.cmp.value
    out["value"] = _json_value(rule.value)
    return out


def _json_value(value: Value) -> Any:
    return list(value) if isinstance(value, tuple) else value


def from_json(data: Any) -> Rule:
    """Read and validate a stored rule; raises `RuleJsonError` with a path such as
    ``$.args[1].value[0]``. ``from_json(to_json(rule)) == rule`` for every valid rule."""
    rule = _read(data, "$", 1)
    if len(to_text(rule)) > MAX_TEXT_LENGTH:
        _fail(
            "$",
            f"the rule's text form is longer than {MAX_TEXT_LENGTH} characters",
            f"规则的文本形式超过 {MAX_TEXT_LENGTH} 个字符",
        )
    return rule


def validate(rule: Rule) -> Rule:
    """Check an AST built in code against the registry and limits; returns it unchanged
    (raises `RuleJsonError` locating the problem in its JSON form)."""
    return from_json(to_json(rule))


_CONDITION_KEYS: dict[FieldKind, tuple[frozenset[str], frozenset[str]]] = {
    # kind: (required keys, optional keys)
    FieldKind.SCALAR: (frozenset({"field", "cmp", "value"}), frozenset({"window"})),
    FieldKind.TAG: (frozenset({"field", "value"}), frozenset()),
    FieldKind.IDENTITY: (frozenset({"field", "value"}), frozenset()),
    FieldKind.CONSENT: (frozenset({"field", "channel", "purpose"}), frozenset()),
    FieldKind.EVENT: (frozenset({"field", "event_type", "cmp", "value"}), frozenset({"window"})),
    FieldKind.ATTR: (frozenset({"field", "name", "cmp", "value"}), frozenset()),
    FieldKind.ATTR_DAYS: (frozenset({"field", "name", "cmp", "value"}), frozenset()),
    FieldKind.SCENARIO: (frozenset({"field", "value"}), frozenset()),
    FieldKind.INTENT: (frozenset({"field", "value"}), frozenset({"window"})),
    FieldKind.VOC_LOW: (frozenset({"field", "value"}), frozenset({"window"})),
}


def _fail(path: str, message: str, message_zh: str) -> NoReturn:
    raise RuleJsonError(message, path, message_zh=message_zh)


def _path(base: str, part: Part) -> str:
    return base + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in part)


def _check_keys(
    data: dict[str, Any], path: str, required: frozenset[str], optional: frozenset[str]
) -> None:
    for key in data:
        if key not in required and key not in optional:
            _fail(f"{path}.{key}", f"unknown key '{key}'", f"无法识别的键 '{key}'")
    for key in sorted(required):
        if key not in data:
            _fail(path, f"missing key '{key}'", f"缺少键 '{key}'")


def _read(data: Any, path: str, level: int) -> Rule:
    if not isinstance(data, dict):
        _fail(path, "expected an object", "此处应为一个 JSON 对象")
    if "op" in data:
        return _read_bool(data, path, level)
    if "field" in data:
        return _read_condition(data, path)
    _fail(path, "expected an object with 'op' or 'field'", "对象必须包含 'op' 或 'field'")


def _read_bool(data: dict[str, Any], path: str, level: int) -> Rule:
    op = data["op"]
    if level > MAX_DEPTH:
        _fail(
            path,
            f"the rule is nested more than {MAX_DEPTH} levels deep",
            f"规则嵌套超过 {MAX_DEPTH} 层",
        )
    if op == "not":
        _check_keys(data, path, frozenset({"op", "arg"}), frozenset())
        return Not(_read(data["arg"], f"{path}.arg", level + 1))
    if op not in ("and", "or"):
        _fail(f"{path}.op", f"unknown op {op!r}; expected 'and', 'or' or 'not'",
              f"无法识别的 op {op!r}（可选: 'and'、'or'、'not'）")  # fmt: skip
    _check_keys(data, path, frozenset({"op", "args"}), frozenset())
    args = data["args"]
    if not isinstance(args, list) or len(args) < 2:
        _fail(
            f"{path}.args",
            f"'{op}' needs a list of at least two rules",
            f"'{op}' 需要至少两个子规则",
        )
    rules = tuple(_read(arg, f"{path}.args[{i}]", level + 1) for i, arg in enumerate(args))
    return And(rules) if op == "and" else Or(rules)


def _read_condition(data: dict[str, Any], path: str) -> Rule:
    name = data["field"]
    spec = FIELDS.get(name) if isinstance(name, str) else None
    if spec is None:
        hint, hint_zh = did_you_mean(str(name), FIELDS)
        _fail(f"{path}.field", f"unknown field {name!r}{hint}", f"未知字段 {name!r}{hint_zh}")
    required, optional = _CONDITION_KEYS[spec.kind]
    _check_keys(data, path, required, optional)
    try:
        return _build(spec, data)
    except Problem as problem:
        _fail(_path(path, problem.part), problem.message, problem.message_zh)


def _build(spec: FieldSpec, data: dict[str, Any]) -> Rule:
    kind = spec.kind
    if kind is FieldKind.TAG:
        return Tag(check_text_arg(data["value"], ("value",), "tag name", "标签名"))
    if kind is FieldKind.IDENTITY:
        return HasIdentity(check_enum(spec, data["value"], ("value",)))
    if kind is FieldKind.SCENARIO:
        return InScenario(check_text_arg(data["value"], ("value",), "scenario name", "场景名"))
    if kind is FieldKind.INTENT:
        intent = check_text_arg(data["value"], ("value",), "intent", "意图")
        return Intent(intent, _window(spec, data.get("window")))
    if kind is FieldKind.VOC_LOW:
        factor = check_text_arg(data["value"], ("value",), "factor", "体验因素")
        return VocLow(factor, _window(spec, data.get("window")))
    if kind is FieldKind.CONSENT:
        return Consent(
            check_text_arg(data["channel"], ("channel",), "consent channel", "授权渠道"),
            check_text_arg(data["purpose"], ("purpose",), "consent purpose", "授权用途"),
        )
    if kind is FieldKind.ATTR or kind is FieldKind.ATTR_DAYS:
        name = check_text_arg(data["name"], ("name",), "attribute name", "属性名")
        cmp, value = _comparison(spec, data)
        if kind is FieldKind.ATTR_DAYS:
            return AttrDays(name, cmp, value)
        return AttrCompare(name, cmp, value)
    event_type = ""
    if kind is FieldKind.EVENT:
        event_type = check_text_arg(data["event_type"], ("event_type",), "event type", "事件类型")
    window = _window(spec, data.get("window"))
    cmp, value = _comparison(spec, data)
    if kind is FieldKind.EVENT:
        return EventCount(event_type, cmp, value, window)
    return Compare(spec.name, cmp, value, window)


def _comparison(spec: FieldSpec, data: dict[str, Any]) -> tuple[Any, Value]:
    cmp = data["cmp"]
    if not isinstance(cmp, str):
        raise Problem(
            ("cmp",),
            f"operator must be a string, got {cmp!r}",
            f"运算符必须是字符串，而不是 {cmp!r}",
        )
    return check_comparison(spec, cmp, data["value"])


def _window(spec: FieldSpec, raw: Any) -> Window | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"last", "unit"}:
        raise Problem(
            ("window",),
            'window must be an object {"last": <whole number>, "unit": "h" | "d" | "w"}',
            '时间窗口必须是形如 {"last": 30, "unit": "d"} 的对象',
        )
    if not isinstance(raw["unit"], str):
        raise Problem(
            ("window", "unit"), "window unit must be a string", "时间窗口单位必须是字符串"
        )
    window = Window(cast(int, raw["last"]), cast(WindowUnit, raw["unit"]))
    check_window(window, spec)
    return window
