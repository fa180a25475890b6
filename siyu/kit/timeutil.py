"""Time helpers: naive timestamps are read in the brand's time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def as_aware(value: dt.datetime, tz_name: str) -> dt.datetime:
    """Attach ``tz_name`` to a naive datetime; aware ones are returned unchanged."""
    if value.tzinfo is None:
        return value.replace(tzinfo=ZoneInfo(tz_name))
    return value


def local(value: dt.datetime, tz_name: str) -> dt.datetime:
    """``value`` in the brand's time zone, for display."""
    return value.astimezone(ZoneInfo(tz_name))


def display(value: dt.datetime | str | None, tz_name: str) -> str:
    """``value`` as people read it: minutes in the brand's zone (``—`` for none). A naive
    datetime or ISO text without an offset is UTC, as the database stores it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return local(value, tz_name).strftime("%Y-%m-%d %H:%M")
