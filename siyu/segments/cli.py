"""``siyu segments``: count, explain, save, list, refresh and export customer segments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from siyu.db import utcnow
from siyu.kit import csvsafe
from siyu.kit.cli import console, err_console, handle_errors, open_env, print_json
from siyu.kit.timeutil import as_aware
from siyu.segments import service
from siyu.segments.errors import InvalidRule

app = typer.Typer(help="Segments (人群圈选): count a rule, save it, keep it current, export it.",
                  no_args_is_help=True)

P = ParamSpec("P")
R = TypeVar("R")

RuleArg = Annotated[str, typer.Argument(help='rule text, e.g. \'orders(last 30d) >= 2 and '
                                              'not tag("投诉中")\'')]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
NowOpt = Annotated[str | None, typer.Option(
    "--now", help="evaluate as of this ISO time (naive times are in SIYU_TIMEZONE); "
                  "default: now")]


def rule_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Show a refused rule with a caret under the position, and exit 2 (nothing ran)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InvalidRule as exc:
            where = (f" at character {exc.position + 1}" if exc.position is not None
                     else f" at {exc.path}" if exc.path else "")
            err_console.print(f"[red]error:[/red] invalid rule{where}: {exc.error.message}",
                              highlight=False, markup=True)
            caret = exc.caret()
            if caret:
                err_console.print(caret, highlight=False, markup=False)
            err_console.print(exc.message_zh, highlight=False, markup=False)
            raise typer.Exit(2) from None

    return wrapper


def _now(value: str | None, timezone: str) -> dt.datetime:
    if value is None:
        return utcnow()
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date-time: {value!r}", param_hint="--now") from None
    return as_aware(parsed, timezone)


@app.command("count")
@handle_errors
@rule_errors
def count(rule: RuleArg, as_json: JsonOpt = False, now: NowOpt = None) -> None:
    """Count the active customers matching RULE; the count is alone on the last line."""
    env = open_env()
    with env.session() as session:
        result = service.count_rule(session, rule, now=_now(now, env.settings.timezone),
                                    timezone=env.settings.timezone)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(result.to_dict()["description_zh"], highlight=False, markup=False)
    print(result.count)


@app.command("explain")
@handle_errors
@rule_errors
def explain(rule: RuleArg, as_json: JsonOpt = False, now: NowOpt = None) -> None:
    """Show RULE's canonical text, JSON form, Chinese description and the SQL it runs."""
    env = open_env()
    with env.session() as session:
        info = service.explain_rule(session, rule, now=_now(now, env.settings.timezone),
                                    timezone=env.settings.timezone)
    if as_json:
        print_json(info)
        return
    import json

    console.print("[bold]text[/bold]", highlight=False)
    console.print(info["text"], highlight=False, markup=False)
    console.print("[bold]json[/bold]", highlight=False)
    console.print(json.dumps(info["rule"], ensure_ascii=False), highlight=False, markup=False)
    console.print("[bold]中文描述[/bold]", highlight=False)
    console.print(info["description_zh"], highlight=False, markup=False)
    console.print(f"[bold]sql ({info['dialect']})[/bold]", highlight=False)
    console.print(info["sql"], highlight=False, markup=False)
    console.print("[bold]params[/bold]", highlight=False)
    console.print(json.dumps(info["params"], ensure_ascii=False), highlight=False,
                  markup=False)


@app.command("create")
@handle_errors
@rule_errors
def create(
    name: Annotated[str, typer.Argument(help="unique segment name")],
    rule: RuleArg,
    as_json: JsonOpt = False,
) -> None:
    """Save RULE as segment NAME and compute its members now."""
    env = open_env()
    with env.session() as session:
        segment = service.create_segment(session, name, rule, created_by="cli",
                                         timezone=env.settings.timezone)
        data = service.segment_to_dict(segment)
    if as_json:
        print_json(data)
        return
    console.print(f"created segment #{data['id']} 「{data['name']}」 with {data['size']:,} "
                  f"members", highlight=False, markup=False)


@app.command("list")
@handle_errors
def list_command(as_json: JsonOpt = False) -> None:
    """List saved segments with their sizes."""
    env = open_env()
    with env.session() as session:
        items = service.list_segments(session, history_points=10)
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("no saved segments yet (siyu segments create NAME RULE)")
        return
    from rich.table import Table

    table = Table("id", "name", "size", "refreshed", "rule")
    for item in items:
        table.add_row(str(item["id"]), item["name"], f"{item['size']:,}",
                      item["refreshed_at"] or "—", item["text"])
    console.print(table)


@app.command("refresh")
@handle_errors
def refresh(
    name: Annotated[str | None, typer.Argument(help="segment to refresh (default: all)")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-evaluate saved segments now, recording who entered and left."""
    env = open_env()
    now = utcnow()
    with env.session() as session:
        if name is None:
            results = service.refresh_all(session, now=now, timezone=env.settings.timezone)
        else:
            segment = service.get_segment_by_name(session, name)
            results = [service.refresh_segment(session, segment.id, now=now,
                                               timezone=env.settings.timezone)]
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    for r in results:
        console.print(f"「{r.name}」 size {r.size:,}  +{r.entered:,} entered  -{r.left:,} left",
                      highlight=False, markup=False)


@app.command("export")
@handle_errors
def export(
    name: Annotated[str, typer.Argument(help="saved segment name")],
    file: Annotated[Path, typer.Argument(help="CSV file to write", dir_okay=False)],
    as_json: JsonOpt = False,
) -> None:
    """Write the segment's members to FILE as CSV: customer id, external id, name, masked
    phone (the membership of the last refresh); UTF-8 with a byte-order mark, for Excel."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    env = open_env()
    written = 0
    tmp = file.with_name(file.name + ".part")
    with env.session() as session:
        segment = service.get_segment_by_name(session, name)
        # Written to a side file and renamed, so a failed export never leaves half a file.
        try:
            with tmp.open("w", newline="", encoding="utf-8-sig") as handle, Progress(
                TextColumn("导出人群"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=err_console, disable=as_json,
            ) as bar:
                task = bar.add_task("export", total=segment.size)
                writer = csvsafe.writer(handle)
                writer.writerow(service.EXPORT_HEADER)
                for rows in service.export_rows(session, segment.id):
                    writer.writerows(rows)
                    written += len(rows)
                    bar.update(task, completed=written)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(file)
    from siyu.privacy import service as privacy
    from siyu.privacy.cli import cli_actor

    with env.session() as session:
        privacy.record_audit(session, actor=cli_actor(), action="segment.export",
                             target=f"segment:{segment.id}", detail={"members": written})
    if as_json:
        print_json({"segment": name, "file": str(file), "rows": written})
        return
    console.print(f"wrote {written:,} customers to {file}", highlight=False, markup=False)


@app.command("delete")
@handle_errors
def delete(name: Annotated[str, typer.Argument(help="saved segment name")]) -> None:
    """Delete a saved segment with its membership history."""
    env = open_env()
    with env.session() as session:
        segment = service.get_segment_by_name(session, name)
        service.delete_segment(session, segment.id)
    console.print(f"deleted segment 「{name}」", highlight=False, markup=False)
