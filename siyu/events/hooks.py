"""What other domains want done when orders or events land.

A domain registers a function once at import time; :func:`siyu.events.service.ingest` calls
each in the batch's own transaction after it stored new records, so the follow-up (e.g. a
queued score recomputation) commits with the batch or not at all. The events domain stays
ignorant of who listens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

AfterIngest = Callable[[Session, str, int], None]
"""``hook(session, kind, accepted)``: ``kind`` is ``orders`` or ``events``."""

AfterRows = Callable[[Session, str, list[dict[str, Any]], str], None]
"""``hook(session, kind, rows, source)``: the stored rows themselves (``id``,
``customer_id``, ``ts``, and ``type``/``properties`` for events, ``status`` for orders) and
the batch's source (``api``, ``import``, ...)."""

_HOOKS: dict[str, AfterIngest] = {}
_ROW_HOOKS: dict[str, AfterRows] = {}


def register_after_ingest(name: str, hook: AfterIngest) -> None:
    """Add (or replace, keyed by ``name``) a hook run after each batch that stored records."""
    _HOOKS[name] = hook


def run_after_ingest(session: Session, kind: str, accepted: int) -> None:
    for hook in list(_HOOKS.values()):
        hook(session, kind, accepted)


def register_after_rows(name: str, hook: AfterRows) -> None:
    """Add (or replace, keyed by ``name``) a hook that sees each batch's stored rows."""
    _ROW_HOOKS[name] = hook


def run_after_rows(session: Session, kind: str, rows: list[dict[str, Any]], source: str
                   ) -> None:
    for hook in list(_ROW_HOOKS.values()):
        hook(session, kind, rows, source)


AfterChange = Callable[[Session, str, Sequence[int]], None]
"""``hook(session, kind, customer_ids)``: the customers whose orders or events a batch added
or changed (each once, sorted)."""

_CHANGE_HOOKS: dict[str, AfterChange] = {}


def register_after_change(name: str, hook: AfterChange) -> None:
    """Add (or replace, keyed by ``name``) a hook told which customers a batch touched."""
    _CHANGE_HOOKS[name] = hook


def run_after_change(session: Session, kind: str, customer_ids: Sequence[int]) -> None:
    if not customer_ids:
        return
    for hook in list(_CHANGE_HOOKS.values()):
        hook(session, kind, customer_ids)


AfterReply = Callable[[Session, int, str], None]
"""``hook(session, customer_id, channel)``: the customer wrote to the brand on ``channel``
(a message to the service desk, an SMS reply), in the transaction that stored it."""

_REPLY_HOOKS: dict[str, AfterReply] = {}


def register_after_reply(name: str, hook: AfterReply) -> None:
    """Add (or replace, keyed by ``name``) a hook told when a customer writes."""
    _REPLY_HOOKS[name] = hook


def run_after_reply(session: Session, customer_id: int, channel: str) -> None:
    for hook in list(_REPLY_HOOKS.values()):
        hook(session, customer_id, channel)
