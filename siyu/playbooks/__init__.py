"""SOP playbooks: triggers, steps, the contact policy and their durable execution.

Importing the package registers the ingest hook that fires triggers
(:func:`siyu.playbooks.triggers.on_rows`) and the segment refresh hook (segment entered /
left), loaded on first use.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from siyu.events.hooks import register_after_rows
from siyu.segments.hooks import register_after_refresh


def _after_rows(session: Any, kind: str, rows: list[dict[str, Any]], source: str) -> None:
    from siyu.playbooks import triggers

    triggers.on_rows(session, kind, rows, source)


def _after_refresh(session: Any, segment: str, entered: list[int], left: list[int],
                   now: dt.datetime) -> None:
    from siyu.playbooks import triggers

    triggers.on_segment_changes(session, segment, entered, left, now=now)


register_after_rows("playbooks.triggers", _after_rows)
register_after_refresh("playbooks.triggers", _after_refresh)
