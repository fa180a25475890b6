"""A customer's timeline for the 360 page: orders, events and merges in four groups
(orders / service / marketing / system), filtered by group, paginated, and grouped by the
brand's local day.

A loyal customer has hundreds of entries; the page shows one page of one group. Counting
and paging happen in SQL per source (orders, events of the group's types, merges); the
newest ``page * per_page`` of each source are enough to cut the page out of their union.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from siyu.customers.identity import canonical_customer_id
from siyu.customers.models import Merge
from siyu.events.labels import event_type_zh, order_status_zh
from siyu.events.models import Event, Order
from siyu.kit import labels
from siyu.kit.timeutil import local

ORDERS, SERVICE, MARKETING, SYSTEM = "orders", "service", "marketing", "system"
CATEGORIES: dict[str, str] = {ORDERS: "订单", SERVICE: "服务", MARKETING: "营销互动",
                              SYSTEM: "系统"}
# Event types of each group; any other type (app logins, phone binding, types a brand adds)
# is a system entry.
EVENT_CATEGORIES: dict[str, tuple[str, ...]] = {
    ORDERS: ("payment_failed", "delivery_delayed", "add_to_cart", "order_status_changed"),
    SERVICE: ("after_sales_request", "feedback", "survey_response", "complaint",
              "conversation_closed", "csat", "phone_call"),
    MARKETING: ("coupon_received", "coupon_used", "points_earned", "points_redeemed",
                "live_stream_view", "share_product", "invite_friend", "join_group",
                "add_wecom_contact", "view_product"),
}
_KNOWN = tuple(t for types in EVENT_CATEGORIES.values() for t in types)
WEEKDAYS_ZH = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


def category_of_event(event_type: str) -> str:
    for category, types in EVENT_CATEGORIES.items():
        if event_type in types:
            return category
    return SYSTEM


def _event_filter(category: str | None) -> ColumnElement[bool] | None:
    if category is None:
        return None
    if category == SYSTEM:
        return not_(Event.type.in_(_KNOWN))
    return Event.type.in_(EVENT_CATEGORIES.get(category, ()))


@dataclass(frozen=True)
class TimelinePage:
    entries: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    counts: dict[str, int]  # per group, and "all"


def timeline_page(session: Session, customer_id: int, *, category: str | None = None,
                  page: int = 1, per_page: int = 30) -> TimelinePage:
    """One page of the customer's entries of ``category`` (``None``: all), newest first,
    with the size of every group. A page past the end is the last page."""
    if category is not None and category not in CATEGORIES:
        category = None
    cid = canonical_customer_id(session, customer_id)
    n_orders = int(session.scalar(select(func.count()).select_from(Order)
                                  .where(Order.customer_id == cid)) or 0)
    n_merges = int(session.scalar(select(func.count()).select_from(Merge).where(
        or_(Merge.kept_id == cid, Merge.merged_id == cid))) or 0)
    by_type = dict(session.execute(select(Event.type, func.count()).where(
        Event.customer_id == cid).group_by(Event.type)).all())
    counts = {c: 0 for c in CATEGORIES}
    for event_type, n in by_type.items():
        counts[category_of_event(event_type)] += int(n)
    counts[ORDERS] += n_orders
    counts[SYSTEM] += n_merges
    counts["all"] = sum(counts[c] for c in CATEGORIES)

    total = counts["all"] if category is None else counts[category]
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    need = page * per_page
    entries: list[dict[str, Any]] = []
    if category in (None, ORDERS):
        for order in session.scalars(select(Order).where(Order.customer_id == cid)
                                     .order_by(Order.ts.desc(), Order.id.desc()).limit(need)):
            entries.append({"kind": "order", "category": ORDERS, "at": order.ts,
                            "id": order.id, "title": "订单",
                            "summary": f"订单 {order.id} · {order_status_zh(order.status)} · "
                                       f"¥{order.amount:.2f}",
                            "channel": order.channel})
    stmt = select(Event).where(Event.customer_id == cid)
    where = _event_filter(category)
    if where is not None:
        stmt = stmt.where(where)
    for event in session.scalars(stmt.order_by(Event.ts.desc(), Event.id.desc()).limit(need)):
        entries.append({"kind": "event", "category": category_of_event(event.type),
                        "at": event.ts, "id": event.id, "title": event_type_zh(event.type),
                        "summary": event_type_zh(event.type), "channel": event.channel})
    if category in (None, SYSTEM):
        for merge in session.scalars(select(Merge).where(
                or_(Merge.kept_id == cid, Merge.merged_id == cid))
                .order_by(Merge.created_at.desc()).limit(need)):
            entries.append({"kind": "merge", "category": SYSTEM, "at": merge.created_at,
                            "id": str(merge.id), "title": "合并",
                            "summary": f"合并客户 #{merge.merged_id} → #{merge.kept_id}："
                                       f"{labels.merge_reason(merge.reason)}",
                            "channel": None})
    entries.sort(key=lambda e: _aware(e["at"]), reverse=True)
    return TimelinePage(entries[(page - 1) * per_page:need], total, page, pages, counts)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def by_day(entries: list[dict[str, Any]], tz_name: str) -> list[dict[str, Any]]:
    """Consecutive entries grouped under their local day: ``[{"day", "label", "entries"}]``,
    each entry gaining its local ``time`` (HH:MM)."""
    days: list[dict[str, Any]] = []
    for entry in entries:
        at = local(_aware(entry["at"]), tz_name)
        day = at.date()
        if not days or days[-1]["day"] != day:
            days.append({"day": day, "label": f"{day.isoformat()} {WEEKDAYS_ZH[day.weekday()]}",
                         "entries": []})
        days[-1]["entries"].append({**entry, "time": at.strftime("%H:%M")})
    return days
