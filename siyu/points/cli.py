"""``siyu points``: award, balance and history on the points ledger."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.kit.cli import console, handle_errors, open_env, print_json

app = typer.Typer(help="The points ledger: award, balance, history.", no_args_is_help=True)
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
        cid = _customer(s, env.settings, ref)
        out = {"customer_id": cid, "balance": service.balance(s, cid)}
    if as_json:
        print_json(out)
    else:
        console.print(f"积分余额 {out['balance']}")


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
