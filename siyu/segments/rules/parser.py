"""Recursive-descent parser for rule text.

Hand-written rather than generated: the grammar is small, and what matters to operators is
an error that points at the exact character with a useful message, which is simplest to
get from a parser whose every decision is visible. Grammar (keywords case-insensitive)::

    rule       := or_expr EOF
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | condition
    condition  := "tag" "(" STRING ")"
                | "has" "(" (IDENT | STRING) ")"
                | "consent" "(" STRING "," STRING ")"
                | "event" "(" STRING ["," window] ")" comparison
                | "attr" "(" STRING ")" comparison
                | "attr_days" "(" STRING ")" comparison    -- whole days since a date attribute
                | "scenario" "(" STRING ")"
                | "intent" "(" STRING ["," window] ")"
                | "voc_low" "(" STRING ["," window] ")"
                | FIELD ["(" window ")"] comparison
    window     := "last" DURATION                      -- e.g. 30d, 2w, 12h
    comparison := OP value | "between" value "and" value
                | ["not"] "in" "(" value ("," value)* ")"
    value      := NUMBER | STRING
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, cast

from siyu.segments.rules.checks import (
    Part,
    Problem,
    check_comparison,
    check_enum,
    check_text_arg,
    check_window,
    check_window_allowed,
    did_you_mean,
)
from siyu.segments.rules.errors import RuleSyntaxError
from siyu.segments.rules.lexer import Lexer, T, Token
from siyu.segments.rules.nodes import (
    And,
    AttrCompare,
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
    WindowUnit,
)
from siyu.segments.rules.registry import (
    MAX_DEPTH,
    MAX_LIST_ITEMS,
    MAX_TEXT_LENGTH,
    TEXT_FIELDS,
    FieldKind,
    FieldSpec,
)

KEYWORDS = frozenset({"and", "or", "not", "in", "between", "last"})
# Operators sometimes type the Chinese name of a field; point them at the English one.
_LABELS_ZH = {spec.label_zh: spec.text_name for spec in TEXT_FIELDS.values()}
_COMPARISONS = "=, !=, <, <=, >, >=, in, not in, between"


def parse(text: str) -> Rule:
    """Parse and validate rule text; raises `RuleSyntaxError` pointing at the first mistake."""
    if len(text) > MAX_TEXT_LENGTH:
        raise RuleSyntaxError(
            f"rule is {len(text)} characters long; the limit is {MAX_TEXT_LENGTH}",
            MAX_TEXT_LENGTH,
            text,
            message_zh=f"规则长度为 {len(text)} 个字符，超过上限 {MAX_TEXT_LENGTH}",
        )
    parser = _Parser(text)
    if parser.tok.kind is T.EOF:
        raise parser.error(parser.tok.pos, "the rule is empty", "规则为空")
    rule, _ = parser.or_expr()
    tok = parser.tok
    if tok.kind is T.RPAREN:
        raise parser.error(tok.pos, "unmatched ')'", "多余的 ')'，没有与之配对的 '('")
    if tok.kind is not T.EOF:
        raise parser.error(
            tok.pos,
            f"expected 'and', 'or' or the end of the rule, found {_found(tok)}",
            f"此处应为 'and'、'or' 或规则结尾，而不是 {_found_zh(tok)}",
        )
    return rule


def _found(tok: Token) -> str:
    return "the end of the rule" if tok.kind is T.EOF else f"'{tok.text}'"


def _found_zh(tok: Token) -> str:
    return "规则结尾" if tok.kind is T.EOF else f"'{tok.text}'"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lexer = Lexer(text)
        self.prev: Token | None = None
        self.tok = self.lexer.next()
        self.nesting = 0

    # -- helpers -------------------------------------------------------------------------

    def error(self, pos: int, message: str, message_zh: str) -> RuleSyntaxError:
        return RuleSyntaxError(message, pos, self.text, message_zh=message_zh)

    def advance(self) -> Token:
        self.prev = self.tok
        self.tok = self.lexer.next()
        return self.prev

    def at_word(self, word: str) -> bool:
        return self.tok.kind is T.IDENT and self.tok.word == word

    def expect(self, kind: T, context: str, context_zh: str) -> Token:
        if self.tok.kind is not kind:
            raise self.error(
                self.tok.pos,
                f"expected {kind.value} {context}, found {_found(self.tok)}",
                f"{context_zh}此处应为 {kind.value}，而不是 {_found_zh(self.tok)}",
            )
        return self.advance()

    def expect_word(self, word: str, context: str, context_zh: str) -> Token:
        if not self.at_word(word):
            raise self.error(
                self.tok.pos,
                f"expected '{word}' {context}, found {_found(self.tok)}",
                f"{context_zh}此处应为 '{word}'，而不是 {_found_zh(self.tok)}",
            )
        return self.advance()

    def enter(self, tok: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self._too_deep(tok.pos)

    def _too_deep(self, pos: int) -> RuleSyntaxError:
        return self.error(
            pos,
            f"the rule is nested more than {MAX_DEPTH} levels deep",
            f"规则嵌套超过 {MAX_DEPTH} 层",
        )

    def raise_problem(self, problem: Problem, positions: dict[Part, int], default: int) -> NoReturn:
        part = problem.part
        while part and part not in positions:
            part = part[:-1]
        pos = positions.get(part, default)
        raise self.error(pos, problem.message, problem.message_zh) from None

    # -- boolean structure (each returns the node and its and/or/not depth) ---------------

    def or_expr(self) -> tuple[Rule, int]:
        return self._chain("or", Or, self.and_expr)

    def and_expr(self) -> tuple[Rule, int]:
        return self._chain("and", And, self.not_expr)

    def _chain(
        self, word: str, node: type[And] | type[Or], operand: Callable[[], tuple[Rule, int]]
    ) -> tuple[Rule, int]:
        first, depth = operand()
        args = [first]
        op_pos = self.tok.pos
        while self.at_word(word):
            self.advance()
            arg, arg_depth = operand()
            args.append(arg)
            depth = max(depth, arg_depth)
        if len(args) == 1:
            return first, depth
        if depth + 1 > MAX_DEPTH:
            raise self._too_deep(op_pos)
        return node(tuple(args)), depth + 1

    def not_expr(self) -> tuple[Rule, int]:
        tok = self.tok
        if self.at_word("not"):
            self.advance()
            self.enter(tok)
            arg, depth = self.not_expr()
            self.nesting -= 1
            if depth + 1 > MAX_DEPTH:
                raise self._too_deep(tok.pos)
            return Not(arg), depth + 1
        if tok.kind is T.LPAREN:
            self.advance()
            self.enter(tok)
            inner = self.or_expr()
            if self.tok.kind is T.EOF:
                raise self.error(tok.pos, "'(' is never closed", "'(' 缺少与之配对的 ')'")
            if self.tok.kind is not T.RPAREN:
                raise self.error(
                    self.tok.pos,
                    f"expected ')', 'and' or 'or', found {_found(self.tok)}",
                    f"此处应为 ')'、'and' 或 'or'，而不是 {_found_zh(self.tok)}",
                )
            self.advance()
            self.nesting -= 1
            return inner
        if tok.kind is T.IDENT and tok.word not in KEYWORDS:
            return self.condition(), 0
        after = self.prev
        if after is not None and after.kind is T.IDENT and after.word in ("and", "or", "not"):
            context, context_zh = f" after '{after.word}'", f"'{after.word}' 之后"
        elif after is not None and after.kind is T.LPAREN:
            context, context_zh = " after '('", "'(' 之后"
        else:
            context, context_zh = "", ""
        raise self.error(
            tok.pos,
            f"expected a condition{context}, found {_found(tok)}",
            f"{context_zh}此处应为一个条件（如 orders >= 3），而不是 {_found_zh(tok)}",
        )

    # -- conditions ----------------------------------------------------------------------

    def condition(self) -> Rule:
        name_tok = self.advance()
        spec = TEXT_FIELDS.get(name_tok.word)
        if spec is None:
            by_label = _LABELS_ZH.get(name_tok.text)
            if by_label is not None:
                hint = f"; did you mean '{by_label}'?"
                hint_zh = f"，您是不是想输入 '{by_label}'？"
            else:
                hint, hint_zh = did_you_mean(name_tok.word, TEXT_FIELDS)
            raise self.error(
                name_tok.pos,
                f"unknown field '{name_tok.text}'{hint}",
                f"未知字段 '{name_tok.text}'{hint_zh}",
            )
        positions: dict[Part, int] = {(): name_tok.pos}
        try:
            return self._condition(spec, name_tok, positions)
        except Problem as problem:
            self.raise_problem(problem, positions, name_tok.pos)

    def _condition(self, spec: FieldSpec, name_tok: Token, positions: dict[Part, int]) -> Rule:
        kind = spec.kind
        if kind is FieldKind.SCALAR:
            window = None
            if self.tok.kind is T.LPAREN:
                positions[("window",)] = self.tok.pos
                check_window_allowed(spec)
                self.advance()
                window = self.window(spec, positions)
                self.expect(T.RPAREN, "after the window", "时间窗口之后")
            cmp, value = self.comparison(spec, name_tok, positions)
            return Compare(spec.name, cmp, value, window)
        self.expect(T.LPAREN, f"after '{spec.text_name}'", f"'{spec.text_name}' 之后")
        if kind is FieldKind.IDENTITY:
            tok = self.tok
            positions[("value",)] = tok.pos
            if tok.kind not in (T.IDENT, T.STRING):
                kinds = ", ".join(v for v, _ in spec.enum)
                raise self.error(
                    tok.pos,
                    f"expected an identity kind ({kinds}), found {_found(tok)}",
                    f"此处应为身份类型（{kinds}），而不是 {_found_zh(tok)}",
                )
            self.advance()
            raw = tok.word if tok.kind is T.IDENT else str(tok.value)
            node: Rule = HasIdentity(check_enum(spec, raw, ("value",)))
        elif kind is FieldKind.CONSENT:
            channel = self.string_arg(("channel",), "consent channel", "授权渠道", positions)
            self.expect(T.COMMA, "between channel and purpose", "渠道与用途之间")
            purpose = self.string_arg(("purpose",), "consent purpose", "授权用途", positions)
            node = Consent(channel, purpose)
        elif kind is FieldKind.TAG:
            node = Tag(self.string_arg(("value",), "tag name", "标签名", positions))
        elif kind is FieldKind.SCENARIO:
            node = InScenario(self.string_arg(("value",), "scenario name", "场景名", positions))
        elif kind is FieldKind.INTENT:
            intent = self.string_arg(("value",), "intent", "意图", positions)
            intent_window = None
            if self.tok.kind is T.COMMA:
                self.advance()
                positions[("window",)] = self.tok.pos
                intent_window = self.window(spec, positions)
            node = Intent(intent, intent_window)
        elif kind is FieldKind.VOC_LOW:
            factor = self.string_arg(("value",), "factor", "体验因素", positions)
            low_window = None
            if self.tok.kind is T.COMMA:
                self.advance()
                positions[("window",)] = self.tok.pos
                low_window = self.window(spec, positions)
            node = VocLow(factor, low_window)
        elif kind is FieldKind.ATTR or kind is FieldKind.ATTR_DAYS:
            name = self.string_arg(("name",), "attribute name", "属性名", positions)
            self.expect(T.RPAREN, "after the attribute name", "属性名之后")
            cmp, value = self.comparison(spec, name_tok, positions)
            if kind is FieldKind.ATTR_DAYS:
                return AttrDays(name, cmp, value)
            return AttrCompare(name, cmp, value)
        else:
            event_type = self.string_arg(("event_type",), "event type", "事件类型", positions)
            window = None
            if self.tok.kind is T.COMMA:
                self.advance()
                positions[("window",)] = self.tok.pos
                window = self.window(spec, positions)
            self.expect(T.RPAREN, "after the event", "事件参数之后")
            cmp, value = self.comparison(spec, name_tok, positions)
            return EventCount(event_type, cmp, value, window)
        self.expect(T.RPAREN, f"to close '{spec.text_name}('", f"'{spec.text_name}(' 缺少 ')'，")
        return node

    def string_arg(self, part: Part, what: str, what_zh: str, positions: dict[Part, int]) -> str:
        tok = self.tok
        positions[part] = tok.pos
        if tok.kind is not T.STRING:
            raise self.error(
                tok.pos,
                f"expected the {what} as a quoted string, found {_found(tok)}",
                f'{what_zh}需要用引号括起来（例如 "VIP"），而不是 {_found_zh(tok)}',
            )
        self.advance()
        return check_text_arg(tok.value, part, what, what_zh)

    def window(self, spec: FieldSpec, positions: dict[Part, int]) -> Window:
        self.expect_word("last", "to start the window (e.g. last 30d)", "时间窗口以 last 开头，")
        tok = self.tok
        if tok.kind is T.NUMBER:
            raise self.error(
                tok.pos + len(tok.text),
                "the window needs a unit: h, d or w (e.g. last 30d)",
                "时间窗口需要单位: h（小时）、d（天）或 w（周），例如 last 30d",
            )
        if tok.kind is not T.DURATION:
            raise self.error(
                tok.pos,
                f"expected a window length such as 30d, found {_found(tok)}",
                f"此处应为时间窗口长度（例如 30d），而不是 {_found_zh(tok)}",
            )
        self.advance()
        positions[("window", "last")] = tok.pos
        positions[("window", "unit")] = tok.pos + len(tok.text) - len(tok.unit)
        unit = tok.unit.lower()
        window = Window(cast(int, tok.value), cast(WindowUnit, unit))
        check_window(window, spec)
        return window

    def comparison(
        self, spec: FieldSpec, name_tok: Token, positions: dict[Part, int]
    ) -> tuple[Cmp, Value]:
        tok = self.tok
        positions[("cmp",)] = tok.pos
        raw_cmp: object
        value: object
        if tok.kind is T.OP:
            self.advance()
            raw_cmp = tok.value
            value = self.value(positions, ("value",))
        elif self.at_word("between"):
            self.advance()
            raw_cmp = "between"
            low = self.value(positions, ("value", 0))
            self.expect_word("and", "between the two bounds", "两个边界值之间")
            value = [low, self.value(positions, ("value", 1))]
        elif self.at_word("in") or self.at_word("not"):
            raw_cmp = "in"
            if self.at_word("not"):
                self.advance()
                self.expect_word("in", "after 'not'", "'not' 之后")
                raw_cmp = "not in"
            else:
                self.advance()
            value = self.value_list(positions)
        else:
            raise self.error(
                tok.pos,
                f"expected a comparison ({_COMPARISONS}) after '{name_tok.text}', "
                f"found {_found(tok)}",
                f"'{name_tok.text}' 之后应为比较运算符（{_COMPARISONS}），而不是 {_found_zh(tok)}",
            )
        return check_comparison(spec, raw_cmp, value)

    def value(self, positions: dict[Part, int], part: Part) -> Scalar:
        tok = self.tok
        positions[part] = tok.pos
        if tok.kind not in (T.NUMBER, T.STRING):
            after = f" after '{self.prev.text}'" if self.prev is not None else ""
            after_zh = f"'{self.prev.text}' 之后" if self.prev is not None else ""
            raise self.error(
                tok.pos,
                f"expected a value (a number or a quoted string){after}, found {_found(tok)}",
                f"{after_zh}此处应为一个取值（数字或带引号的字符串），而不是 {_found_zh(tok)}",
            )
        self.advance()
        return tok.value

    def value_list(self, positions: dict[Part, int]) -> list[Scalar]:
        open_tok = self.expect(T.LPAREN, "to start the list", "列表以 '(' 开头，")
        positions[("value",)] = open_tok.pos
        if self.tok.kind is T.RPAREN:
            raise self.error(self.tok.pos, "the list is empty", "列表不能为空")
        items = [self.value(positions, ("value", 0))]
        while self.tok.kind is T.COMMA:
            self.advance()
            if len(items) == MAX_LIST_ITEMS:
                raise self.error(
                    self.tok.pos,
                    f"a list may hold at most {MAX_LIST_ITEMS} values",
                    f"列表最多只能包含 {MAX_LIST_ITEMS} 个取值",
                )
            items.append(self.value(positions, ("value", len(items))))
        if self.tok.kind is T.EOF:
            raise self.error(open_tok.pos, "'(' is never closed", "'(' 缺少与之配对的 ')'")
        self.expect(T.RPAREN, "or ',' in the list", "列表中")
        return items
