"""Engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

import orjson
from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, event, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine, create_engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    """Now, as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite has no time zones, so values are normalised to naive UTC on the way in and
    marked UTC on the way out; PostgreSQL stores ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        dict[str, Any] | None: JSONType,
        list[Any]: JSONType,
    }


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.current_timestamp()
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the console read while ingest writes; NORMAL sync is durable across app crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted and overwritten content is zeroed, so an erased person's data does not linger
    # in free pages (PIPL erasure; see siyu.privacy.erasure.reclaim_space).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    # Reads of a large database go through the OS page cache without a copy per page.
    cursor.execute("PRAGMA mmap_size=8589934592")
    cursor.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL mode and a generous busy timeout."""
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql+psycopg"):
        # psycopg prepares a statement server-side after its fifth run, and PostgreSQL then
        # may settle on a generic plan made while a table was still small (fresh statistics
        # lag bulk loads): id lookups turn into sequential scans and ingest slows 20-fold.
        # Custom plans per execution keep the indexes in use.
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("prepare_threshold", None)
        kwargs["connect_args"] = connect_args
    kwargs.setdefault("pool_pre_ping", True)
    # Up to 40 connections under a burst (10 kept): as many as the server's threadpool has
    # threads (anyio's default 40), so a request thread never waits on the pool while others
    # hold connections and wait on it (50 concurrent bookings on one slot saw requests time
    # out after the pool's 30 s at 30 connections).
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 30)
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


T = TypeVar("T")


def run_unit(factory: sessionmaker[Session], fn: Callable[[Session], T], retries: int = 2) -> T:
    """Run ``fn`` in its own transaction and commit; retry when a concurrent writer won a
    race on a unique key (two batches creating the same identity at once)."""
    for attempt in range(retries + 1):
        session = factory()
        try:
            result = fn(session)
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            if attempt == retries:
                raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    raise AssertionError("unreachable")


def refresh_statistics(session: Session, tables: list[str] | None = None) -> None:
    """Update the planner's statistics after a bulk load or rewrite.

    PostgreSQL's autovacuum may be off or lag behind a bulk load, and a planner that still
    thinks a table is empty picks sequential scans for lookups; so bulk paths call this.
    SQLite runs ``PRAGMA optimize``, which re-analyses only where it helps.
    """
    if session.get_bind().dialect.name == "postgresql":
        names = ", ".join(f'"{t}"' for t in tables) if tables else ""
        session.execute(text(f"ANALYZE {names}"))
    else:
        session.execute(text("PRAGMA optimize"))


ANALYTICS_WORK_MEM = "256MB"


def use_analytics_memory(session: Session) -> None:
    """Give this transaction's set-based passes over every customer room to hash.

    PostgreSQL hashes an ``IN (subquery)`` only when it expects the hash to fit in
    ``work_mem`` (4 MB by default); otherwise it rescans the subquery for every outer row.
    A rule's subqueries over a million customers exceed 4 MB, and the full journeys
    recomputation at 1M customers ran for over 13 minutes without finishing that way, 69 s
    with 256 MB (the memory is taken only as far as a hash needs it, and only until the
    transaction ends: ``SET LOCAL``). SQLite builds its own index for such a subquery.
    JIT compilation is off for the same transaction: the stage query's many subplans cost
    4.4 s to compile of its 18 s, and nothing of the run repeats enough to earn it back.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL work_mem = '{ANALYTICS_WORK_MEM}'"))
        session.execute(text("SET LOCAL jit = off"))
