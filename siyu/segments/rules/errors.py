"""Errors raised while reading a rule, from text (`RuleSyntaxError`) or JSON (`RuleJsonError`)."""

from __future__ import annotations

import unicodedata
from typing import Any

from siyu.errors import InvalidInput

_CARET_CONTEXT = 40


class RuleError(InvalidInput):
    """A rule that cannot be accepted; rendered as HTTP 422 by the common error handler."""

    code = "invalid_rule"

    def __init__(self, message: str, *, message_zh: str, details: dict[str, Any]) -> None:
        super().__init__(message, details=details)
        self.message_zh = message_zh


class RuleSyntaxError(RuleError):
    """A rule text that does not parse or does not validate.

    ``position`` is a 0-based character offset into ``text`` (``len(text)`` for "at the end").
    ``message`` is English; ``message_zh`` is the Chinese message for the console, prefixed
    with the 1-based character ordinal operators see ("第 1 个字符处：...").
    """

    code = "rule_syntax_error"

    def __init__(
        self, message: str, position: int, text: str, *, message_zh: str | None = None
    ) -> None:
        self.position = position
        self.text = text
        self.detail_zh = message_zh if message_zh is not None else message
        full_zh = f"第 {position + 1} 个字符处：{self.detail_zh}"
        super().__init__(
            message,
            message_zh=full_zh,
            details={"position": position, "message_zh": full_zh},
        )

    def __str__(self) -> str:
        return f"{self.message} (at offset {self.position})\n{self.caret()}"

    def caret(self) -> str:
        """The offending line of the text with a ``^`` under ``position``.

        Wide (CJK) characters count as two columns so the caret lines up in a terminal;
        very long lines are cut to the neighbourhood of the position.
        """
        text = self.text
        pos = max(0, min(self.position, len(text)))
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        if end == -1:
            end = len(text)
        prefix, suffix = "", ""
        left = start
        if pos - start > _CARET_CONTEXT:
            left = pos - _CARET_CONTEXT
            prefix = "…"
        right = end
        if end - pos > _CARET_CONTEXT:
            right = pos + _CARET_CONTEXT
            suffix = "…"
        line = prefix + text[left:right] + suffix
        pad = " " * _width(prefix) + "".join(
            "\t" if ch == "\t" else " " * _width(ch) for ch in text[left:pos]
        )
        return f"{line}\n{pad}^"


class RuleJsonError(RuleError):
    """A stored (JSON) rule that does not validate; ``path`` locates it (``$.args[1].value``)."""

    code = "rule_json_error"

    def __init__(self, message: str, path: str, *, message_zh: str | None = None) -> None:
        self.path = path
        self.detail_zh = message_zh if message_zh is not None else message
        full_zh = f"{path}: {self.detail_zh}"
        super().__init__(message, message_zh=full_zh, details={"path": path, "message_zh": full_zh})

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)
