"""``siyu referrals``: invite codes, channel codes (渠道活码) and the referral report."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from siyu.kit.cli import console, handle_errors, open_env, print_json

app = typer.Typer(help="Referral codes, channel codes and the referral report.",
                  no_args_is_help=True)
channel_app = typer.Typer(help="Channel codes (渠道活码) with a WeCom state.",
                          no_args_is_help=True)
app.add_typer(channel_app, name="channel-code")
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


@app.command("code")
@handle_errors
def code_command(ref: Annotated[str, typer.Argument(help="siyu id or kind:value")],
                 as_json: JsonOpt = False) -> None:
    """Show (creating on first ask) a customer's personal invite code."""
    from siyu.privacy.service import resolve_ref
    from siyu.referrals import service

    env = open_env()
    with env.sessions() as s:
        cid = resolve_ref(s, env.settings, ref)
        if cid is None:
            raise typer.BadParameter("that person was erased", param_hint="REF")
        row = service.personal_code(s, cid)
        s.commit()
        out = {"customer_id": cid, "code": row.code}
    if as_json:
        print_json(out)
    else:
        console.print(f"邀请码 {out['code']}")


@channel_app.command("create")
@handle_errors
def channel_create(name: Annotated[str, typer.Argument(help="campaign, store or advisor")],
                   state: Annotated[str | None, typer.Option(
                       "--state", help="WeCom state value (default <kind>_<code>)")] = None,
                   kind: Annotated[str, typer.Option(
                       "--kind", help="store, campaign or advisor")] = "campaign",
                   advisor: Annotated[str | None, typer.Option(
                       "--advisor", help="the staff username who receives the contacts "
                                         "(their WeCom userid)")] = None,
                   as_json: JsonOpt = False) -> None:
    """Create a channel code whose WeCom state attributes new contacts to it; with WeCom
    configured, also its 联系我 QR code (externalcontact/add_contact_way) for the advisor."""
    from sqlalchemy import select

    from siyu.auth.models import User
    from siyu.referrals import service

    env = open_env()
    with env.sessions() as s:
        advisor_id = None
        if advisor:
            advisor_id = s.scalar(select(User.id).where(User.username == advisor))
            if advisor_id is None:
                raise typer.BadParameter(f"no staff user {advisor!r}", param_hint="--advisor")
        row = service.create_channel_code(s, name, state=state, channel=kind,
                                          advisor_id=advisor_id, settings=env.settings)
        s.commit()
        out = {"code": row.code, "name": row.name, "channel": row.channel, "state": row.state,
               "advisor": advisor, "wecom_config_id": row.wecom_config_id,
               "wecom_qr_code": row.wecom_qr_code}
    if as_json:
        print_json(out)
    else:
        console.print(f"渠道码 {out['code']} ({out['name']}, state={out['state']})")
        if out["wecom_qr_code"]:
            console.print(f"企业微信「联系我」二维码 {out['wecom_qr_code']}")


@app.command("report")
@handle_errors
def report_command(as_json: JsonOpt = False) -> None:
    """Conversion by code, the top referrers first."""
    from siyu.referrals import service

    env = open_env()
    with env.sessions() as s:
        rows = [asdict(r) for r in service.report(s)]
    if as_json:
        print_json(rows)
        return
    table = Table("码", "类型", "名称/邀请人", "归因", "达成", "拒绝", "转化率")
    for r in rows:
        rate = "—" if r["conversion"] is None else f"{r['conversion'] * 100:.1f}%"
        table.add_row(r["code"], r["kind"], r["name"] or r["referrer_name"]
                      or str(r["referrer_id"] or ""), str(r["attributed"]),
                      str(r["qualified"]), str(r["refused"]), rate)
    console.print(table)
