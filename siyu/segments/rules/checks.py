"""Validation shared by the text parser and the JSON reader.

Each check raises `Problem` naming the *part* of the condition at fault (``("value", 1)``,
``("window",)``...). The parser turns a part into a character position, the JSON reader
into a path, so both report the same mistake in the same words.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable

from siyu.segments.rules.nodes import Cmp, Scalar, Value, Window
from siyu.segments.rules.registry import (
    MAX_ABS_NUMBER,
    MAX_LIST_ITEMS,
    MAX_STRING_LENGTH,
    MAX_WINDOW_DAYS,
    FieldSpec,
    ValueType,
)

Part = tuple[str | int, ...]

WINDOW_UNITS = ("h", "d", "w")


class Problem(Exception):
    """An invalid part of a condition; converted to `RuleSyntaxError` or `RuleJsonError`."""

    def __init__(self, part: Part, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.part = part
        self.message = message
        self.message_zh = message_zh


def show(value: object) -> str:
    """A literal as it would be written in rule text, for messages."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def suggestion(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word``, if any is reasonably close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> tuple[str, str]:
    """English and Chinese "did you mean" suffixes (empty when nothing is close)."""
    best = suggestion(word, candidates)
    if best is None:
        return "", ""
    return f"; did you mean '{best}'?", f"，您是不是想输入 '{best}'？"


def check_text_arg(value: object, part: Part, what: str, what_zh: str) -> str:
    """A non-empty string argument such as a tag name or an event type."""
    if not isinstance(value, str):
        raise Problem(
            part,
            f"{what} must be a string, got {show(value)}",
            f"{what_zh}必须是字符串，而不是 {show(value)}",
        )
    if not value:
        raise Problem(part, f"{what} must not be empty", f"{what_zh}不能为空")
    if len(value) > MAX_STRING_LENGTH:
        raise Problem(
            part,
            f"{what} is longer than {MAX_STRING_LENGTH} characters",
            f"{what_zh}超过 {MAX_STRING_LENGTH} 个字符",
        )
    return value


def check_enum(spec: FieldSpec, value: object, part: Part) -> str:
    """A value that must be one of ``spec``'s enum values."""
    allowed = ", ".join(v for v, _ in spec.enum)
    # The Chinese message names each value as pages show it, and the code it stands for.
    allowed_zh = "、".join(f"{zh}（{v}）" if zh != v else v for v, zh in spec.enum)
    if not isinstance(value, str):
        raise Problem(
            part,
            f"'{spec.text_name}' expects one of {allowed}; got {show(value)}",
            f"'{spec.text_name}' 的取值必须是 {allowed_zh} 之一，而不是 {show(value)}",
        )
    if value not in spec.enum_values:
        by_label = {label: code for code, label in spec.enum}.get(value)
        if by_label is not None:  # written by its Chinese label: stored as the code
            return by_label
        hint, hint_zh = did_you_mean(value, spec.enum_values)
        raise Problem(
            part,
            f"{show(value)} is not a valid '{spec.text_name}' value (one of {allowed}){hint}",
            f"{show(value)} 不是有效的 '{spec.text_name}' 取值，可选：{allowed_zh}{hint_zh}",
        )
    return value


def check_window_allowed(spec: FieldSpec) -> None:
    """``spec`` accepts a time window."""
    if not spec.window:
        raise Problem(
            ("window",),
            f"'{spec.text_name}' does not take a time window",
            f"字段 '{spec.text_name}' 不支持时间窗口",
        )


def check_window(window: Window, spec: FieldSpec) -> None:
    """A window is allowed on ``spec``, positive, whole, in a known unit and ≤ 3650 days."""
    check_window_allowed(spec)
    if window.unit not in WINDOW_UNITS:
        raise Problem(
            ("window", "unit"),
            f"unknown window unit {show(window.unit)}; use h, d or w (a month is 30d)",
            f"未知的时间单位 {show(window.unit)}，"
            "请使用 h（小时）、d（天）或 w（周），一个月请写 30d",
        )
    amount = window.amount
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise Problem(
            ("window", "last"),
            f"window length must be a whole number, got {show(amount)}",
            f"时间窗口长度必须是整数，而不是 {show(amount)}",
        )
    if amount <= 0:
        raise Problem(
            ("window", "last"),
            f"window length must be positive, got {amount}",
            f"时间窗口长度必须大于 0，而不是 {amount}",
        )
    if window.hours > MAX_WINDOW_DAYS * 24:
        raise Problem(
            ("window", "last"),
            f"window is longer than {MAX_WINDOW_DAYS} days",
            f"时间窗口不能超过 {MAX_WINDOW_DAYS} 天",
        )


