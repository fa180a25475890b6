"""All SQL of the analytics domain: per-customer aggregates read in bulk, scores written in
bulk. Timestamps are read as Unix seconds (not datetimes) so a million rows load as numpy
arrays without a Python object per value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    Float,
    String,
    and_,
    case,
    delete,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from siyu.analytics.config import EventMatch, RatingSource
from siyu.analytics.models import CustomerScore
from siyu.customers.models import Customer, Referral
from siyu.events.models import Event, Order
from siyu.events.purchases import is_purchase

_DELETE_CHUNK = 900


class epoch(FunctionElement[float]):
    """Unix seconds of a stored UTC timestamp (whole seconds on SQLite)."""

    type = Float()
    inherit_cache = True


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch, "postgresql")
def _epoch_pg(element: epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS FLOAT8)"


class stored_text(FunctionElement[str]):
    """A UTC timestamp as the exact text :func:`timestamps_text` writes, so a value read
    and written back is unchanged to the microsecond."""

    type = String()
    inherit_cache = True


@compiles(stored_text, "sqlite")
def _stored_text_sqlite(element: stored_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


@compiles(stored_text, "postgresql")
def _stored_text_pg(element: stored_text, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return (f"(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00')")


class json_number(FunctionElement[float]):
    """A JSON object's property as a number, NULL unless it is a JSON number."""

    type = Float()
    inherit_cache = True


class json_text(FunctionElement[str]):
    """A JSON object's property as text, NULL unless it is a JSON string."""

    type = String()
    inherit_cache = True


def _json_args(element: FunctionElement[Any], compiler: SQLCompiler,
               **kw: Any) -> tuple[str, str]:
    column, key = list(element.clauses)
    return compiler.process(column, **kw), compiler.process(key, **kw)


