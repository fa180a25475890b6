"""``siyu groups``: WeCom customer groups (客户群) — the list with each group's activity,
one group with its members (phone numbers masked, as everywhere on the command line), and a
full sync from WeCom through the durable job."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from siyu.kit.cli import console, handle_errors, open_env, print_json

app = typer.Typer(help="WeCom customer groups (客户群): list, show, sync.",
                  no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
STATUS_ZH = {"active": "正常", "dismissed": "已解散"}
KIND_ZH = {"external": "客户", "employee": "员工"}


@app.command("list")
@handle_errors
def list_groups(as_json: JsonOpt = False) -> None:
    """Every group: members now, customers linked, joins and leaves in 7 and 30 days, group
    mass sends in 30 days (created: tasks WeCom accepted; sent: confirmed by the owner)."""
    from siyu.groups import service

    env = open_env()
    with env.sessions() as s:
        rows = service.overview(s)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("还没有客户群：运行 siyu groups sync 从企业微信读取")
        return
    table = Table("群", "群聊 ID", "群主", "状态", "客户", "已关联", "员工", "7天入/退",
                  "30天入/退", "7天活跃", "30天群发")
    for r in rows:
        table.add_row(r["name"] or "（未命名）", r["chat_id"], r["owner"] or "",
                      STATUS_ZH.get(r["status"], r["status"]), str(r["external"]),
                      str(r["members"]), str(r["employees"]),
                      f"+{r['joined_7d']} / -{r['left_7d']}",
                      f"+{r['joined_30d']} / -{r['left_30d']}", str(r["active"]),
                      f"{r['mass_sends_30d']['sent']}/{r['mass_sends_30d']['created']}")
    console.print(table)


@app.command("show")
@handle_errors
def show(ref: Annotated[str, typer.Argument(help="the group's chat id or name")],
         as_json: JsonOpt = False) -> None:
    """One group and its members (phone numbers and e-mail addresses masked)."""
    from siyu.groups import service

    env = open_env()
    with env.sessions() as s:
        out = service.detail(s, ref, show_pii=False)
    if as_json:
        print_json(out)
        return
    console.print(f"客户群「{out['name'] or '（未命名）'}」 {out['chat_id']}  群主 "
                  f"{out['owner'] or '—'}  {STATUS_ZH.get(out['status'], out['status'])}；"
                  f"客户 {out['external']}（已关联 {out['members']}），员工 "
                  f"{out['employees']}；7 天 +{out['joined_7d']} / -{out['left_7d']}，"
                  f"30 天 +{out['joined_30d']} / -{out['left_30d']}",
                  highlight=False, markup=False)
    table = Table("成员", "类型", "客户", "手机", "入群", "退群")
    for m in out["member_list"]:
        who = (m["name"] or "（未命名）") + f" #{m['customer_id']}" if m["customer_id"] else ""
        table.add_row(m["userid"], KIND_ZH.get(m["kind"], m["kind"]), who, m["phone"] or "",
                      m["joined_at"][:16].replace("T", " "),
                      (m["left_at"] or "")[:16].replace("T", " "))
    console.print(table)


@app.command("sync")
@handle_errors
def sync(wait: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="run the sync here and now (default), or only queue it for "
                                 "the worker")] = True,
         as_json: JsonOpt = False) -> None:
    """Read every group from WeCom (groupchat/list, then groupchat/get for each), through
    the durable job: members who joined or left since the last look reach the timelines."""
    from siyu.groups import tasks

    env = open_env()
    tasks.require_wecom(env.settings)
    with env.session() as s:
        tasks.queue_full_sync(s)
    out: dict[str, Any] = {"queued": True}
    if wait:
        out.update(tasks.run_sync_jobs(env.sessions))
    if as_json:
        print_json(out)
    elif not wait:
        console.print("已排队：worker 会从企业微信同步全部客户群")
    else:
        console.print(f"已同步 {out['groups']} 个客户群（任务 {out['done']} 个完成，"
                      f"{out['retried']} 个待重试，{out['failed']} 个失败）", highlight=False)
        if out.get("error"):
            console.print(f"[red]error:[/red] {out['error']}", highlight=False)
            raise typer.Exit(1)
