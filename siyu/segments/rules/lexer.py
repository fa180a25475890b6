"""Tokenizer for rule text. Tokens are produced on demand, so the first error reported is
the leftmost one (``ordrs >= 1 ;`` reports the unknown field, not the ``;``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from siyu.segments.rules.errors import RuleSyntaxError


class T(Enum):
    """Token kinds."""

    IDENT = "identifier"
    STRING = "string"
    NUMBER = "number"
    DURATION = "duration"
    OP = "operator"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    EOF = "end of rule"


@dataclass(frozen=True)
class Token:
    """A token; ``pos`` is the 0-based offset of its first character in the rule text.

    ``value`` is the decoded string for STRING, the number for NUMBER and DURATION (whose
    ``unit`` holds the letters after the number, as written), the operator for OP.
    """

    kind: T
    text: str
    pos: int
    value: str | int | float = ""
    unit: str = ""

    @property
    def word(self) -> str:
        """Lower-cased text of an identifier: keywords and field names ignore case."""
        return self.text.lower() if self.kind is T.IDENT else ""


_OPERATORS = (">=", "<=", "!=", "<>", "==", "=", "<", ">")
_OP_ALIASES = {"<>": "!=", "==": "="}
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}
_FULL_WIDTH = {
    "（": "(",
    "）": ")",
    "，": ",",
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "＝": "=",
    "＞": ">",
    "＜": "<",
    "！": "!",
    "；": ";",
}
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"


class Lexer:
    """Reads tokens from ``text`` one at a time."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def error(self, pos: int, message: str, message_zh: str) -> RuleSyntaxError:
        """A syntax error at ``pos`` in this text."""
        return RuleSyntaxError(message, pos, self.text, message_zh=message_zh)

    def next(self) -> Token:
        """The next token (EOF, repeatedly, at the end)."""
        text, n = self.text, len(self.text)
        while self.i < n and text[self.i].isspace():
            self.i += 1
        start = self.i
        if start >= n:
            return Token(T.EOF, "", n)
        ch = text[start]
        if ch in "(),":
            self.i += 1
            kind = {"(": T.LPAREN, ")": T.RPAREN, ",": T.COMMA}[ch]
            return Token(kind, ch, start)
        if ch in "\"'":
            return self._string(start, ch)
        if ch in _DIGITS or (ch == "-" and start + 1 < n and text[start + 1] in _DIGITS):
            return self._number(start)
        if ch.isalpha() or ch == "_":
            end = start + 1
            while end < n and (text[end].isalnum() or text[end] == "_"):
                end += 1
            self.i = end
            return Token(T.IDENT, text[start:end], start)
        for op in _OPERATORS:
            if text.startswith(op, start):
                self.i = start + len(op)
                return Token(T.OP, op, start, _OP_ALIASES.get(op, op))
        if ch in _FULL_WIDTH:
            half = _FULL_WIDTH[ch]
            raise self.error(
                start,
                f"full-width character '{ch}'; use '{half}' instead",
                f"全角字符 '{ch}'，请改用半角字符 '{half}'",
            )
        raise self.error(
            start,
            f"unexpected character '{ch}'",
            f"无法识别的字符 '{ch}'（规则只能包含一个条件表达式）",
        )

    def _string(self, start: int, quote: str) -> Token:
        text, n = self.text, len(self.text)
        out: list[str] = []
        i = start + 1
        while i < n:
            ch = text[i]
            if ch == quote:
                self.i = i + 1
                return Token(T.STRING, text[start : i + 1], start, "".join(out))
            if ch == "\\":
                nxt = text[i + 1] if i + 1 < n else ""
                if nxt in _ESCAPES and nxt:
                    out.append(_ESCAPES[nxt])
                    i += 2
                    continue
                digits = text[i + 2 : i + 6]
                if nxt == "u" and len(digits) == 4 and all(c in _HEX for c in digits):
                    out.append(chr(int(digits, 16)))
                    i += 6
                    continue
                raise self.error(
                    i,
                    f"unknown escape '\\{nxt}' in string",
                    f"字符串中无法识别的转义 '\\{nxt}'（可用: \\\\ \\\" \\' \\n \\t \\r \\uXXXX）",
                )
            out.append(ch)
            i += 1
        raise self.error(start, "string is never closed", f"字符串缺少结束的引号 {quote}")

    def _number(self, start: int) -> Token:
        text, n = self.text, len(self.text)
        end = start + 1
        while end < n and text[end] in _DIGITS:
            end += 1
        is_decimal = end + 1 < n and text[end] == "." and text[end + 1] in _DIGITS
        if is_decimal:
            end += 1
            while end < n and text[end] in _DIGITS:
                end += 1
        literal = text[start:end]
        value: int | float = float(literal) if is_decimal else int(literal)
        unit_end = end
        while unit_end < n and (text[unit_end].isalpha() or text[unit_end] == "_"):
            unit_end += 1
        self.i = unit_end
        if unit_end > end:
            return Token(T.DURATION, text[start:unit_end], start, value, text[end:unit_end])
        return Token(T.NUMBER, literal, start, value)
