"""The playbooks' notion of now: the wall clock, replaceable so tests (and the quiet-hours
acceptance test) can move time instead of waiting for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from siyu.db import utcnow

_now: Callable[[], dt.datetime] = utcnow


def now() -> dt.datetime:
    return _now()


def use_clock(fn: Callable[[], dt.datetime] | None) -> None:
    """Replace the clock (``None``: back to the wall clock)."""
    global _now
    _now = fn or utcnow
