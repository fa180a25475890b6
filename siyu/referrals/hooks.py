"""Attribute new customers when an event names a code (the ingest row hook), qualify
referrals when orders land (the after-change hook), and keep attributions whole through a
customer merge (the merge hook).

Two kinds of event attribute: any event whose properties carry ``invite_code`` (the brand's
mini program or app reports the invite link it was opened with; the web chat does the same
when a customer signs in from ``/r/<code>``), and WeCom's ``add_external_contact`` whose
``state`` is a channel code's (渠道活码). A code or state siyu does not know is ignored: a
state may mean something else to the brand. The hook costs nothing for batches without
such events.

The ingest hook runs in the ingest transaction; it is one indexed query for the batch's
customers and does nothing more unless one of them has a pending attribution.

A customer is attributed at most once (``referred_id`` is unique). When two customers who
were both attributed are merged, the kept customer's attribution stands and the merged
one's is set aside; an attribution between the two (one invited the other) would make the
kept customer refer themselves and is set aside too. Undo puts both back. Points already
awarded stay in the ledger, which moves with the merge.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from siyu.customers.identity import register_merge_hook
from siyu.events.hooks import register_after_change, register_after_rows
from siyu.referrals.models import ReferralAttribution

_FIELDS = ("referred_id", "code_id", "referrer_id", "status", "reason", "order_id")


def _after_change(session: Session, kind: str, customer_ids: Sequence[int]) -> None:
    if kind != "orders":
        return
    from siyu.referrals.service import qualify

    for start in range(0, len(customer_ids), 500):
        qualify(session, customer_ids[start:start + 500])


ADD_CONTACT = "wecom_add_external_contact"


def _named_code(row: dict[str, Any]) -> tuple[str, str] | None:
    props = row.get("properties") or {}
    code = props.get("invite_code")
    if isinstance(code, str) and code.strip():
        return "code", code.strip().upper()
    state = props.get("state")
    if row.get("type") == ADD_CONTACT and isinstance(state, str) and state:
        return "state", state
    return None


def _after_rows(session: Session, kind: str, rows: list[dict[str, Any]], source: str
                ) -> None:
    if kind != "events":
        return
    named = [(row, found) for row in rows if (found := _named_code(row)) is not None]
    if not named:
        return
    from siyu.referrals.models import ReferralCode
    from siyu.referrals.service import attribute

    codes = {value for _row, (what, value) in named if what == "code"}
    states = {value for _row, (what, value) in named if what == "state"}
    known = session.execute(select(ReferralCode.code, ReferralCode.state).where(
        or_(ReferralCode.code.in_(codes), ReferralCode.state.in_(states)))).all()
    known_codes = {c for c, _s in known}
    known_states = {st for _c, st in known if st}
    for row, (what, value) in sorted(named, key=lambda item: item[0]["ts"]):
        if what == "code" and value in known_codes:
            attribute(session, row["customer_id"], code=value, at=row["ts"])
        elif what == "state" and value in known_states:
            attribute(session, row["customer_id"], state=value, at=row["ts"])


def _set_aside(session: Session, keep_id: int, drop_id: int) -> list[dict[str, Any]]:
    A = ReferralAttribution
    kept_attributed = select(A.id).where(A.referred_id == keep_id).exists()
    rows = session.scalars(select(A).where(or_(
        (A.referred_id == drop_id) & kept_attributed,
        (A.referred_id == drop_id) & (A.referrer_id == keep_id),
        (A.referred_id == keep_id) & (A.referrer_id == drop_id),
    ))).all()
    if not rows:
        return []
    aside = []
    for row in rows:
        item: dict[str, Any] = {f: getattr(row, f) for f in _FIELDS}
        item["at"] = row.at.isoformat()
        item["qualified_at"] = row.qualified_at.isoformat() if row.qualified_at else None
        aside.append(item)
    session.execute(delete(A).where(A.id.in_([r.id for r in rows])))
    return aside


def _restore(session: Session, merged_id: int, rows: list[dict[str, Any]]) -> None:
    for item in rows:
        qualified = item.get("qualified_at")
        session.add(ReferralAttribution(
            **{f: item[f] for f in _FIELDS}, at=dt.datetime.fromisoformat(item["at"]),
            qualified_at=dt.datetime.fromisoformat(qualified) if qualified else None))
    session.flush()


def register() -> None:
    register_after_rows("referrals.attribute", _after_rows)
    register_after_change("referrals.qualify", _after_change)
    register_merge_hook("referral_attributions", _set_aside, _restore)
