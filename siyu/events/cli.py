"""``siyu import``: bulk import of customers, orders and events from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from siyu.events.importer import ImportKind, import_file, scan
from siyu.kit.cli import console, handle_errors, open_env, print_json


@handle_errors
def import_command(
    kind: Annotated[str, typer.Argument(help="customers | orders | events | products | "
                                            "survey-responses")],
    file: Annotated[Path, typer.Argument(help="CSV with a header row (UTF-8) or JSON Lines")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv or jsonl (default: by "
                                                            "file extension)")] = None,
    rejects: Annotated[Path | None, typer.Option(help="where to write rejected rows "
                                                      "(default FILE.rejects.csv)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    survey: Annotated[str | None, typer.Option(
        "--survey", help="survey-responses: the survey (created when needed)")] = None,
    scale: Annotated[list[str] | None, typer.Option(
        "--scale", help="survey-responses: COLUMN=nps|csat|ces|rating (repeatable)")] = None,
) -> None:
    """Import a file. Orders CSV needs customer_id,order_id,ts,amount (customer_id is the
    brand's customer id; optional updated_at, status, sku, quantity, recipient_name,
    recipient_phone, recipient_address). Products CSV needs sku,name (optional category,
    price, cycle_days, bundle_of). Bad rows go to a rejects file with line and reason."""
    if kind == "survey-responses":
        from siyu.voc.cli import import_survey_responses

        import_survey_responses(file, survey, scale, as_json)
        return
    if kind not in ("customers", "orders", "events", "products"):
        raise typer.BadParameter("must be customers, orders, events or products (or "
                                 "survey-responses)",
                                 param_hint="KIND")
    env = open_env()
    if kind == "products":
        from siyu.catalog.importer import import_products

        result = import_products(env.sessions, file, rejects_path=rejects)
        if as_json:
            print_json(result)
            return
        console.print(f"rows: {result['rows']}  accepted: {result['accepted']}  updated: "
                      f"{result['updated']}  rejected: {result['rejected']}", highlight=False)
        for err in result.get("errors", [])[:5]:
            console.print(f"  line {err['line']}: {err['reason']}", highlight=False)
        return
    total = max(scan(file) - (0 if (fmt or file.suffix.lower()) in ("jsonl", ".jsonl",
                                                                      ".ndjson") else 1), 0)
    with Progress(TextColumn("[bold]导入 {task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  disable=as_json) as progress:
        task = progress.add_task(kind, total=total)
        summary = import_file(env.sessions, _kind(kind), file, settings=env.settings, fmt=fmt,
                              rejects_path=rejects,
                              progress=lambda n: progress.advance(task, n))
    if as_json:
        print_json(summary.to_dict())
        return
    console.print(f"rows: {summary.rows}  accepted: {summary.accepted}  updated: "
                  f"{summary.updated}  duplicates: {summary.duplicates}  rejected: "
                  f"{len(summary.rejected)}", highlight=False)
    if summary.rejects_file:
        console.print(f"rejected rows written to {summary.rejects_file}", highlight=False)
        for err in summary.rejected[:5]:
            console.print(f"  line {err.line}: {err.reason()}", highlight=False)


def _kind(kind: str) -> ImportKind:
    if kind == "customers":
        return "customers"
    return "orders" if kind == "orders" else "events"
