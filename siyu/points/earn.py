"""Earn rules beyond purchases: a daily check-in (签到), a completed survey and a review.
Functions take the caller's session and never commit.

Each award is one ledger entry, idempotent by source and key (:func:`service.add_entry`):

* check-in — source ``checkin``, key ``<customer id>:<brand-local date>``: once per local
  day however often the customer taps 签到 (the API or the web chat bot);
* survey — source ``survey``, key the response id: once per completed response;
* review — source ``review``, key the event id: once per ``review`` / ``feedback`` event
  with a text, however often the event is re-sent.

The amounts are settings (:mod:`siyu.points.config`: ``SIYU_POINTS_CHECKIN``,
``SIYU_POINTS_SURVEY_ANSWER``, ``SIYU_POINTS_REVIEW``; 0 turns a rule off).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.errors import Conflict
from siyu.points import service
from siyu.points.config import get_points_settings

CHECKIN, SURVEY, REVIEW = "checkin", "survey", "review"
REVIEW_EVENTS = frozenset({"review", "feedback"})


class CheckInOff(Conflict):
    code = "checkin_off"


@dataclass(frozen=True)
class CheckIn:
    customer_id: int
    day: dt.date
    points: int
    created: bool
    """False: the customer had already checked in that day (nothing written)."""
    balance: int


def check_in(session: Session, customer_id: int, *, now: dt.datetime | None = None,
             timezone: str = "Asia/Shanghai") -> CheckIn:
    """The customer checks in (签到): ``SIYU_POINTS_CHECKIN`` points once per day in the
    brand's time zone; a second check-in the same day writes nothing and says so
    (``created`` false, ``points`` what the first one earned). :class:`CheckInOff` when the
    rule is off."""
    amount = get_points_settings().points_checkin
    moment = now or utcnow()
    day = moment.astimezone(ZoneInfo(timezone)).date()
    key = f"{customer_id}:{day.isoformat()}"
    if amount <= 0:
        raise CheckInOff("签到积分未开启（SIYU_POINTS_CHECKIN 为 0）",
                         details=[{"field": "checkin", "reason": "off"}])
    entry = service.add_entry(session, customer_id, amount, source=CHECKIN, key=key,
                              reason=f"{day.month} 月 {day.day} 日签到", at=moment)
    return CheckIn(customer_id, day, entry.amount, entry.created,
                   service.balance(session, customer_id))


def for_survey(session: Session, customer_id: int | None, response_id: int, *,
               survey_title: str | None = None, at: dt.datetime | None = None
               ) -> service.Entry | None:
    """A completed survey response of a known customer earns ``SIYU_POINTS_SURVEY_ANSWER``
    points, once per response (None: off, or an anonymous response)."""
    amount = get_points_settings().points_survey_answer
    if amount <= 0 or customer_id is None:
        return None
    reason = f"完成问卷「{survey_title}」" if survey_title else "完成问卷"
    return service.add_entry(session, customer_id, amount, source=SURVEY,
                             key=str(response_id), reason=reason[:200], at=at)


def is_review(row: dict[str, Any]) -> bool:
    text = (row.get("properties") or {}).get("text")
    return row.get("type") in REVIEW_EVENTS and isinstance(text, str) and bool(text.strip())


def for_reviews(session: Session, rows: list[dict[str, Any]]) -> int:
    """Ingested events: each review (see :func:`is_review`) earns ``SIYU_POINTS_REVIEW``
    points once per event id. Returns how many entries were new."""
    amount = get_points_settings().points_review
    if amount <= 0:
        return 0
    new = 0
    for row in rows:
        if not is_review(row) or row.get("customer_id") is None or not row.get("id"):
            continue
        ts = row.get("ts")
        entry = service.add_entry(session, int(row["customer_id"]), amount, source=REVIEW,
                                  key=str(row["id"])[:200], reason="发表评价",
                                  at=ts if isinstance(ts, dt.datetime) else None)
        new += entry.created
    return new
