"""The demo brand's saved segments (人群), so the segments page, the sizes over time and the
entry/exit history show something from the start.

Each rule uses data the generator makes: RFM tiers and lifecycle stages from the scores,
membership tiers, tags, WeCom contacts and behaviour windows over orders and events.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.segments import service as segments
from siyu.segments.models import Segment

DEMO_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("高价值复购客户", 'rfm_tier = "VIP" and orders(last 90d) >= 2'),
    ("衰退期待唤醒", 'lifecycle = "decline" and spend >= 500 and not tag("投诉中")'),
    ("售后与投诉关怀", 'tag("投诉中") or event("after_sales_request", last 30d) >= 1'),
    ("企微新客培育", 'lifecycle = "acquisition" and has(wecom_external_userid)'),
    ("推荐达人", 'event("invite_friend", last 180d) >= 1 and lifecycle in ("growth", "maturity")'),
    ("高端会员", 'tier in ("金卡", "黑金") and last_order_days <= 120'),
)


def refresh_demo_segments(session: Session, *, now: dt.datetime, timezone: str) -> int:
    """Create the demo segments that do not exist yet and refresh the others, all as of
    ``now`` (the seed calls this at each month end of its score history, so the sizes over
    time are real sizes at those moments). Returns how many segments there are."""
    existing = {name: sid for sid, name in session.execute(select(Segment.id, Segment.name))}
    for name, rule in DEMO_SEGMENTS:
        if name in existing:
            segments.refresh_segment(session, existing[name], now=now, timezone=timezone)
        else:
            segments.create_segment(session, name, rule, created_by="demo", now=now,
                                    timezone=timezone)
    return len(DEMO_SEGMENTS)
