"""``siyu journeys`` and ``siyu scenarios``: stages and scenarios from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siyu.db import utcnow
from siyu.journeys.errors import InvalidScenarioFile
from siyu.kit.cli import console, err_console, handle_errors, open_env, print_json

journeys_app = typer.Typer(help="Journey stages (加微 → 入群 → 留存 → 活跃 → 转化 → 售后).",
                           no_args_is_help=True)
scenarios_app = typer.Typer(help="Scenarios of the journey (rules in the segment language).",
                            no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def _refused(exc: InvalidScenarioFile) -> None:
    """Print a refused file with the place and the caret, and exit 2 (nothing changed)."""
    err_console.print(f"[red]error:[/red] {exc.message}", highlight=False, markup=True)
    raise typer.Exit(2) from None


def _customer_id(session: object, ref: str, region: str) -> int:
    from siyu.customers import service as customers

    if ref.isdigit():
        return int(ref)
    kind, value = customers.parse_identity_param(ref)
    return customers.find_by_identity(session, kind, value, region=region)  # type: ignore[arg-type]


@journeys_app.command("show")
@handle_errors
def show(ref: Annotated[str, typer.Argument(help="siyu id, or kind:value (phone:138...)")],
         as_json: JsonOpt = False) -> None:
    """A customer's journey stage and active scenarios, each with its why."""
    from siyu.journeys import service

    env = open_env()
    with env.session() as session:
        view = service.customer_journey(
            session, _customer_id(session, ref, env.settings.default_phone_region))
    if as_json:
        print_json(view)
        return
    stage = view["stage_label"] or "（尚未计算）"
    console.print(f"[bold]#{view['customer_id']}[/bold] 旅程阶段：{stage}", highlight=False)
    if view["repurchase"]:
        r = view["repurchase"]
        console.print(f"  复购到期：{r['due_at'][:10]}（订单 {r['order_id']}，{r['sku']} ×"
                      f"{r['quantity']:g}）", highlight=False)
    if not view["scenarios"]:
        console.print("  当前不在任何场景中", highlight=False)
    for s in view["scenarios"]:
        console.print(f"  场景「{s['name']}」：{s['why']}", highlight=False, markup=False)


@journeys_app.command("recompute")
@handle_errors
def recompute(as_json: JsonOpt = False) -> None:
    """Recompute every customer's stage and scenarios now."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from siyu.journeys import service

    env = open_env()
    with Progress(SpinnerColumn(), TextColumn("计算旅程阶段与场景"), TimeElapsedColumn(),
                  console=console, disable=as_json) as progress:
        progress.add_task("recompute", total=None)
        with env.session() as session:
            result = service.recompute(session, now=utcnow(), timezone=env.settings.timezone)
            session.commit()
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"customers: {result.customers}  stage changes: {result.stage_changes}  "
                  f"entered: {result.entered}  exited: {result.exited}  "
                  f"({result.seconds:.1f} s)", highlight=False)


@journeys_app.command("apply")
@handle_errors
def apply_stages(file: Annotated[Path, typer.Argument(help="YAML/JSON {stages: [{stage, rule}]}")],
                 as_json: JsonOpt = False) -> None:
    """Replace the stage rules with FILE's (validated first; nothing changes on error)."""
    from siyu.journeys import service

    env = open_env()
    try:
        content = file.read_text(encoding="utf-8")
        with env.session() as session:
            result = service.apply_stages(session, content, source=str(file))
            session.commit()
    except InvalidScenarioFile as exc:
        _refused(exc)
    except OSError as exc:
        err_console.print(f"[red]error:[/red] cannot read {file}: {exc.strerror}")
        raise typer.Exit(2) from None
    if as_json:
        print_json(result)
        return
    for row in result:
        console.print(f"{row['stage']}: {row['rule']}", highlight=False, markup=False)


@journeys_app.command("funnel")
@handle_errors
def funnel(as_json: JsonOpt = False) -> None:
    """Customers per journey stage."""
    from siyu.journeys import service

    env = open_env()
    with env.session() as session:
        rows = service.funnel(session)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        console.print(f"{row['label']}\t{row['customers']}\t{row['reached_share']:.1%}",
                      highlight=False)


@scenarios_app.command("list")
@handle_errors
def list_scenarios(as_json: JsonOpt = False) -> None:
    """Scenarios with their stage, rule and members."""
    from siyu.journeys import service

    env = open_env()
    with env.session() as session:
        rows = service.list_scenarios(session)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        console.print(f"{row['name']}\t{row['stage_label']}\t{row['members']}\t{row['status']}"
                      f"\t{row['rule']}", highlight=False, markup=False)


@scenarios_app.command("apply")
@handle_errors
def apply(file: Annotated[Path, typer.Argument(help="YAML or JSON: a scenario, a list, or "
                                                    "{scenarios: [...]}")],
          as_json: JsonOpt = False) -> None:
    """Create or update scenarios by name (validated first; nothing changes on error)."""
    from siyu.journeys import service

    env = open_env()
    try:
        with env.session() as session:
            result = service.apply_scenario_file(session, file)
            service.request_full(session)
            session.commit()
    except InvalidScenarioFile as exc:
        _refused(exc)
    if as_json:
        print_json(result)
        return
    for row in result:
        state = "changed" if row["changed"] else "unchanged"
        console.print(f"{row['name']}: version {row['version']} ({state})", highlight=False)


@scenarios_app.command("count")
@handle_errors
def count(name: Annotated[str, typer.Argument(help="scenario name")],
          as_json: JsonOpt = False) -> None:
    """Members of scenario NAME now; the count is alone on the last line."""
    from siyu.journeys import service

    env = open_env()
    with env.session() as session:
        result = service.count_scenario(session, name, now=utcnow(),
                                        timezone=env.settings.timezone)
    if as_json:
        print_json(result)
        return
    console.print(f"{result['name']}: {result['rule']}", highlight=False, markup=False)
    print(result["members"])
