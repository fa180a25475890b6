"""``siyu audit``: read the audit log; ``siyu privacy``: retention and the data registry."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from siyu.kit.cli import console, handle_errors, open_env, print_json
from siyu.privacy import service

privacy_app = typer.Typer(help="Retention and the registry of where customer data lives.",
                          no_args_is_help=True)
audit_app = typer.Typer(help="Read the audit log (who did what, when, from where).",
                        invoke_without_command=True)


def cli_actor() -> str:
    """The audit actor of a command run from a shell: ``cli:<operating-system user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@audit_app.callback()
@handle_errors
def audit(
    since: Annotated[str | None, typer.Option(help="7d, 24h, 30m or an ISO date/time")] = None,
    actor: Annotated[str | None, typer.Option(help="user:alice, or just alice")] = None,
    action: Annotated[str | None, typer.Option(
        help="an action and its sub-actions, e.g. login or customer.erase")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List audit entries, newest first."""
    env = open_env()
    with env.session() as session:
        moment = service.parse_since(since) if since else None
        rows = [service.entry_dict(e) for e in service.list_audit(
            session, since=moment, actor=actor, action=action, limit=limit)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no audit entries match")
        return
    from rich.table import Table

    table = Table(show_lines=False)
    for column in ("at (UTC)", "actor", "action", "target", "ip", "detail"):
        table.add_column(column)
    for r in rows:
        detail = ", ".join(f"{k}={v}" for k, v in (r["detail"] or {}).items())
        table.add_row(r["at"][:19].replace("T", " "), r["actor"], r["action"],
                      r["target"] or "", r["ip"] or "", detail)
    console.print(table)


@privacy_app.command("retention")
@handle_errors
def retention(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Purge events, messages and audit entries past their retention now (the daily
    privacy.retention job does the same); prints the rows deleted per table."""
    from siyu.privacy import tasks

    env = open_env()
    with env.session() as session:
        counts = tasks.purge_expired(session, env.settings, actor=cli_actor())
    if as_json:
        print_json(counts)
        return
    s = env.settings
    console.print(f"retention: events {s.retention_events_days or '∞'} d, messages "
                  f"{s.retention_messages_days or '∞'} d, audit {s.retention_audit_days or '∞'} d",
                  highlight=False)
    if not counts:
        console.print("nothing past its retention")
    for table, n in sorted(counts.items()):
        console.print(f"  {table}: {n} deleted", highlight=False)


@privacy_app.command("registry")
def show_registry(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Every table and how it holds customer data: merge and undo, export, erasure,
    retention (siyu/privacy/registry.py)."""
    from siyu.privacy import registry

    rows = [{"table": h.table, "link": list(h.link), "via": list(h.via) if h.via else None,
             "merge": h.merge, "export": h.export, "erase": h.erase,
             "retention": h.retention[0] if h.retention else None, "note": h.note}
            for h in registry.holdings()]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table()
    for column in ("table", "customer via", "merge", "export", "erase", "retention"):
        table.add_column(column)
    for h in registry.holdings():
        via = ", ".join(h.link) or (f"{h.via[0]} → {h.via[1]}" if h.via else "—")
        table.add_row(h.table, via, h.merge, "yes" if h.export else "no", h.erase,
                      h.retention[0] if h.retention else "—")
    console.print(table)
