"""Qualify referrals when orders land (the ingest after-change hook).

The hook runs in the ingest transaction; it is one indexed query for the batch's customers
and does nothing more unless one of them has a pending attribution.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from siyu.events.hooks import register_after_change


def _after_change(session: Session, kind: str, customer_ids: Sequence[int]) -> None:
    if kind != "orders":
        return
    from siyu.referrals.service import qualify

    for start in range(0, len(customer_ids), 500):
        qualify(session, customer_ids[start:start + 500])


def register() -> None:
    register_after_change("referrals.qualify", _after_change)
