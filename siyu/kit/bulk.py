"""Bulk inserts for hot paths (batch ingest, demo seeding)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Date, Table, insert, select
from sqlalchemy.exc import IntegrityError
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
    params = _sqlite_params(table, columns, rows)
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    session.connection().exec_driver_sql(
        f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', params
    )


def insert_returning_ids(
    session: Session, table: Table, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert ``rows`` (same keys, same order) and return their new integer ids in row order.

    On SQLite, SQLAlchemy keeps ``RETURNING`` in parameter order by inserting one row per
    statement (measured: a third of the identity resolution of a 10,000-event batch with
    1,000 new visitors). Here the rows go in multi-row ``INSERT ... RETURNING`` statements
    instead. SQLite returns those rows in no promised order, but it gives each new row of a
    rowid table the id one above the largest so far, so within one statement the ids rise in
    row order and sorting them restores it. Other stores use SQLAlchemy's ordered RETURNING.
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        return list(session.connection().scalars(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows)))
    columns = list(rows[0])
    params = _sqlite_params(table, columns, rows)
    names = ", ".join(f'"{c}"' for c in columns)
    one = "(" + ", ".join("?" for _ in columns) + ")"
    per_statement = max(1, 30_000 // len(columns))
    conn = session.connection()
    ids: list[int] = []
    for start in range(0, len(params), per_statement):
        chunk = params[start : start + per_statement]
        sql = (f'INSERT INTO "{table.name}" ({names}) VALUES '
               f'{", ".join([one] * len(chunk))} RETURNING "id"')
        flat = [value for row in chunk for value in row]
        ids.extend(sorted(r[0] for r in conn.exec_driver_sql(sql, tuple(flat))))
    return ids


def select_in(
    session: Session,
    table: Table,
    columns: Sequence[str],
    in_column: str,
    values: Sequence[Any],
    *,
    equals: dict[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    """Rows of ``columns`` from ``table`` where ``in_column`` is one of ``values`` (and each
    column of ``equals`` has its value). Only plain columns (text, integers) may be read.

    A hot-path lookup for ingest (ids already stored, owners of identities). SQLAlchemy's
    expanding ``IN`` renders and type-processes every value of every chunk (measured: a
    third of the duplicate check of a 10,000-event batch); here SQLite gets one ``?`` per
    value in chunks below its variable limit and PostgreSQL one ``= ANY(array)`` parameter.
    Values are always bound parameters.
    """
    if not values:
        return []
    equals = equals or {}
    for name in (*columns, in_column, *equals):
        if name not in table.c:
            raise ValueError(f"{table.name} has no column {name!r}")
    dialect = session.get_bind().dialect
    cols = ", ".join(f'"{c}"' for c in columns)
    conn = session.connection()
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        conds = [f'"{name}" = %s' for name in equals]
        conds.append(f'"{in_column}" = ANY(%s)')
        sql = f'SELECT {cols} FROM "{table.name}" WHERE {" AND ".join(conds)}'
        params = (*equals.values(), list(values))
        return [tuple(r) for r in conn.exec_driver_sql(sql, params)]
    if dialect.name != "sqlite":
        stmt = select(*[table.c[c] for c in columns]).where(
            table.c[in_column].in_(list(values)),
            *[table.c[name] == value for name, value in equals.items()],
        )
        return [tuple(r) for r in conn.execute(stmt)]
    head = [f'"{name}" = ?' for name in equals]
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(values), _SQLITE_IN_CHUNK):
        chunk = values[start : start + _SQLITE_IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        conds = [*head, f'"{in_column}" IN ({marks})']
        sql = f'SELECT {cols} FROM "{table.name}" WHERE {" AND ".join(conds)}'
        out.extend(conn.exec_driver_sql(sql, (*equals.values(), *chunk)).fetchall())
    return out


_SQLITE_IN_CHUNK = 5000  # SQLite >= 3.32 allows 32,766 variables per statement


def _sqlite_params(
    table: Table, columns: list[str], rows: Sequence[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """Rows as driver tuples, with the conversions SQLite needs done here."""
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
    return [
        tuple(
            value if conv is None or value is None else conv(value)
            for conv, value in zip(converters, row.values(), strict=True)
        )
        for row in rows
    ]


def _copy_postgres(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    import psycopg
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
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(tuple(
                    value if conv is None or value is None else conv(value)
                    for conv, value in zip(converters, row.values(), strict=True)
                ))
    except psycopg.errors.IntegrityError as exc:
        # The raw cursor bypasses SQLAlchemy, which would have wrapped this: callers (e.g.
        # ``run_unit``'s retry when a concurrent batch created the same identity first)
        # catch SQLAlchemy's IntegrityError on every store.
        raise IntegrityError(statement, None, exc) from exc


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
