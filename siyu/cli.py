"""The ``siyu`` command line: every command has --help; --json where output is data."""

from __future__ import annotations

from typing import Annotated

import typer

from siyu import __version__
from siyu.analytics.cli import analytics_app, clv_app, scores_app
from siyu.auth.cli import apikey_app, user_app
from siyu.channels.cli import app as channels_app
from siyu.config import Settings
from siyu.customers.cli import app as customers_app
from siyu.events.cli import import_command
from siyu.kb.cli import kb_app, nlu_app
from siyu.kit.cli import console, handle_errors, open_env
from siyu.segments.cli import app as segments_app

app = typer.Typer(
    help="siyu (私域): one customer across channels, understood, served 7x24.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(user_app, name="user")
app.add_typer(customers_app, name="customers")
app.add_typer(segments_app, name="segments")
app.add_typer(scores_app, name="scores")
app.add_typer(clv_app, name="clv")
app.add_typer(analytics_app, name="analytics")
app.add_typer(channels_app, name="channels")
app.add_typer(kb_app, name="kb")
app.add_typer(nlu_app, name="nlu")
app.command("import")(import_command)


def _register_optional() -> None:
    from siyu.demo.cli import app as demo_app

    app.add_typer(demo_app, name="demo")


_register_optional()


@app.command()
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


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    worker: Annotated[bool, typer.Option(help="run background jobs in this process "
                                               "(--no-worker when 'siyu worker' runs "
                                               "them)")] = True,
) -> None:
    """Serve the API and the console (migrating the database first)."""
    env = open_env(migrate=True)
    env.engine.dispose()
    run_server(env.settings, host=host, port=port, worker=worker)


def run_server(settings: Settings, *, host: str, port: int, worker: bool = True) -> None:
    """Serve the app with uvicorn; with ``worker`` the job loop runs in a thread beside it."""
    import uvicorn

    from siyu.app import create_app

    app_ = create_app(settings, run_worker=worker)
    console.print(f"siyu {__version__} on http://{host}:{port}  (API docs: /docs)",
                  highlight=False)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
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
        load_tasks()
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
