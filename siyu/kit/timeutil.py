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
