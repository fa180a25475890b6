"""Who is told when a segment's membership changes: other domains (playbook triggers
``segment_entered`` / ``segment_left``) register a function once at import time; each
refresh with changes calls it in the caller's transaction with the customers who entered
and left."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

AfterRefresh = Callable[[Any, str, list[int], list[int], dt.datetime], None]

_HOOKS: dict[str, AfterRefresh] = {}


def register_after_refresh(name: str, hook: AfterRefresh) -> None:
    """Add (or replace, keyed by ``name``) ``hook(session, segment_name, entered, left, now)``."""
    _HOOKS[name] = hook


def has_hooks() -> bool:
    return bool(_HOOKS)


def run_after_refresh(session: Any, segment_name: str, entered: list[int], left: list[int],
                      now: dt.datetime) -> None:
    for hook in list(_HOOKS.values()):
        hook(session, segment_name, entered, left, now)
