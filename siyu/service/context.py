"""What the bot and the agent know about the customer when a message arrives: who they are,
their tier and advisor, recent orders and their status, and recent incidents (a failed
payment, a late delivery, an after-sales request) that probably explain why they write."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.models import User
from siyu.customers.models import Customer
from siyu.events.labels import order_status_zh
from siyu.events.models import Event, Order

# How far back an event still counts as "what just happened" (per event type).
INCIDENT_WINDOWS: dict[str, dt.timedelta] = {
    "payment_failed": dt.timedelta(hours=2),
    "delivery_delayed": dt.timedelta(days=3),
    "after_sales_request": dt.timedelta(days=7),
}
RECENT_ORDERS = 3
VIP_TIERS = ("VIP", "黑金", "金卡")


@dataclass(frozen=True)
class Incident:
    """A recent event worth addressing first."""

    type: str
    at: dt.datetime
    properties: dict[str, Any]


@dataclass
class CustomerContext:
    customer_id: int
    name: str | None
    gender: str | None
    tier: str | None
    advisor_id: int | None
    advisor_name: str | None
    points: Any
    orders: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    timezone: str = "Asia/Shanghai"
    # From the ledger (None for a customer without entries): what expires next and when,
    # what a point is worth, and the rewards the balance buys now.
    points_ledger: dict[str, Any] | None = None

    @property
    def is_vip(self) -> bool:
        return (self.tier or "") in VIP_TIERS

    @property
    def salutation(self) -> str:
        """How the bot addresses the customer: 林女士 / 王先生, or 您."""
        if not self.name:
            return "您"
        suffix = {"female": "女士", "f": "女士", "女": "女士", "male": "先生", "m": "先生",
                  "男": "先生"}.get((self.gender or "").lower())
        return f"{self.name[0]}{suffix}" if suffix else self.name

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(ZoneInfo(self.timezone))

    def placeholders(self) -> dict[str, Any]:
        """Values for answer templates."""
        last = self.orders[0] if self.orders else {}
        return {
            "name": self.name or "", "salutation": self.salutation, "tier": self.tier or "",
            "advisor": self.advisor_name or "专属顾问", "points": self.points if self.points
            is not None else "", "order_id": last.get("id", ""),
            "order_status": last.get("status_zh", ""), "order_time": last.get("time", ""),
            "order_amount": last.get("amount", ""),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "name": self.name, "tier": self.tier,
                "advisor": self.advisor_name, "points": self.points, "orders": self.orders,
                "incidents": [{"type": i.type, "at": i.at.isoformat(),
                               "properties": i.properties} for i in self.incidents]}


def _points(session: Session, customer_id: int, attrs: dict[str, Any]) -> Any:
    """The ledger's balance; an imported ``attributes["points"]`` for a customer without
    ledger entries (a brand that still imports a running figure)."""
    from siyu.points import service as points

    if points.has_entries(session, customer_id):
        return points.balance(session, customer_id)
    return attrs.get("points")


def _points_ledger(session: Session, customer_id: int, balance: Any, *, now: dt.datetime,
                   timezone: str) -> dict[str, Any] | None:
    """What the bot says of points beyond the balance: the next expiry, the worth of a
    point, up to three rewards the balance buys now (in stock, dearest first)."""
    from siyu.points import expiry
    from siyu.points import service as points
    from siyu.points.config import get_points_settings

    if not isinstance(balance, int) or not points.has_entries(session, customer_id):
        return None
    soon = expiry.expiring(session, customer_id, now, timezone=timezone)
    config = get_points_settings()
    affordable = [r for r in points.rewards(session)
                  if r["active"] and r["stock"] != 0 and int(r["cost"]) <= balance]  # type: ignore[call-overload]
    affordable.sort(key=lambda r: -int(r["cost"]))  # type: ignore[call-overload]
    return {"expiring": soon, "expire_after_years": config.points_expire_after_years,
            "yuan_per_point": config.points_yuan_per_point,
            "rewards": [(str(r["name"]), int(r["cost"])) for r in affordable[:3]]}  # type: ignore[call-overload]


def load_context(session: Session, customer_id: int, *, now: dt.datetime,
                 timezone: str = "Asia/Shanghai") -> CustomerContext:
    customer = session.get(Customer, customer_id)
    if customer is None:
        return CustomerContext(customer_id, None, None, None, None, None, None,
                               timezone=timezone)
    advisor = session.get(User, customer.advisor_id) if customer.advisor_id else None
    attrs = customer.attributes or {}
    ctx = CustomerContext(
        customer_id=customer_id, name=customer.name, gender=customer.gender,
        tier=customer.tier, advisor_id=customer.advisor_id,
        advisor_name=advisor.display_name if advisor is not None else None,
        points=_points(session, customer_id, attrs), timezone=timezone)
    ctx.points_ledger = _points_ledger(session, customer_id, ctx.points, now=now,
                                       timezone=timezone)
    tz = ZoneInfo(timezone)
    for order in session.scalars(select(Order).where(Order.customer_id == customer_id)
                                 .order_by(Order.ts.desc()).limit(RECENT_ORDERS)):
        ctx.orders.append({
            "id": order.id, "status": order.status, "status_zh": order_status_zh(order.status),
            "amount": f"{order.amount:,.2f}", "time": order.ts.astimezone(tz)
            .strftime("%m-%d %H:%M"), "at": order.ts})
    oldest = now - max(INCIDENT_WINDOWS.values())
    rows = session.scalars(select(Event).where(
        Event.customer_id == customer_id, Event.type.in_(INCIDENT_WINDOWS),
        Event.ts >= oldest, Event.ts <= now).order_by(Event.ts.desc()))
    for event in rows:
        if now - event.ts <= INCIDENT_WINDOWS[event.type]:
            ctx.incidents.append(Incident(event.type, event.ts, dict(event.properties or {})))
    return ctx


def incident_sentence(ctx: CustomerContext, incident: Incident) -> str:
    """The bot's opening line about what just went wrong, in the brand's voice."""
    p = incident.properties
    at = ctx.local(incident.at).strftime("%H:%M")
    if incident.type == "payment_failed":
        reason = p.get("reason")
        amount = p.get("amount")
        money = f"（¥{float(amount):,.2f}）" if isinstance(amount, int | float) else ""
        why = f"，原因是「{reason}」" if reason else ""
        return (f"{ctx.salutation}您好，看到您刚才 {at} 的付款{money}没有成功{why}。"
                "订单已为您保留 30 分钟，可以换一张银行卡或改用微信支付重新付款；"
                "如果需要，我也可以帮您转给专属顾问处理。")
    if incident.type == "delivery_delayed":
        carrier = p.get("carrier", "快递")
        parcel = p.get("parcel_no")
        late = p.get("days_late")
        detail = f"（{carrier} {parcel}）" if parcel else f"（{carrier}）"
        delay = f"比预计晚了 {late} 天" if late else "有些延误"
        return (f"{ctx.salutation}您好，非常抱歉，您的包裹{detail}{delay}，"
                "我们已经在催促物流加急派送，预计 1-2 天内送达。")
    if incident.type == "after_sales_request":
        return (f"{ctx.salutation}您好，您 {ctx.local(incident.at).strftime('%m-%d')} "
                "提交的售后申请我们正在处理，很抱歉让您久等了。")
    return ""
