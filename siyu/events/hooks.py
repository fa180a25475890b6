"""What other domains want done when orders or events land.

A domain registers a function once at import time; :func:`siyu.events.service.ingest` calls
each in the batch's own transaction after it stored new records, so the follow-up (e.g. a
queued score recomputation) commits with the batch or not at all. The events domain stays
ignorant of who listens.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

AfterIngest = Callable[[Session, str, int], None]
"""``hook(session, kind, accepted)``: ``kind`` is ``orders`` or ``events``."""

_HOOKS: dict[str, AfterIngest] = {}


def register_after_ingest(name: str, hook: AfterIngest) -> None:
    """Add (or replace, keyed by ``name``) a hook run after each batch that stored records."""
    _HOOKS[name] = hook


def run_after_ingest(session: Session, kind: str, accepted: int) -> None:
    for hook in list(_HOOKS.values()):
        hook(session, kind, accepted)
