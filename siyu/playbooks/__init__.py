"""SOP playbooks: triggers, steps, the contact policy and their durable execution.

Importing the package registers the ingest hook that fires triggers
(:func:`siyu.playbooks.triggers.on_rows`), the segment refresh hook (segment entered /
left) and the reply hook (a customer wrote: ``wait_for: {reply: CHANNEL}`` goes on), loaded
on first use.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from siyu.events.hooks import register_after_reply, register_after_rows
from siyu.segments.hooks import register_after_refresh


def _after_rows(session: Any, kind: str, rows: list[dict[str, Any]], source: str) -> None:
    from siyu.playbooks import triggers

    triggers.on_rows(session, kind, rows, source)


def _after_refresh(session: Any, segment: str, entered: list[int], left: list[int],
                   now: dt.datetime) -> None:
    from siyu.playbooks import triggers

    triggers.on_segment_changes(session, segment, entered, left, now=now)


def _after_reply(session: Any, customer_id: int, channel: str) -> None:
    from siyu.playbooks import triggers

    triggers.on_reply(session, customer_id, channel)


register_after_rows("playbooks.triggers", _after_rows)
register_after_reply("playbooks.triggers", _after_reply)
register_after_refresh("playbooks.triggers", _after_refresh)
