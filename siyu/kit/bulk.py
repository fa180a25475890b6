"""Bulk reads and writes for hot paths (batch ingest, demo seeding, the playbook engine)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, Date, Table, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

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


# -- set-based writes on PostgreSQL -------------------------------------------------------------
#
# A many-row INSERT through SQLAlchemy's "insertmanyvalues" is a statement with a placeholder
# per value (1,000 rows of a dozen columns: 12,000), which psycopg re-parses every time (too
# long for its query cache), and an executemany without RETURNING is one statement per row.
# ``unnest`` over one array per column is one short statement whatever the row count: parsed
# once, planned once, shipped as arrays.


def _pg_array_type(column: Any, dialect: Any) -> tuple[str, bool]:
    """The PostgreSQL array element type to ship ``column``'s values as, and whether they
    are JSON (shipped as text and cast)."""
    impl = column.type
    if isinstance(impl, TypeDecorator):
        impl = impl.impl
    impl = impl.dialect_impl(dialect) if hasattr(impl, "dialect_impl") else impl
    if isinstance(impl, JSON):
        return "text", True
    return column.type.compile(dialect=dialect), False


def _pg_arrays(table: Any, columns: list[str], rows: list[dict[str, Any]], dialect: Any
               ) -> tuple[list[str], dict[str, list[Any]]]:
    exprs: list[str] = []
    params: dict[str, list[Any]] = {}
    for n, name in enumerate(columns):
        column = table.c[name]
        typ, is_json = _pg_array_type(column, dialect)
        values = [r.get(name) for r in rows]
        if is_json:
            values = [None if v is None else _json_text(v) for v in values]
        elif isinstance(column.type, UTCDateTime):
            values = [column.type.process_bind_param(v, dialect) for v in values]
        params[f"a{n}"] = values
        exprs.append(f"CAST(:a{n} AS {typ}[])")
    return exprs, params


def pg_insert_rows(session: Session, table: Any, rows: list[dict[str, Any]], *,
                   conflict: list[str] | None = None, returning: list[str] | None = None,
                   chunk: int = 5000) -> list[Any]:
    """INSERT ``rows`` (dicts with the same keys) into ``table`` on PostgreSQL in one
    ``INSERT ... SELECT FROM unnest(...)`` per ``chunk`` rows; ``conflict`` names the unique
    columns for ``ON CONFLICT DO NOTHING``; returns the ``returning`` columns' rows."""
    if not rows:
        return []
    dialect = session.get_bind().dialect
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    casts = []
    for c in columns:
        _typ, is_json = _pg_array_type(table.c[c], dialect)
        casts.append(f'u."{c}"::jsonb' if is_json and isinstance(
            table.c[c].type.dialect_impl(dialect), JSONB) else
            f'u."{c}"::json' if is_json else f'u."{c}"')
    out: list[Any] = []
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        exprs, params = _pg_arrays(table, columns, part, dialect)
        sql = (f'INSERT INTO "{table.name}" ({names}) SELECT {", ".join(casts)} '
               f'FROM unnest({", ".join(exprs)}) AS u({names})')
        if conflict:
            sql += f' ON CONFLICT ({", ".join(conflict)}) DO NOTHING'
        if returning:
            sql += f' RETURNING {", ".join(returning)}'
            out.extend(session.execute(text(sql), params).all())
        else:
            session.execute(text(sql), params)
    return out


def pg_update_rows(session: Session, table: Any, rows: list[dict[str, Any]], *,
                   key: str = "id", chunk: int = 5000) -> None:
    """UPDATE ``table`` from ``rows`` (dicts with ``key`` and the same columns to set) on
    PostgreSQL in one ``UPDATE ... FROM unnest(...)`` per ``chunk`` rows."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    sets = []
    for c in columns:
        if c == key:
            continue
        _typ, is_json = _pg_array_type(table.c[c], dialect)
        sets.append(f'"{c}" = u."{c}"' + ("::jsonb" if is_json else ""))
    for start in range(0, len(rows), chunk):
        exprs, params = _pg_arrays(table, columns, rows[start:start + chunk], dialect)
        session.execute(text(
            f'UPDATE "{table.name}" AS t SET {", ".join(sets)} '
            f'FROM unnest({", ".join(exprs)}) AS u({names}) WHERE t."{key}" = u."{key}"'),
            params)


def id_in(column: Any, ids: Any, session: Session, element: Any = None) -> Any:
    """``column IN ids`` -- on PostgreSQL as ``column = ANY(:array)``: one parameter, not
    one per id (a 500-id list made a statement psycopg re-parses on every execution)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(ids), type_=ARRAY(element or BigInteger)))
    return column.in_(list(ids))
