"""Console page 积分 (/points): the liability figures, the rewards catalogue with its stock
(administrators and operators add rewards and change price and stock), redeeming a reward
for a customer (look the customer up, confirm, done — once per confirmation), and the
latest redemptions; and the 积分 card on the customer 360 page.

Everyone with ``customers.read`` opens the page; the liability figures need
``analytics.read``, changing the catalogue and redeeming ``points.write``. Phone numbers
and e-mail addresses are masked for roles without ``pii.read``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.panels import register_customer_panel
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.errors import InvalidInput, NotFound, SiyuError
from siyu.kit import masking
from siyu.kit.timeutil import display
from siyu.kit.web import get_session
from siyu.points import expiry, service

_HERE = Path(__file__).resolve().parent
READ, WRITE, REPORT = "customers.read", "points.write", "analytics.read"
PATH = "/points"
HISTORY_ROWS = 5

register_nav("积分", PATH, READ, order=38)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _timezone(request: Request) -> str:
    return str(request.app.state.settings.timezone)


def _day(value: str | None) -> str:
    if not value:
        return ""
    year, month, day = (int(x) for x in value.split("-"))
    return f"{year} 年 {month} 月 {day} 日"


def panel_rows(session: Session, customer_id: int) -> list[dict[str, str]]:
    """The 积分 card on the 360: the balance, what expires when, the latest entries (their
    reasons with phone numbers and e-mail addresses masked: the card does not know the
    reader's role)."""
    from siyu.config import get_settings

    if not service.has_entries(session, customer_id):
        return []
    tz = get_settings().timezone
    view = service.summary(session, customer_id, limit=HISTORY_ROWS, timezone=tz)
    rows = [{"label": "积分余额", "value": f"{view['balance']} 积分",
             "why": "积分为负：退款收回了已使用的积分，补足前不能兑换" if view["blocked"] else ""}]
    soon = view["expiring"]
    if soon["last_day"] is not None:
        rows.append({"label": "即将过期", "value": f"{soon['points']} 积分",
                     "why": f"{_day(soon['last_day'])}后过期" if soon["points"]
                     else f"到 {_day(soon['last_day'])} 没有到期的积分"})
    for e in view["history"]:
        sign = "+" if e["amount"] > 0 else ""
        rows.append({"label": f"{display(e['at'], tz)} {e['source_label']}",
                     "value": f"{sign}{e['amount']}",
                     "why": masking.mask_text(e["reason"] or "")})
    return rows


register_customer_panel("points", "积分", panel_rows, READ, order=15,
                        empty="暂无积分记录")


def _lookup(session: Session, request: Request, ref: str) -> dict[str, Any]:
    """The customer a staff member typed (siyu id, phone, or kind:value), for the
    confirmation: name, masked phone, balance."""
    from siyu.customers import service as customers
    from siyu.customers.errors import CustomerNotFound
    from siyu.privacy import service as privacy

    ref = (ref or "").strip()
    if not ref:
        raise InvalidInput("请填写客户：客户编号、手机号，或 类型:值（如 phone:13800138000）",
                           details=[{"field": "customer", "reason": "required"}])
    if ref.isdigit() and len(ref) == 11 and ref.startswith("1"):
        ref = f"phone:{ref}"  # a mainland mobile number, as staff type it
    try:
        cid = privacy.resolve_ref(session, request.app.state.settings, ref)
        view = customers.get_customer_360(session, cid) if cid else None
    except (CustomerNotFound, NotFound, InvalidInput):
        view = None
    if view is None:
        raise NotFound(f"没有找到客户「{ref}」：请检查客户编号或手机号",
                       details=[{"field": "customer", "reason": "not found"}])
    phone = next((i for i in view.get("identities", []) if i.get("kind") == "phone"), None)
    return {"id": int(view["id"]), "name": view["profile"].get("name") or "（未命名）",
            "phone": (phone or {}).get("value"),
            "balance": service.balance(session, int(view["id"]))}


def overview(session: Session, user: StaffUser, *, timezone: str) -> dict[str, Any]:
    from siyu.privacy import service as privacy

    masker = privacy.masker(user.role)
    recent = service.recent_redemptions(session, limit=20)
    for r in recent:
        r["customer"] = masker.text(r["customer"] or "（未命名）")
    report = expiry.liability(session, timezone=timezone) if user.can(REPORT) else None
    if report is not None:
        report["expiring"]["last_day_zh"] = _day(report["expiring"]["last_day"])
    return {"report": report, "rewards": service.rewards(session), "recent": recent,
            "can_write": user.can(WRITE)}


@router.get(PATH)
def points_page(request: Request, customer: str = Query("", max_length=100),
                reward_id: int | None = Query(None, ge=1, le=2**63 - 1),
                user: StaffUser = Depends(permitted(READ)),
                session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    """The page; with ``customer`` and ``reward_id`` (the redeem form), the confirmation."""
    from siyu.points.models import Reward
    from siyu.privacy import service as privacy

    context = overview(session, user, timezone=_timezone(request))
    context.update({"confirm": None, "redeem_error": None, "customer_ref": customer,
                    "reward_id": reward_id})
    if (customer or reward_id) and context["can_write"]:
        try:
            who = _lookup(session, request, customer)
            reward = session.get(Reward, reward_id) if reward_id else None
            if reward is None or not reward.active:
                raise InvalidInput("请选择要兑换的奖品",
                                   details=[{"field": "reward_id", "reason": "required"}])
            problem = None
            if reward.stock == 0:
                problem = f"「{reward.name}」已兑完，库存不足"
            elif who["balance"] < reward.cost:
                problem = service.short_message(who["balance"], reward.cost)
            masker = privacy.masker(user.role)
            context["confirm"] = {
                "customer": who, "phone": masker.identity("phone", who["phone"])
                if who["phone"] else None, "reward": service.reward_dict(reward),
                "after": who["balance"] - reward.cost, "problem": problem,
                "key": f"console:{secrets.token_urlsafe(12)}"}
        except SiyuError as exc:
            context["redeem_error"] = exc.message
    return pages.render(request, user, _HERE / "templates", "points/index.html", context)


def _done(request: Request, text: str, kind: str = "ok", anchor: str = "") -> Response:
    request.session["flash"] = {"kind": kind, "text": text}
    return RedirectResponse(f"{PATH}{anchor}", status_code=303)


@router.post(f"{PATH}/redeem")
def redeem_action(request: Request, customer_id: int = Form(..., ge=1, le=2**63 - 1),
                  reward_id: int = Form(..., ge=1, le=2**63 - 1),
                  key: str = Form(..., min_length=1, max_length=200),
                  user: StaffUser = Depends(permitted(WRITE)), _: None = Depends(check_csrf),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    """Redeem once per confirmation (its key): a second click is not a second redemption."""
    from siyu.customers.models import Customer

    try:
        result = service.redeem(session, customer_id, None, reward_id=reward_id, key=key)
        session.commit()
    except SiyuError as exc:
        session.rollback()
        return _done(request, f"未兑换：{exc.message}", "error", "#redeem")
    row = session.get(Customer, customer_id)
    name = (row.name if row is not None else None) or f"#{customer_id}"
    if not result.created:
        return _done(request, f"这次兑换已完成过，未重复扣分；{name} 的积分余额 {result.balance}",
                     "ok", "#recent")
    return _done(request, f"已为 {name} 兑换「{result.reward}」，扣 {result.cost} 积分，"
                          f"积分余额 {result.balance}", "ok", "#recent")


def _stock(value: str) -> int | None:
    value = (value or "").strip()
    if value in ("", "不限"):
        return None
    if not value.isdigit():
        raise InvalidInput("库存：请填写不小于 0 的整数，留空表示不限",
                           details=[{"field": "stock", "reason": "not a whole number"}])
    return int(value)


@router.post(f"{PATH}/rewards")
def reward_action(request: Request, name: str = Form("", max_length=100),
                  cost: str = Form("", max_length=12), stock: str = Form("", max_length=12),
                  user: StaffUser = Depends(permitted(WRITE)), _: None = Depends(check_csrf),
                  session: Session = Depends(get_session, scope="function")) -> Response:
    try:
        if not cost.strip().isdigit():
            raise InvalidInput("所需积分：请填写 1 以上的整数",
                               details=[{"field": "cost", "reason": "not a whole number"}])
        service.add_reward(session, name, int(cost), stock=_stock(stock))
        session.commit()
    except SiyuError as exc:
        session.rollback()
        return _done(request, f"未保存：{exc.message}", "error", "#rewards")
    return _done(request, f"已保存奖品「{name.strip()}」", "ok", "#rewards")


@router.post(f"{PATH}/rewards/{{reward_id}}")
def reward_update_action(request: Request, reward_id: int,
                         cost: str = Form("", max_length=12),
                         stock: str = Form("", max_length=12),
                         active: str = Form("1", max_length=1),
                         user: StaffUser = Depends(permitted(WRITE)),
                         _: None = Depends(check_csrf),
                         session: Session = Depends(get_session, scope="function")
                         ) -> Response:
    try:
        if cost.strip() and not cost.strip().isdigit():
            raise InvalidInput("所需积分：请填写 1 以上的整数",
                               details=[{"field": "cost", "reason": "not a whole number"}])
        row = service.update_reward(session, reward_id,
                                    cost=int(cost) if cost.strip() else None,
                                    stock=_stock(stock), active=active == "1")
        session.commit()
    except SiyuError as exc:
        session.rollback()
        return _done(request, f"未保存：{exc.message}", "error", "#rewards")
    left = "不限" if row["stock"] is None else row["stock"]
    return _done(request, f"已更新「{row['name']}」：{row['cost']} 积分，库存 {left}", "ok",
                 "#rewards")