def _check_scalar(spec: FieldSpec, value: object, part: Part) -> Scalar:
    name = spec.text_name
    if spec.value_type is ValueType.ENUM:
        return check_enum(spec, value, part)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if spec.value_type is ValueType.STRING and not isinstance(value, str):
        raise Problem(
            part,
            f"'{name}' expects a string, got {show(value)}",
            f"字段 '{name}' 需要字符串（加引号），而不是 {show(value)}",
        )
    if spec.value_type is ValueType.NUMBER and not is_number:
        raise Problem(
            part,
            f"'{name}' expects a number, got {show(value)}",
            f"字段 '{name}' 需要数字，而不是 {show(value)}",
        )
    if isinstance(value, str):
        return check_text_arg(value, part, "a string value", "字符串取值")
    if not is_number:
        raise Problem(
            part,
            f"'{name}' expects a number or a string, got {show(value)}",
            f"字段 '{name}' 需要数字或字符串，而不是 {show(value)}",
        )
    assert isinstance(value, int | float)
    if not math.isfinite(value) or abs(value) > MAX_ABS_NUMBER:
        raise Problem(
            part,
            f"number {value!r} is out of range (at most {MAX_ABS_NUMBER:.0e} in size)",
            f"数字 {value!r} 超出范围（绝对值不超过 {MAX_ABS_NUMBER:.0e}）",
        )
    if spec.integer and not isinstance(value, int):
        raise Problem(
            part,
            f"'{name}' expects a whole number, got {value!r}",
            f"字段 '{name}' 需要整数，而不是 {value!r}",
        )
    return value


def check_comparison(spec: FieldSpec, cmp: object, value: object) -> tuple[Cmp, Value]:
    """Operator and value fit ``spec``; returns them in AST form (lists become tuples)."""
    name = spec.text_name
    try:
        op = Cmp(cmp)  # type: ignore[arg-type]
    except ValueError:
        allowed = ", ".join(f"'{c.value}'" for c in Cmp)
        raise Problem(
            ("cmp",),
            f"unknown operator {show(cmp)}; expected one of {allowed}",
            f"未知的比较运算符 {show(cmp)}（可选: {allowed}）",
        ) from None
    if op not in spec.operators:
        allowed = ", ".join(f"'{c.value}'" for c in Cmp if c in spec.operators)
        raise Problem(
            ("cmp",),
            f"operator '{op.value}' cannot be used with '{name}' (use {allowed})",
            f"字段 '{name}' 不能使用运算符 '{op.value}'（可用: {allowed}）",
        )
    if op in (Cmp.IN, Cmp.NOT_IN, Cmp.BETWEEN):
        if not isinstance(value, list | tuple):
            raise Problem(
                ("value",),
                f"'{op.value}' needs a list of values",
                f"运算符 '{op.value}' 需要一组取值",
            )
        if op is Cmp.BETWEEN and len(value) != 2:
            raise Problem(
                ("value",),
                "'between' needs exactly two values, the lower and the upper bound",
                "'between' 需要恰好两个取值：下限和上限",
            )
        if not value:
            raise Problem(
                ("value",),
                f"'{op.value}' needs at least one value",
                f"'{op.value}' 至少需要一个取值",
            )
        if len(value) > MAX_LIST_ITEMS:
            raise Problem(
                ("value", MAX_LIST_ITEMS),
                f"a list may hold at most {MAX_LIST_ITEMS} values",
                f"列表最多只能包含 {MAX_LIST_ITEMS} 个取值",
            )
        items = tuple(_check_scalar(spec, v, ("value", i)) for i, v in enumerate(value))
        first_is_str = isinstance(items[0], str)
        for i, item in enumerate(items):
            if isinstance(item, str) != first_is_str:
                raise Problem(
                    ("value", i),
                    "values in one list must all be numbers or all be strings",
                    "同一列表中的取值必须全是数字或全是字符串",
                )
        if op is Cmp.BETWEEN and items[0] > items[1]:  # type: ignore[operator]
            raise Problem(
                ("value", 0),
                f"lower bound {show(items[0])} is greater than upper bound {show(items[1])}",
                f"下限 {show(items[0])} 大于上限 {show(items[1])}",
            )
        return op, items
    if isinstance(value, list | tuple):
        raise Problem(
            ("value",),
            f"'{op.value}' takes a single value, not a list",
            f"运算符 '{op.value}' 只接受单个取值，不能是列表",
        )
    return op, _check_scalar(spec, value, ("value",))
