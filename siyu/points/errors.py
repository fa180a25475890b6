"""Points ledger errors."""

from __future__ import annotations

from siyu.errors import Conflict, InvalidInput


class InvalidEntry(InvalidInput):
    code = "invalid_points_entry"


class InsufficientPoints(Conflict):
    code = "insufficient_points"


class RewardNotFound(InvalidInput):
    status_code = 404
    code = "reward_not_found"


class OutOfStock(Conflict):
    code = "reward_out_of_stock"
