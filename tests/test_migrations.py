"""The migration shortcut: ``HEADS`` names the scripts' heads, a current database is
recognised without Alembic, and an older one is still upgraded."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from siyu import migrate
from siyu.db import make_engine


def test_heads_constant_matches_the_migration_scripts() -> None:
    assert migrate.script_heads() == migrate.HEADS


def test_upgrade_from_empty_and_from_an_older_revision(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert not migrate.is_current(engine)  # no alembic_version table yet
    migrate.upgrade(engine, "0007")
    assert not migrate.is_current(engine)
    assert "advisor_id" not in {c["name"] for c in inspect(engine).get_columns("conversations")}
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    assert "advisor_id" in {c["name"] for c in inspect(engine).get_columns("conversations")}
    event_indexes = {i["name"] for i in inspect(engine).get_indexes("events")}
    assert "ix_events_type_ts_customer" in event_indexes
    assert "ix_events_type_ts" not in event_indexes  # redundant with the one above (0009)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == max(migrate.HEADS)
    assert "channel_access_tokens" in inspect(engine).get_table_names()  # 0012
    migrate.upgrade(engine)  # a no-op on a current database
    engine.dispose()
