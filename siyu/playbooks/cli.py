"""``siyu playbooks`` (apply, list, show, pause, resume, dry-run, stats) and ``siyu policy``
(show, apply)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siyu.kit.cli import console, err_console, handle_errors, open_env, print_json
from siyu.playbooks import service
from siyu.playbooks.errors import InvalidPlaybook

app = typer.Typer(help="SOP playbooks (剧本): apply files, pause, preview and measure them.",
                  no_args_is_help=True)
policy_app = typer.Typer(help="The contact policy (触达策略): quiet hours, caps, consent.",
                         no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        err_console.print(f"[red]error:[/red] cannot read {path}: {exc.strerror}")
        raise typer.Exit(2) from None


@app.command("apply")
@handle_errors
def apply_command(file: Annotated[Path, typer.Argument(help="a playbook .yaml or .json")],
                  json_out: JsonOpt = False) -> None:
    """Create or update the playbook in FILE (the file is the whole truth, status included)."""
    text = _read(file)
    env = open_env()
    try:
        with env.session() as session:
            result = service.apply(session, text, file=str(file), actor="cli")
    except InvalidPlaybook as exc:
        for p in exc.problems:
            where = f" {p['step']}" if p.get("step") else ""
            err_console.print(f"[red]error:[/red] {exc.file}{where}: {p['reason']}",
                              highlight=False)
        raise typer.Exit(2) from None
    if json_out:
        print_json(result)
    else:
        state = "updated" if result["changed"] else "unchanged"
        console.print(f"{result['name']}: version {result['version']} ({state})")


@app.command("list")
@handle_errors
def list_command(json_out: JsonOpt = False) -> None:
    """Every playbook with its counters."""
    env = open_env()
    with env.session() as session:
        rows = service.list_playbooks(session)
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("名称", "状态", "优先级", "版本", "进入", "进行中", "已发送", "达成目标")
    for r in rows:
        table.add_row(r["name"], r["status"], str(r["priority"]), str(r["version"]),
                      str(r["entered"]), str(r["in_flight"]), str(r["sent"]),
                      str(r["goal_reached"]))
    console.print(table)


@app.command("show")
@handle_errors
def show_command(name: str, json_out: JsonOpt = False) -> None:
    """The playbook's current file and its versions."""
    env = open_env()
    with env.session() as session:
        data = service.show(session, name)
    if json_out:
        print_json(data)
        return
    console.print(f"{data['name']}  v{data['version']}  {data['status']}", highlight=False)
    console.print(data["source"], highlight=False, markup=False)


@app.command("pause")
@handle_errors
def pause_command(name: Annotated[str | None, typer.Argument()] = None,
                  all_: Annotated[bool, typer.Option("--all", help="hold every outbound "
                                                     "marketing message")] = False) -> None:
    """Pause a playbook (its runs wait), or with --all hold all outbound marketing."""
    env = open_env()
    with env.session() as session:
        if all_:
            service.pause_all(session, True)
            console.print("all outbound marketing paused")
            return
        if not name:
            err_console.print("[red]error:[/red] name a playbook or give --all")
            raise typer.Exit(2)
        result = service.set_status(session, name, "paused")
    console.print(f"{name}: paused (version {result['version']})")


@app.command("resume")
@handle_errors
def resume_command(name: Annotated[str | None, typer.Argument()] = None,
                   all_: Annotated[bool, typer.Option("--all", help="release the global "
                                                      "pause")] = False) -> None:
    """Resume a paused playbook, or with --all release the global pause."""
    env = open_env()
    with env.session() as session:
        if all_:
            service.pause_all(session, False)
            console.print("outbound marketing resumed")
            return
        if not name:
            err_console.print("[red]error:[/red] name a playbook or give --all")
            raise typer.Exit(2)
        result = service.set_status(session, name, "active")
    console.print(f"{name}: active (version {result['version']})")


@app.command("dry-run")
@handle_errors
def dry_run_command(name: str, days: Annotated[int, typer.Option(min=1, max=365)] = 7,
                    json_out: JsonOpt = False) -> None:
    """Who would get what and when (and who is held back, and why); nothing is sent."""
    env = open_env()
    with env.session() as session:
        rows = service.dry_run(session, name, days=days, timezone=env.settings.timezone)
        session.rollback()
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("客户", "时间", "步骤", "渠道", "结果", "原因", "内容")
    for r in rows:
        table.add_row(str(r["customer_id"]), r["at"][:16], r["step"], r["channel"] or "",
                      r["outcome"], r["reason"] or "", (r["text"] or "")[:60])
    console.print(table)


@app.command("stats")
@handle_errors
def stats_command(name: str, json_out: JsonOpt = False) -> None:
    """Entered, holdout, sent, deferred, suppressed by reason, failed, goals, uplift and the
    tracked content per step (links, clicks, conversions)."""
    env = open_env()
    with env.session() as session:
        data = service.stats(session, name)
    if json_out:
        print_json(data)
        return
    for key in ("entered", "holdout", "sent", "deferred", "failed", "outcome_unknown",
                "goal_reached"):
        console.print(f"{key:16} {data[key]}")
    for reason, n in sorted(data["suppressed"].items()):
        console.print(f"suppressed:{reason:12} {n}")
    u = data["uplift"]
    if u:
        console.print(f"uplift           {u['difference']:+.1%} (95% CI {u['ci_low']:+.1%} .. "
                      f"{u['ci_high']:+.1%})")
    for row in data["content"]:
        rate = "" if row["click_through"] is None else f" ({row['click_through']:.1%})"
        console.print(f"content {row['step']} {row['content']}: links {row['links']}, "
                      f"clicks {row['clicks']} by {row['clickers']}{rate}, "
                      f"converted {row['converted']}", highlight=False)


@policy_app.command("show")
@handle_errors
def policy_show(json_out: JsonOpt = False) -> None:
    """The contact policy in force (defaults where none was applied)."""
    env = open_env()
    with env.session() as session:
        data = service.policy_show(session)
    if json_out:
        print_json(data)
        return
    for key, value in data.items():
        if key != "reasons":
            console.print(f"{key}: {value}", highlight=False)


@policy_app.command("apply")
@handle_errors
def policy_apply(file: Annotated[Path, typer.Argument(help="the policy YAML")],
                 json_out: JsonOpt = False) -> None:
    """Replace the whole contact policy with FILE."""
    text = _read(file)
    env = open_env()
    with env.session() as session:
        data = service.policy_apply(session, text, file=str(file))
    if json_out:
        print_json(data)
    else:
        console.print("policy applied")
