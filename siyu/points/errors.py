"""Points ledger errors."""

from __future__ import annotations

from siyu.errors import Conflict, InvalidInput


class InvalidEntry(InvalidInput):
    code = "invalid_points_entry"


class InsufficientPoints(Conflict):
    code = "insufficient_points"
