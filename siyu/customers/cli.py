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
