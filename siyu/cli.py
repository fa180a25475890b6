"""The ``siyu`` command line: every command has --help; --json where output is data."""

from __future__ import annotations

from typing import Annotated

import typer

from siyu import __version__
from siyu.auth.cli import apikey_app, user_app
from siyu.customers.cli import app as customers_app
from siyu.events.cli import import_command
from siyu.kit.cli import console, handle_errors, open_env

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
) -> None:
    """Serve the API and the console (migrating the database first)."""
    import uvicorn

    from siyu.app import create_app

    env = open_env(migrate=True)
    env.engine.dispose()
    console.print(f"siyu {__version__} on http://{host}:{port}  (API docs: /docs)",
                  highlight=False)
    uvicorn.run(create_app(env.settings), host=host, port=port, log_level="warning")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
