"""Programmatic Alembic: upgrade to head, check that models and migrations agree.

Commands migrate on start; a database already at :data:`HEADS` is recognised by one query,
without loading Alembic and its scripts (a quarter of a second per CLI call otherwise).
A test keeps :data:`HEADS` equal to the migration scripts' heads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest revision(s); update with every new migration (tests/test_migrations.py checks).
HEADS: frozenset[str] = frozenset({"0029"})


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def script_heads() -> frozenset[str]:
    """The heads according to the migration scripts themselves."""
    from alembic.script import ScriptDirectory

    cfg = alembic_config("sqlite://")
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


def is_current(engine: Engine) -> bool:
    """Whether the database's recorded revisions are exactly :data:`HEADS`."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return False
    return frozenset(r[0] for r in rows) == HEADS


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply all migrations up to ``revision`` on ``engine``'s database."""
    if revision == "heads" and is_current(engine):
        return
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def check(engine: Engine) -> None:
    """Raise if the models have changes that no migration covers."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.check(cfg)
