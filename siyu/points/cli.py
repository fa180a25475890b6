"""``siyu points``: award, balance and history on the points ledger; rewards and
redemption; expiry and the liability report."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.kit.cli import console, handle_errors, open_env, print_json

app = typer.Typer(help="The points ledger: award, balance, history, rewards and redemption.",
                  no_args_is_help=True)
RefArg = Annotated[str, typer.Argument(help="siyu id or kind:value")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def _customer(session: Session, settings: Settings, ref: str) -> int:
    from siyu.privacy.service import resolve_ref

    cid = resolve_ref(session, settings, ref)
    if cid is None:
        raise typer.BadParameter("that person was erased", param_hint="REF")
    return cid


@app.command("award")
@handle_errors
def award(ref: RefArg, amount: Annotated[int, typer.Argument(help="points (negative: deduct)")],
          key: Annotated[str, typer.Option("--key", help="idempotency key (unique per award)")],
          reason: Annotated[str | None, typer.Option("--reason")] = None,
          as_json: JsonOpt = False) -> None:
    """Award points once per --key (source ``manual``)."""
    from siyu.points import service

    env = open_env()
    with env.sessions() as s:
        cid = _customer(s, env.settings, ref)
        entry = service.add_entry(s, cid, amount, source="manual", key=key, reason=reason)
        s.commit()
        out = {"customer_id": cid, "entry_id": entry.id, "created": entry.created,
               "balance": service.balance(s, cid)}
    if as_json:
        print_json(out)
    else:
        console.print(("已记入" if out["created"] else "已存在，未重复记入")
                      + f"；余额 {out['balance']}")


@app.command("balance")
@handle_errors
def balance(ref: RefArg, as_json: JsonOpt = False) -> None:
    """The customer's points balance."""
    from siyu.points import service

    env = open_env()
    with env.sessions() as s:
        from siyu.points import expiry

        cid = _customer(s, env.settings, ref)
        soon = expiry.expiring(s, cid, timezone=env.settings.timezone)
        out = {"customer_id": cid, "balance": service.balance(s, cid),
               "expiring": soon.to_dict()}
    if as_json:
        print_json(out)
    else:
        tail = (f"；{soon.points} 积分将于 {soon.last_day} 后过期" if soon.points else "")
        console.print(f"积分余额 {out['balance']}{tail}", highlight=False)


@app.command("history")
@handle_errors
def history(ref: RefArg, limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
            as_json: JsonOpt = False) -> None:
    """The customer's latest ledger entries, newest first."""
    from siyu.points import service

    env = open_env()
    with env.sessions() as s:
        cid = _customer(s, env.settings, ref)
        rows: list[dict[str, Any]] = [
            {"at": e.at.isoformat(), "amount": e.amount, "source": e.source, "key": e.key,
             "reason": e.reason} for e in service.entries(s, cid, limit=limit)]
    if as_json:
        print_json(rows)
        return
    table = Table("时间", "积分", "来源", "说明")
    for r in rows:
        table.add_row(r["at"][:16], str(r["amount"]), r["source"], r["reason"] or "")
    console.print(table)


@app.command("reward")
@handle_errors
def reward(name: Annotated[str, typer.Argument(help="reward name, e.g. 50 元优惠券")],
           cost: Annotated[int, typer.Argument(help="price in points")],
           stock: Annotated[int | None, typer.Option(help="units left (omit: unlimited)")]
           = None,
           as_json: JsonOpt = False) -> None:
    """Put a reward in the catalogue, or change its price and stock."""
    from siyu.points import service

    env = open_env()
    with env.sessions() as s:
        rid = service.add_reward(s, name, cost, stock=stock)
        s.commit()
    if as_json:
        print_json({"id": rid, "name": name, "cost": cost, "stock": stock})
    else:
        console.print(f"奖品「{name}」：{cost} 积分，库存 {'不限' if stock is None else stock}",
                      highlight=False)


@app.command("rewards")
@handle_errors
def rewards(as_json: JsonOpt = False) -> None:
    """The rewards catalogue."""
    from siyu.points import service

    env = open_env()
    with env.sessions() as s:
        rows = service.rewards(s)
    if as_json:
        print_json(rows)
        return
    table = Table("奖品", "积分", "库存")
    for r in rows:
        table.add_row(str(r["name"]), str(r["cost"]),
                      "不限" if r["stock"] is None else str(r["stock"]))
    console.print(table)


@app.command("redeem")
@handle_errors
def redeem(ref: RefArg, reward_name: Annotated[str, typer.Argument(help="reward name")],
           key: Annotated[str, typer.Option("--key", help="idempotency key (one per request)")],
           as_json: JsonOpt = False) -> None:
    """Redeem a reward for the customer once per --key: all or nothing."""
    from siyu.points import service

    env = open_env()
    with env.sessions() as s:
        cid = _customer(s, env.settings, ref)
        result = service.redeem(s, cid, reward_name, key=key)
        s.commit()
    out = {"customer_id": cid, "redemption_id": result.redemption_id, "reward": result.reward,
           "cost": result.cost, "balance": result.balance, "created": result.created}
    if as_json:
        print_json(out)
    else:
        console.print(("已兑换" if result.created else "已兑换过，未重复扣分")
                      + f"「{result.reward}」；余额 {result.balance}", highlight=False)


def _now(value: str | None) -> Any:
    import datetime as dt

    from siyu.db import utcnow

    if not value:
        return utcnow()
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("an ISO 8601 time, e.g. 2027-01-01T00:10:00+08:00",
                                 param_hint="--now") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


NowOpt = Annotated[str | None, typer.Option("--now", help="as of this ISO time (default: now)")]


@app.command("expire")
@handle_errors
def expire(now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """Write the expiry entries of every cutoff passed (SIYU_POINTS_EXPIRE_AFTER_YEARS);
    a re-run writes nothing. The daily job ``points.expire`` does the same."""
    from siyu.points import expiry

    moment = _now(now)
    env = open_env()
    with env.sessions() as s:
        result = expiry.expire(s, now=moment, timezone=env.settings.timezone)
        s.commit()
    out = result.to_dict()
    if as_json:
        print_json(out)
    elif not out["years"]:
        console.print("积分不过期，或还没有到期的年份", highlight=False)
    else:
        console.print(f"已处理 {out['years'][0]}–{out['years'][-1]} 年获得的积分：过期 "
                      f"{out['points']} 积分，{out['entries']} 条记录", highlight=False)


@app.command("liability")
@handle_errors
def liability(now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """Points outstanding and their value, what expires next, the last 30 days' movement."""
    from siyu.points import expiry

    moment = _now(now)
    env = open_env()
    with env.sessions() as s:
        out = expiry.liability(s, now=moment, timezone=env.settings.timezone)
    if as_json:
        print_json(out)
        return
    table = Table("项目", "数值")
    table.add_row("未使用积分", f"{out['outstanding']}（{out['holders']} 位客户）")
    table.add_row("折合金额", f"¥{out['value_yuan']:,.2f}")
    exp = out["expiring"]
    table.add_row("下次到期", "不过期" if exp["last_day"] is None
                  else f"{exp['points']} 积分，{exp['last_day']} 后过期")
    table.add_row("积分为负的客户", f"{out['in_debt']} 位，共欠 {out['owed']} 积分")
    table.add_row(f"近 {out['days']} 天获得", str(out["earned"]))
    table.add_row(f"近 {out['days']} 天兑换", str(out["redeemed"]))
    table.add_row(f"近 {out['days']} 天过期", str(out["expired"]))
    table.add_row(f"近 {out['days']} 天退款收回", str(out["reversed"]))
    console.print(table)
