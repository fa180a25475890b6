"""``siyu customers``: look customers up, inspect and undo merges, review conflicts."""

from __future__ import annotations

from typing import Annotated

import typer

from siyu.customers import identity, service
from siyu.kit.cli import console, handle_errors, open_env, print_json

app = typer.Typer(help="Customers: 360 view, identity lookup, merges and conflicts.",
                  no_args_is_help=True)


@app.command("show")
@handle_errors
def show(
    ref: Annotated[str, typer.Argument(help="siyu id, or kind:value (e.g. phone:13800138000)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print a customer's 360 view."""
    env = open_env()
    with env.session() as session:
        if ref.isdigit():
            cid = int(ref)
        else:
            kind, value = service.parse_identity_param(ref)
            cid = service.find_by_identity(session, kind, value,
                                           region=env.settings.default_phone_region)
        view = service.get_customer_360(session, cid)
    if as_json:
        print_json(view)
        return
    p = view["profile"]
    console.print(f"[bold]#{view['id']}[/bold] {p['name'] or '(未命名)'}  {p['city'] or ''}  "
                  f"{p['tier'] or ''}", highlight=False)
    for i in view["identities"]:
        console.print(f"  {i['kind']}: {i['value']}", highlight=False)
    console.print(f"  orders: {view['orders']['count']} (¥{view['orders']['total_amount']}), "
                  f"events: {view['events']['count']}, last activity: "
                  f"{view['last_activity_at']}", highlight=False)
    for m in view["merges"]:
        console.print(f"  merge #{m['id']}: {m['merged_id']} → {m['kept_id']} ({m['reason']})"
                      f"{' [undone]' if m['undone_at'] else ''}", highlight=False)


@app.command("undo-merge")
@handle_errors
def undo_merge(merge_id: int) -> None:
    """Undo a merge: the merged customer gets back what moved."""
    env = open_env()
    with env.session() as session:
        merge = identity.undo_merge(session, merge_id, actor="cli")
    console.print(f"merge #{merge.id} undone: customer #{merge.merged_id} restored")


@app.command("conflicts")
@handle_errors
def conflicts(
    status: Annotated[str, typer.Option(help="open | merged | kept_apart")] = "open",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List merge conflicts queued for review."""
    env = open_env()
    with env.session() as session:
        rows = service.list_conflicts(session, status=status)
    if as_json:
        print_json(rows)
        return
    for c in rows:
        console.print(f"#{c['id']}  {c['customer_a_id']} ~ {c['customer_b_id']}  shared "
                      f"{c['shared']}  differ on {c['conflict_kind']}: {c['value_a']} ≠ "
                      f"{c['value_b']}", highlight=False)


@app.command("resolve-conflict")
@handle_errors
def resolve(conflict_id: int,
            decision: Annotated[str, typer.Argument(help="merge | keep_apart")]) -> None:
    """Decide a queued merge conflict."""
    env = open_env()
    with env.session() as session:
        identity.resolve_conflict(session, conflict_id, decision=decision, actor="cli")
    console.print(f"conflict #{conflict_id}: {decision}")


@app.command("export")
@handle_errors
def export(
    customer_id: Annotated[int, typer.Argument(help="siyu customer id")],
    output: Annotated[str | None, typer.Option("--output", "-o",
                                               help="write the JSON here, not stdout")] = None,
) -> None:
    """Export everything siyu holds on the customer as one JSON document (PIPL access and
    portability requests); the export is recorded in the audit log."""
    import json
    from pathlib import Path

    from siyu.privacy import service as privacy
    from siyu.privacy.cli import cli_actor

    env = open_env()
    with env.session() as session:
        document = privacy.export_customer(session, customer_id, actor=cli_actor())
    text = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        rows = sum(len(r) for r in document["tables"].values())
        console.print(f"exported customer #{customer_id}: {rows} rows from "
                      f"{len(document['tables'])} tables to {output}", highlight=False)
    else:
        print(text)


@app.command("erase")
@handle_errors
def erase(
    ref: Annotated[str, typer.Argument(help="siyu id, or kind:value (e.g. phone:13800138000)")],
    yes: Annotated[bool, typer.Option("--yes", help="really erase (irreversible)")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Irreversibly erase the customer's personal data (PIPL art. 47). Orders stay,
    anonymous, for accounting; do-not-contact is kept as a keyed hash. Safe to repeat."""
    from siyu.errors import InvalidInput
    from siyu.privacy import service as privacy
    from siyu.privacy.cli import cli_actor

    env = open_env()
    with env.session() as session:
        cid = privacy.resolve_ref(session, env.settings, ref)
        if cid is None:
            console.print(f"{ref}: already erased, nothing to remove", highlight=False)
            return
        if not yes:
            plan = privacy.plan_erasure(session, cid)
            for table, n in sorted(plan.items()):
                console.print(f"  {table}: {n}", highlight=False)
            raise InvalidInput(f"erasing customer #{cid} is irreversible; the rows above "
                               "would be removed or anonymised: run again with --yes")
        report = privacy.erase_customer(session, env.settings, cid, actor=cli_actor())
    privacy.reclaim_space(env.engine, report)
    if as_json:
        print_json(report.to_dict())
        return
    if report.already_erased:
        console.print(f"customer #{report.customer_id}: already erased, nothing to remove")
        return
    console.print(f"erased customer #{report.customer_id} "
                  f"(records {', '.join(map(str, report.customer_ids))}):", highlight=False)
    for table, n in sorted(report.removed.items()):
        console.print(f"  {table}: {n} removed", highlight=False)
    for table, n in sorted(report.anonymised.items()):
        console.print(f"  {table}: {n} anonymised", highlight=False)
    console.print(f"  do-not-contact: {report.suppressed} identities kept as keyed hashes",
                  highlight=False)
