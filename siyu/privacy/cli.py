"""``siyu audit``: read the audit log; ``siyu privacy``: retention and the data registry."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from siyu.kit.cli import console, handle_errors, open_env, print_json
from siyu.privacy import service

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
