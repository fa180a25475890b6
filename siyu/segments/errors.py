"""Errors of the segments domain."""

from __future__ import annotations

from typing import Any

from siyu.errors import Conflict, InvalidInput, NotFound
from siyu.segments.rules import RuleError, RuleSyntaxError


class SegmentNotFound(NotFound):
    code = "segment_not_found"


class SegmentExists(Conflict):
    code = "segment_exists"


class InvalidSegment(InvalidInput):
    code = "invalid_segment"


class InvalidRule(InvalidInput):
    """A rule that was refused, wrapped for callers: the request field it came from, and
    where the problem is (``position`` in text, or ``path`` in JSON).

    The API renders ``{"error", "message", "message_zh", "position", "path", "details"}``.
    """

    code = "invalid_rule"

    def __init__(self, error: RuleError, *, field: str) -> None:
        self.error = error
        self.position: int | None = getattr(error, "position", None)
        self.path: str | None = getattr(error, "path", None)
        self.message_zh = error.message_zh
        super().__init__(
            f"{field}: {error.message}",
            details={"field": field, "position": self.position, "path": self.path,
                     "message_zh": self.message_zh},
        )

    def caret(self) -> str | None:
        """The rule text with a ``^`` under the position (text rules only)."""
        return self.error.caret() if isinstance(self.error, RuleSyntaxError) else None

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body.update(message=self.error.message, message_zh=self.message_zh,
                    position=self.position, path=self.path)
        return body
