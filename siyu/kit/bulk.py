"""Bulk inserts for hot paths (batch ingest, demo seeding)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Date, Table, insert
from sqlalchemy.orm import Session

from siyu.db import UTCDateTime


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys in the same order) into ``table``.

    On SQLite the rows go straight to the driver with the three conversions SQLite needs
    done here (UTC datetimes as SQLAlchemy's text format, JSON, dates): SQLAlchemy's
    per-value type processing is most of the cost of a Core insert (measured: it halves the
    time of a 10,000-event batch insert and of demo seeding). On PostgreSQL with psycopg the
    rows are streamed with ``COPY``, several times faster than an executemany of INSERTs.
    Both run in the session's current transaction.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        _copy_postgres(session, table, rows)
        return
    if dialect.name != "sqlite":
        session.connection().execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    converters: list[Callable[[Any], Any] | None] = []
    for name in columns:
        col_type = table.c[name].type
        if isinstance(col_type, UTCDateTime):
            converters.append(_sqlite_datetime)
        elif isinstance(col_type, JSON):
            converters.append(_json_text)
        elif isinstance(col_type, Date):
            converters.append(_sqlite_date)
        else:
            converters.append(None)
    params = [
        tuple(
            value if conv is None or value is None else conv(value)
            for conv, value in zip(converters, row.values(), strict=True)
        )
        for row in rows
    ]
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    session.connection().exec_driver_sql(
        f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', params
    )


def _copy_postgres(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    from psycopg.types.json import Jsonb

    columns = list(rows[0])
    converters: list[Callable[[Any], Any] | None] = []
    for name in columns:
        col_type = table.c[name].type
        if isinstance(col_type, JSON):
            converters.append(Jsonb)
        elif isinstance(col_type, UTCDateTime):
            converters.append(_aware_utc)
        else:
            converters.append(None)
    names = ", ".join(f'"{c}"' for c in columns)
    raw = session.connection().connection.driver_connection
    if raw is None:
        raise RuntimeError("no driver connection for COPY")
    with raw.cursor() as cursor, cursor.copy(
        f'COPY "{table.name}" ({names}) FROM STDIN'
    ) as copy:
        for row in rows:
            copy.write_row(tuple(
                value if conv is None or value is None else conv(value)
                for conv, value in zip(converters, row.values(), strict=True)
            ))


def _aware_utc(value: dt.datetime) -> dt.datetime:
    # Naive values are UTC (UTCDateTime's rule); timestamptz needs the zone said.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _sqlite_datetime(value: dt.datetime) -> str:
    # Naive values are UTC already (UTCDateTime's rule); the format is SQLAlchemy's.
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def _sqlite_date(value: dt.date) -> str:
    return value.isoformat()


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()
