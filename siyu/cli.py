"""The ``siyu`` command line: every command has --help; --json where output is data."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Annotated

import typer

from siyu import __version__
from siyu.config import Settings
from siyu.kit.cli import console, handle_errors, open_env

# The command groups of each domain, imported only when used: ``siyu segments count`` then
# loads the segments domain alone, not numpy, scipy, scikit-learn or FastAPI.
GROUPS: dict[str, tuple[str, str]] = {
    "apikey": ("siyu.auth.cli", "apikey_app"),
    "user": ("siyu.auth.cli", "user_app"),
    "secret": ("siyu.auth.cli", "secret_app"),
    "customers": ("siyu.customers.cli", "app"),
    "segments": ("siyu.segments.cli", "app"),
    "scores": ("siyu.analytics.cli", "scores_app"),
    "clv": ("siyu.analytics.cli", "clv_app"),
    "analytics": ("siyu.analytics.cli", "analytics_app"),
    "channels": ("siyu.channels.cli", "app"),
    "kb": ("siyu.kb.cli", "kb_app"),
    "nlu": ("siyu.kb.cli", "nlu_app"),
    "demo": ("siyu.demo.cli", "app"),
    "audit": ("siyu.privacy.cli", "audit_app"),
    "privacy": ("siyu.privacy.cli", "privacy_app"),
    "playbooks": ("siyu.playbooks.cli", "app"),
    "policy": ("siyu.playbooks.cli", "policy_app"),
    "voc": ("siyu.voc.cli", "app"),
    "journeys": ("siyu.journeys.cli", "journeys_app"),
    "scenarios": ("siyu.journeys.cli", "scenarios_app"),
    "referrals": ("siyu.referrals.cli", "app"),
    "points": ("siyu.points.cli", "app"),
    "appointments": ("siyu.appointments.cli", "app"),
    "groups": ("siyu.groups.cli", "app"),
}

_app = typer.Typer(
    help="siyu (私域): one customer across channels, understood, served 7x24.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
_app.add_typer(db_app, name="db")
_registered: set[str] = set()


def _register(names: Iterable[str] | None = None) -> typer.Typer:
    """Add the named command groups (all when ``None``) to the app, once each."""
    import importlib

    for name in GROUPS if names is None else names:
        if name in _registered:
            continue
        if name == "import":
            from siyu.events.cli import import_command

            _app.command("import")(import_command)
        else:
            module, attr = GROUPS[name]
            _app.add_typer(getattr(importlib.import_module(module), attr), name=name)
        _registered.add(name)
    if names is None:
        _register(["import"])
    return _app


def __getattr__(name: str) -> typer.Typer:
    # ``siyu.cli.app``: the whole command line (tests drive it with CliRunner).
    if name == "app":
        return _register()
    raise AttributeError(name)


@_app.command()
def version() -> None:
    """Print the siyu version."""
    console.print(__version__)


@db_app.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Apply all migrations to SIYU_DATABASE_URL (default ./siyu.db)."""
    env = open_env(migrate=True)
    console.print(f"database at head: {env.engine.url.render_as_string(hide_password=True)}",
                  highlight=False)


@db_app.command("check")
@handle_errors
def db_check() -> None:
    """Fail if the models have changes no migration covers."""
    from siyu import migrate

    env = open_env(migrate=True)
    migrate.check(env.engine)
    console.print("models and migrations agree")


@_app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    worker: Annotated[bool, typer.Option(help="run background jobs in this process "
                                               "(--no-worker when 'siyu worker' runs "
                                               "them)")] = True,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, max=64,
        help="server processes (each runs the API, the console and, unless --no-worker, "
             "a job loop); more than one uses several cores")] = 1,
) -> None:
    """Serve the API and the console (migrating the database first)."""
    env = open_env(migrate=True)
    env.engine.dispose()
    run_server(env.settings, host=host, port=port, worker=worker, processes=workers)


def run_server(settings: Settings, *, host: str, port: int, worker: bool = True,
               processes: int = 1) -> None:
    """Serve the app with uvicorn; with ``worker`` the job loop runs in a thread beside it.

    With several ``processes`` uvicorn starts that many, each building the app from the
    environment (so ``settings`` must be the environment's, as ``siyu serve`` has them)."""
    import os

    import uvicorn

    from siyu.app import SERVE_JOBS_ENV, create_app

    where = f"http://{host}:{port}"
    if processes > 1:
        os.environ[SERVE_JOBS_ENV] = "1" if worker else "0"
        console.print(f"siyu {__version__} on {where}  ({processes} processes; API docs: /docs)",
                      highlight=False)
        uvicorn.run("siyu.app:app_from_environment", factory=True, workers=processes,
                    host=host, port=port, log_level="warning")
        return
    app_ = create_app(settings, run_worker=worker)
    console.print(f"siyu {__version__} on {where}  (API docs: /docs)", highlight=False)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@_app.command()
@handle_errors
def worker(
    poll: Annotated[float, typer.Option(help="seconds to wait when no job is due")] = 0.5,
    once: Annotated[bool, typer.Option(help="run the jobs due now, then exit")] = False,
) -> None:
    """Run background jobs (playbook steps, outbound sends, recomputation) until stopped."""
    import threading

    from siyu.jobs import service as jobs
    from siyu.jobs.worker import load_tasks, run_forever

    env = open_env(migrate=True)
    if once:
        from siyu.jobs.worker import run_loop_hooks

        load_tasks()
        run_loop_hooks(env.sessions, jobs.worker_id())
        summary = jobs.run_due(env.sessions)
        console.print(f"done: {summary.done}  retried: {summary.retried}  failed: "
                      f"{summary.failed}")
        return
    console.print(f"worker {jobs.worker_id()} running; Ctrl-C to stop")
    stop = threading.Event()
    try:
        run_forever(env.sessions, stop, poll_seconds=poll)
    except KeyboardInterrupt:
        stop.set()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    first = next((a for a in args if not a.startswith("-")), None)
    wanted = [first] if first in GROUPS or first == "import" else None
    if first in ("version", "serve", "worker", "db"):
        wanted = []
    _register(wanted)(args=args)


if __name__ == "__main__":
    main()
