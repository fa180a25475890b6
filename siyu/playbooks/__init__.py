"""SOP playbooks: triggers, steps, the contact policy and their durable execution.

Importing the package registers the ingest hook that fires triggers
(:func:`siyu.playbooks.triggers.on_rows`), loaded on first use.
"""

from __future__ import annotations

from typing import Any

from siyu.events.hooks import register_after_rows


def _after_rows(session: Any, kind: str, rows: list[dict[str, Any]], source: str) -> None:
    from siyu.playbooks import triggers

    triggers.on_rows(session, kind, rows, source)


register_after_rows("playbooks.triggers", _after_rows)