@compiles(json_number, "sqlite")
def _json_number_sqlite(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = _json_args(element, compiler, **kw)
    path = f"('$.' || {key})"
    return (f"(CASE WHEN json_type({column}, {path}) IN ('integer', 'real') "
            f"THEN json_extract({column}, {path}) END)")


@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = _json_args(element, compiler, **kw)
    path = f"('$.' || {key})"
    return (f"(CASE WHEN json_type({column}, {path}) = 'text' "
            f"THEN json_extract({column}, {path}) END)")


@compiles(json_number, "postgresql")
def _json_number_pg(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = _json_args(element, compiler, **kw)
    # CASE fixes the evaluation order, so a string is never cast to a number.
    return (f"(CASE WHEN jsonb_typeof({column} -> CAST({key} AS TEXT)) = 'number' "
            f"THEN CAST({column} ->> CAST({key} AS TEXT) AS FLOAT8) END)")


@compiles(json_text, "postgresql")
def _json_text_pg(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = _json_args(element, compiler, **kw)
    return (f"(CASE WHEN jsonb_typeof({column} -> CAST({key} AS TEXT)) = 'string' "
            f"THEN {column} ->> CAST({key} AS TEXT) END)")




def _matches(rules: Sequence[EventMatch]) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    for rule in rules:
        cond = Event.type == rule.type
        if rule.property is not None:
            cond = and_(cond, json_text(Event.properties, literal(rule.property, String()))
                        == rule.equals)
        clauses.append(cond)
    return or_(*clauses) if clauses else false()


def _rows(session: Session, stmt: Any, dtype: list[tuple[str, str]]) -> NDArray[Any]:
    result = session.connection().execute(stmt)
    return np.fromiter((tuple(r) for r in result), dtype=dtype)


def load_customers(session: Session) -> NDArray[Any]:
    """Active customers ordered by id: ``id``, ``created`` (Unix s) and channel strings."""
    result = session.connection().execute(
        select(Customer.id, epoch(Customer.created_at), Customer.acquisition_channel)
        .where(Customer.status == "active").order_by(Customer.id))
    rows = result.all()
    out = np.empty(len(rows), dtype=[("id", "i8"), ("created", "f8"), ("channel", "O")])
    if rows:
        ids, created, channels = zip(*rows, strict=True)
        out["id"] = ids
        out["created"] = [np.nan if c is None else c for c in created]
        out["channel"] = channels
    return out


def load_purchases(session: Session, *, until: dt.datetime,
                   since: dt.datetime | None = None) -> NDArray[Any]:
    """Purchase orders up to ``until`` (and from ``since``): customer, Unix s, amount."""
    stmt = select(Order.customer_id, epoch(Order.ts), Order.amount).where(
        is_purchase(), Order.ts <= until)
    if since is not None:
        stmt = stmt.where(Order.ts >= since)
    return _rows(session, stmt, [("customer", "i8"), ("ts", "f8"), ("amount", "f8")])


def load_event_facts(session: Session, *, until: dt.datetime, shares: Sequence[EventMatch],
                     feedback: Sequence[EventMatch], complaints: Sequence[EventMatch],
                     ratings: Sequence[RatingSource]) -> NDArray[Any]:
    """Per customer with events up to ``until``: share, feedback and complaint counts, the
    first complaint and the last event (Unix s, NaN when none), and the sum and count of
    ratings scaled to 0..1."""
    complaint = _matches(complaints)
    rating: ColumnElement[Any]
    if ratings:
        rating = case(*[(Event.type == src.type,
                         json_number(Event.properties, literal(src.property, String()))
                         / src.scale_max) for src in ratings])
    else:
        rating = literal(None, Float())
    stmt = (
        select(
            Event.customer_id,
            func.sum(case((_matches(shares), 1), else_=0)),
            func.sum(case((_matches(feedback), 1), else_=0)),
            func.sum(case((complaint, 1), else_=0)),
            epoch(func.min(case((complaint, Event.ts)))),
            epoch(func.max(Event.ts)),
            func.coalesce(func.sum(rating), 0.0),
            func.count(rating),
        )
        .where(Event.ts <= until)
        .group_by(Event.customer_id)
    )
    dtype = [("customer", "i8"), ("shares", "i8"), ("feedbacks", "i8"), ("complaints", "i8"),
             ("first_complaint", "f8"), ("last_event", "f8"), ("rating_sum", "f8"),
             ("rating_count", "i8")]
    result = session.connection().execute(stmt)
    return np.fromiter(
        ((c, s, f, n, np.nan if fc is None else fc, np.nan if le is None else le, rs, rc)
         for c, s, f, n, fc, le, rs, rc in result), dtype=dtype)


def load_referrals(session: Session, *, until: dt.datetime) -> tuple[NDArray[Any],
                                                                      NDArray[np.int64]]:
    """(referrer, referrals made up to ``until``) pairs, and the ids of referred customers."""
    made = _rows(session, select(Referral.referrer_id, func.count()).where(
        Referral.at <= until).group_by(Referral.referrer_id),
        [("customer", "i8"), ("count", "i8")])
    referred = np.fromiter(
        session.connection().execute(select(Referral.referred_id).where(
            Referral.at <= until).distinct()).scalars(), dtype=np.int64)
    return made, referred


def load_previous(session: Session) -> NDArray[Any]:
    """Stored scores' stage columns: customer, lifecycle, since (stored text), audience,
    whether a true fan."""
    result = session.connection().execute(
        select(CustomerScore.customer_id, CustomerScore.lifecycle,
               stored_text(CustomerScore.lifecycle_since), CustomerScore.audience,
               CustomerScore.is_true_fan)
        .order_by(CustomerScore.customer_id))
    rows = result.all()
    out = np.empty(len(rows), dtype=[("customer", "i8"), ("lifecycle", "O"), ("since", "O"),
                                     ("audience", "O"), ("fan", "O")])
    if rows:
        ids, stages, since, audience, fan = zip(*rows, strict=True)
        out["customer"] = ids
        out["lifecycle"] = stages
        out["since"] = since
        out["audience"] = audience
        out["fan"] = [FAN_STAGES[bool(f)] for f in fan]
    return out


#: The ``fan`` dimension's stages in ``stage_transitions``: becoming and ceasing to be a
#: true fan are recorded like lifecycle moves, so the dashboard can draw the fans' trend.
FAN_STAGES = {True: "true_fan", False: "not_fan"}


SCORE_COLUMNS: tuple[str, ...] = (
    "customer_id", "computed_at", "orders_count", "spend", "avg_order_value",
    "first_order_at", "last_order_at", "last_active_at", "referrals_count", "rfm_r", "rfm_f",
    "rfm_m", "rfm_score", "rfm_tier", "lifecycle", "lifecycle_since", "p_alive",
    "expected_purchases", "clv", "fan_score", "is_true_fan", "audience", "value_asset",
    "brand_asset", "retention_asset", "explanations", "fan_repeat", "fan_recommend",
    "fan_tolerance",
)
TIMESTAMP_COLUMNS = frozenset({"computed_at", "first_order_at", "last_order_at",
                               "last_active_at", "lifecycle_since"})


def timestamps_text(seconds: NDArray[np.float64], dialect: str) -> list[str | None]:
    """Unix seconds as the text each database stores for a UTC timestamp (None for NaN)."""
    ok = ~np.isnan(seconds)
    micros = np.where(ok, np.round(seconds * 1e6), 0).astype(np.int64)
    text = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us").astype("S26")
    # ISO 'T' -> ' ' in place on the bytes, the form SQLAlchemy writes for SQLite.
    text.view(np.uint8).reshape(-1, 26)[:, 10] = ord(" ")
    out = text.astype("U26").astype(object)
    if dialect == "postgresql":
        out = out + "+00"
    out[~ok] = None
    return list(out.tolist())


def replace_scores(session: Session, customer_ids: NDArray[np.int64],
                   previous_ids: NDArray[np.int64], rows: Iterable[tuple[Any, ...]]) -> None:
    """Delete the stored scores of ``customer_ids`` and insert ``rows`` (values in
    :data:`SCORE_COLUMNS` order, timestamps as database text, explanations as JSON text).

    SQLite gets one prepared INSERT executed for all rows; PostgreSQL gets COPY.
    """
    conn = session.connection()
    stale = previous_ids[np.isin(previous_ids, customer_ids)]
    postgres = conn.dialect.name == "postgresql"
    if stale.size and stale.size == previous_ids.size:
        # Every stored row is being replaced: one statement, no id lists.
        conn.execute(delete(CustomerScore))
    elif stale.size and postgres:
        conn.exec_driver_sql("DELETE FROM customer_scores WHERE customer_id = ANY(%s)",
                             (stale.tolist(),))
    else:
        for start in range(0, stale.size, _DELETE_CHUNK):
            chunk = stale[start:start + _DELETE_CHUNK].tolist()
            conn.execute(delete(CustomerScore).where(CustomerScore.customer_id.in_(chunk)))
    columns = ", ".join(SCORE_COLUMNS)
    if postgres:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(
                f"COPY customer_scores ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in SCORE_COLUMNS)
    conn.exec_driver_sql(f"INSERT INTO customer_scores ({columns}) VALUES ({marks})",
                         list(rows))


TRANSITION_COLUMNS = ("customer_id", "dimension", "from_stage", "to_stage", "at",
                      "created_at")


def add_transitions(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Append stage transitions given as tuples in :data:`TRANSITION_COLUMNS` order
    (timestamps as database text): COPY on PostgreSQL, one prepared INSERT on SQLite."""
    if not rows:
        return
    conn = session.connection()
    columns = ", ".join(TRANSITION_COLUMNS)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(
                f"COPY stage_transitions ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in TRANSITION_COLUMNS)
    conn.exec_driver_sql(f"INSERT INTO stage_transitions ({columns}) VALUES ({marks})", rows)


def count_scored(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(CustomerScore)) or 0)


__all__ = ["SCORE_COLUMNS", "TIMESTAMP_COLUMNS", "epoch", "is_purchase"]
