"""CLI plumbing shared by every domain's commands: the database, errors, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings, get_settings
from siyu.db import make_engine, make_session_factory, session_scope
from siyu.errors import SiyuError

console = Console()
# Errors and notes stay one line each, however long (Rich would otherwise break a long file
# path at the terminal width, even inside the path, and a rule's caret would lose its place).
err_console = Console(stderr=True, soft_wrap=True)
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Env:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.sessions) as session:
            yield session


def open_env(*, migrate: bool = True) -> Env:
    """Settings, engine and session factory; the schema is brought up to date first."""
    from siyu import migrate as migrations

    settings = get_settings()
    engine = make_engine(settings.database_url)
    if migrate:
        migrations.upgrade(engine)
    return Env(settings, engine, make_session_factory(engine))


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a :class:`SiyuError` as one clear line (exit code 2) instead of a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SiyuError as exc:
            err_console.print(f"[red]error:[/red] {exc.message}", highlight=False)
            if exc.details and isinstance(exc.details, dict) and "rejected" in exc.details:
                for rec in exc.details["rejected"][:20]:
                    err_console.print(f"  record {rec['index']}: {rec['errors']}",
                                      highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
