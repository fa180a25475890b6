"""Calendar days in the brand's time zone for arrays of UTC timestamps."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

EPOCH = dt.date(1970, 1, 1)
NO_DAY = np.iinfo(np.int64).min // 2
"""Day number standing for "no day" (a customer without purchases)."""
_DAY = 86400.0


def local_days(seconds: NDArray[np.float64], timezone: str) -> NDArray[np.int64]:
    """Calendar day numbers (days since 1970-01-01) in ``timezone`` of Unix ``seconds``;
    NaN gives :data:`NO_DAY`.

    UTC offsets change only on quarter hours, so the zone is asked once per distinct
    quarter hour rather than once per timestamp.
    """
    out = np.full(seconds.shape[0], NO_DAY, dtype=np.int64)
    ok = ~np.isnan(seconds)
    if not np.any(ok):
        return out
    values = seconds[ok]
    quarters = np.floor(values / 900.0).astype(np.int64)
    unique, inverse = np.unique(quarters, return_inverse=True)
    zone = ZoneInfo(timezone)
    offsets = np.fromiter(
        ((dt.datetime.fromtimestamp(q * 900, dt.UTC).astimezone(zone).utcoffset()
          or dt.timedelta()).total_seconds() for q in unique.tolist()),
        dtype=np.float64, count=unique.shape[0])
    out[ok] = np.floor((values + offsets[inverse.ravel()]) / _DAY).astype(np.int64)
    return out


def day_of(moment: dt.datetime, timezone: str) -> int:
    """The brand-zone calendar day number of an aware datetime."""
    return (moment.astimezone(ZoneInfo(timezone)).date() - EPOCH).days


def local_midnight(day: dt.date, timezone: str) -> dt.datetime:
    """The UTC instant at which ``day`` begins in ``timezone``."""
    return dt.datetime.combine(day, dt.time(), ZoneInfo(timezone)).astimezone(dt.UTC)
