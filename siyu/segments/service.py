"""Segments: count a rule, save it, keep its membership current, read who entered and left.

Service functions take the session explicitly and never commit; the API request, the CLI
command or the job that calls them commits. Rules come in as text (parsed, errors carry a
character position) or JSON (validated, errors carry a path); both are stored as JSON with
their canonical text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ClauseElement,
    Executable,
    Select,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

from siyu.customers.models import Customer, Identity
from siyu.db import UTCDateTime, utcnow
from siyu.jobs import service as jobs
from siyu.kit import labels
from siyu.segments import hooks
from siyu.segments.compiler import compile_rule, count_statement, rule_conditions
from siyu.segments.errors import InvalidRule, InvalidSegment, SegmentExists, SegmentNotFound
from siyu.segments.models import Segment, SegmentChange, SegmentMember, SegmentSnapshot
from siyu.segments.rules import (
    Rule,
    RuleError,
    describe_zh,
    from_json,
    parse,
    to_json,
    to_text,
)

DEFAULT_TIMEZONE = "Asia/Shanghai"
REFRESH_JOB = "segments.refresh_all"
MAX_NAME_LENGTH = 100
SPARK_POINTS = 30


# -- reading rules ---------------------------------------------------------------------------


def read_rule(text: str | None = None, rule_json: Any = None) -> Rule:
    """The rule given as text or as JSON (exactly one); raises `InvalidRule` (naming the
    field, with a position or path) or `InvalidSegment` when neither or both are given."""
    if (text is None) == (rule_json is None):
        raise InvalidSegment("give the rule either as text ('rule') or as JSON ('rule_json')",
                             details={"field": "rule", "reason": "exactly one of rule, "
                                      "rule_json is required"})
    if text is not None:
        if not isinstance(text, str):
            raise InvalidSegment("'rule' must be a string of rule text",
                                 details={"field": "rule", "reason": "type"})
        try:
            return parse(text)
        except RuleError as exc:
            raise InvalidRule(exc, field="rule") from None
    try:
        return from_json(rule_json)
    except RuleError as exc:
        raise InvalidRule(exc, field="rule_json") from None


def _as_rule(rule: Rule | str) -> Rule:
    return read_rule(text=rule) if isinstance(rule, str) else rule


@dataclass(frozen=True)
class CountResult:
    count: int
    rule: Rule

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "text": to_text(self.rule), "rule": to_json(self.rule),
                "description_zh": describe_zh(self.rule)}


def count_rule(session: Session, rule: Rule | str, *, now: dt.datetime | None = None,
               timezone: str = DEFAULT_TIMEZONE) -> CountResult:
    """How many active customers match ``rule`` (text or AST) at ``now`` (default: now)."""
    parsed = _as_rule(rule)
    count = session.scalar(count_statement(parsed, now=now or utcnow(), timezone=timezone))
    return CountResult(int(count or 0), parsed)


def explain_rule(session: Session, rule: Rule | str, *, now: dt.datetime | None = None,
                 timezone: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """The rule's canonical text, JSON, Chinese description, and the SQL the session's
    database runs for it, with placeholders and, separately, the bound values."""
    parsed = _as_rule(rule)
    statement = compile_rule(parsed, now=now or utcnow(), timezone=timezone)
    dialect = session.get_bind().dialect
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return {
        "text": to_text(parsed),
        "rule": to_json(parsed),
        "description_zh": describe_zh(parsed),
        "dialect": dialect.name,
        "sql": str(compiled),
        "params": {k: _jsonable(v) for k, v in compiled.params.items()},
    }


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value


class _ExplainPlan(Executable, ClauseElement):
    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_ExplainPlan)
def _compile_explain(element: _ExplainPlan, compiler: SQLCompiler, **kw: Any) -> str:
    prefix = "EXPLAIN QUERY PLAN " if compiler.dialect.name == "sqlite" else "EXPLAIN "
    return prefix + compiler.process(element.statement, **kw)


def query_plan(session: Session, rule: Rule | str, *, now: dt.datetime | None = None,
               timezone: str = DEFAULT_TIMEZONE) -> list[str]:
    """The database's plan for counting ``rule`` (SQLite ``EXPLAIN QUERY PLAN`` details, or
    PostgreSQL ``EXPLAIN`` lines)."""
    statement = count_statement(_as_rule(rule), now=now or utcnow(), timezone=timezone)
    rows = session.execute(_ExplainPlan(statement)).all()
    return [str(row[-1]) for row in rows]


# -- saved segments --------------------------------------------------------------------------


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidSegment("segment name must not be empty",
                             details={"field": "name", "reason": "empty"})
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidSegment(f"segment name is longer than {MAX_NAME_LENGTH} characters",
                             details={"field": "name", "reason": "too long"})
    return name


def get_segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise SegmentNotFound(f"segment {segment_id} not found")
    return segment


def get_segment_by_name(session: Session, name: str) -> Segment:
    segment = session.scalar(select(Segment).where(Segment.name == name.strip()))
    if segment is None:
        raise SegmentNotFound(f"segment {name!r} not found")
    return segment


def _check_unique(session: Session, name: str, *, except_id: int | None = None) -> None:
    query = select(Segment.id).where(Segment.name == name)
    if except_id is not None:
        query = query.where(Segment.id != except_id)
    if session.scalar(query) is not None:
        raise SegmentExists(f"a segment named {name!r} already exists",
                            details={"field": "name", "reason": "already exists"})


def create_segment(session: Session, name: str, rule: Rule | str, *, created_by: str | None,
                   now: dt.datetime | None = None, timezone: str = DEFAULT_TIMEZONE
                   ) -> Segment:
    """Save ``rule`` as segment ``name`` (unique) and compute its members right away; the
    initial members are recorded as having entered. Schedules the periodic refresh."""
    name = _clean_name(name)
    parsed = _as_rule(rule)
    _check_unique(session, name)
    now = now or utcnow()
    segment = Segment(name=name, rule=to_json(parsed), text=to_text(parsed),
                      created_by=created_by, size=0)
    session.add(segment)
    session.flush()
    refresh_segment(session, segment.id, now=now, timezone=timezone)
    schedule_refresh(session, now=now)
    return segment


def update_segment(session: Session, segment_id: int, *, name: str | None = None,
                   rule: Rule | str | None = None, now: dt.datetime | None = None,
                   timezone: str = DEFAULT_TIMEZONE) -> Segment:
    """Rename a segment and/or change its rule; a new rule is applied at once (members
    entering and leaving because of it are recorded like any refresh)."""
    segment = get_segment(session, segment_id)
    new_name = _clean_name(name) if name is not None else None
    parsed = _as_rule(rule) if rule is not None else None
    if new_name is not None:
        _check_unique(session, new_name, except_id=segment.id)
        segment.name = new_name
    if parsed is not None:
        segment.rule = to_json(parsed)
        segment.text = to_text(parsed)
    session.flush()
    if parsed is not None:
        refresh_segment(session, segment.id, now=now or utcnow(), timezone=timezone)
    return segment


def delete_segment(session: Session, segment_id: int) -> None:
    """Delete a segment with its members, changes and snapshots."""
    segment = get_segment(session, segment_id)
    for model in (SegmentMember, SegmentChange, SegmentSnapshot):
        session.execute(delete(model).where(model.segment_id == segment.id))
    session.delete(segment)
    session.flush()


@dataclass(frozen=True)
class RefreshResult:
    segment_id: int
    name: str
    size: int
    entered: int
    left: int

    def to_dict(self) -> dict[str, Any]:
        return {"segment_id": self.segment_id, "name": self.name, "size": self.size,
                "entered": self.entered, "left": self.left}


def refresh_segment(session: Session, segment_id: int, *, now: dt.datetime,
                    timezone: str = DEFAULT_TIMEZONE) -> RefreshResult:
    """Re-evaluate the segment's rule at ``now`` and bring its members up to date.

    Set-based, in the database: one INSERT ... SELECT records who entered (matching now,
    not a member), another who left (a member, not matching now); members are then added
    and removed from those change rows. A snapshot row keeps the size. Concurrent refreshes
    of one segment are serialised by a row lock (PostgreSQL; SQLite has one writer).
    """
    segment = session.scalar(select(Segment).where(Segment.id == segment_id)
                             .with_for_update())
    if segment is None:
        raise SegmentNotFound(f"segment {segment_id} not found")
    rule = from_json(segment.rule)
    conditions = rule_conditions(rule, now=now, timezone=timezone)
    sid = literal(segment.id)
    at = literal(now, UTCDateTime())
    # Anti-joins are written NOT EXISTS, not NOT IN: PostgreSQL runs a NOT IN whose subquery
    # it expects to exceed work_mem as a rescan per outer row (measured at 1M customers: a
    # 35,000-member segment's refresh took 28.5 s that way, 1.3 s with NOT EXISTS); SQLite
    # answers both alike.
    is_member = select(SegmentMember.customer_id).where(
        SegmentMember.segment_id == segment.id, SegmentMember.customer_id == Customer.id)
    before = session.scalar(select(func.coalesce(func.max(SegmentChange.id), 0))) or 0
    columns = ["segment_id", "customer_id", "kind", "at"]
    session.execute(insert(SegmentChange).from_select(columns, select(
        sid, Customer.id, literal("entered"), at,
    ).where(*conditions, ~is_member.exists())))
    still_matches = select(Customer.id).where(Customer.id == SegmentMember.customer_id,
                                              *conditions)
    session.execute(insert(SegmentChange).from_select(columns, select(
        sid, SegmentMember.customer_id, literal("left"), at,
    ).where(SegmentMember.segment_id == segment.id, ~still_matches.exists())))
    this_refresh = select(SegmentChange.customer_id).where(
        SegmentChange.segment_id == segment.id, SegmentChange.id > before)
    session.execute(delete(SegmentMember).where(
        SegmentMember.segment_id == segment.id,
        SegmentMember.customer_id.in_(this_refresh.where(SegmentChange.kind == "left"))))
    session.execute(insert(SegmentMember).from_select(
        ["segment_id", "customer_id", "since"],
        select(SegmentChange.segment_id, SegmentChange.customer_id, SegmentChange.at).where(
            SegmentChange.segment_id == segment.id, SegmentChange.id > before,
            SegmentChange.kind == "entered")))
    size = session.scalar(select(func.count()).select_from(SegmentMember)
                          .where(SegmentMember.segment_id == segment.id)) or 0
    # Counted from the rows written (drivers do not all report INSERT ... SELECT rowcounts).
    counts = dict(session.execute(
        select(SegmentChange.kind, func.count())
        .where(SegmentChange.segment_id == segment.id, SegmentChange.id > before)
        .group_by(SegmentChange.kind)).all())
    n_entered, n_left = counts.get("entered", 0), counts.get("left", 0)
    segment.size = size
    segment.refreshed_at = now
    session.add(SegmentSnapshot(segment_id=segment.id, at=now, size=size, entered=n_entered,
                                left=n_left))
    session.flush()
    if (n_entered or n_left) and hooks.has_hooks():
        changes = session.execute(select(SegmentChange.customer_id, SegmentChange.kind).where(
            SegmentChange.segment_id == segment.id, SegmentChange.id > before)).all()
        hooks.run_after_refresh(session, segment.name,
                                [c for c, k in changes if k == "entered"],
                                [c for c, k in changes if k == "left"], now)
    return RefreshResult(segment.id, segment.name, size, n_entered, n_left)


def refresh_all(session: Session, *, now: dt.datetime, timezone: str = DEFAULT_TIMEZONE
                ) -> list[RefreshResult]:
    """Refresh every saved segment at ``now``, in id order."""
    ids = list(session.scalars(select(Segment.id).order_by(Segment.id)))
    return [refresh_segment(session, sid, now=now, timezone=timezone) for sid in ids]


def _bucket_start(now: dt.datetime, minutes: int) -> dt.datetime:
    epoch = int(now.timestamp())
    step = minutes * 60
    return dt.datetime.fromtimestamp(epoch - epoch % step, tz=dt.UTC)


def schedule_refresh(session: Session, *, now: dt.datetime, minutes: int | None = None
                     ) -> dt.datetime:
    """Enqueue the periodic ``segments.refresh_all`` for the start of the next time bucket
    (deduplicated per bucket, so any number of callers schedule it once); returns when."""
    from siyu.segments.config import get_segment_settings

    minutes = minutes or get_segment_settings().refresh_minutes
    run_at = _bucket_start(now, minutes) + dt.timedelta(minutes=minutes)
    jobs.enqueue(session, REFRESH_JOB, {"reason": "schedule"},
                 dedup_key=f"{REFRESH_JOB}:{run_at.isoformat()}", run_at=run_at)
    return run_at


def request_refresh(session: Session, *, now: dt.datetime | None = None,
                    reason: str = "scores") -> None:
    """Enqueue ``segments.refresh_all`` to run now, e.g. after scores were recomputed; calls
    within the same minute share one job."""
    now = now or utcnow()
    bucket = _bucket_start(now, 1)
    jobs.enqueue(session, REFRESH_JOB, {"reason": reason},
                 dedup_key=f"{REFRESH_JOB}:{reason}:{bucket.isoformat()}", run_at=now)


# -- reading saved segments ------------------------------------------------------------------


def segment_to_dict(segment: Segment) -> dict[str, Any]:
    rule = from_json(segment.rule)
    return {
        "id": segment.id, "name": segment.name, "text": segment.text, "rule": segment.rule,
        "description_zh": describe_zh(rule), "size": segment.size,
        "created_by": segment.created_by,
        "created_at": _jsonable(segment.created_at), "updated_at": _jsonable(segment.updated_at),
        "refreshed_at": _jsonable(segment.refreshed_at) if segment.refreshed_at else None,
    }


def size_history(session: Session, segment_ids: list[int], *, points: int = SPARK_POINTS
                 ) -> dict[int, list[dict[str, Any]]]:
    """The latest ``points`` snapshots per segment, oldest first."""
    history: dict[int, list[dict[str, Any]]] = {sid: [] for sid in segment_ids}
    if not segment_ids:
        return history
    ranked = select(
        SegmentSnapshot.segment_id, SegmentSnapshot.at, SegmentSnapshot.size,
        SegmentSnapshot.entered, SegmentSnapshot.left,
        func.row_number().over(partition_by=SegmentSnapshot.segment_id,
                               order_by=SegmentSnapshot.id.desc()).label("rank"),
    ).where(SegmentSnapshot.segment_id.in_(segment_ids)).subquery()
    rows = session.execute(select(ranked).where(ranked.c.rank <= points)
                           .order_by(ranked.c.segment_id, ranked.c.rank.desc()))
    for sid, at, size, entered, left, _rank in rows:
        history[sid].append({"at": _jsonable(at), "size": size, "entered": entered,
                             "left": left})
    return history


def list_segments(session: Session, *, history_points: int = SPARK_POINTS
                  ) -> list[dict[str, Any]]:
    """Every saved segment (by name) with its size history."""
    segments = list(session.scalars(select(Segment).order_by(Segment.name)))
    history = size_history(session, [s.id for s in segments], points=history_points)
    return [{**segment_to_dict(s), "history": history[s.id]} for s in segments]


@dataclass(frozen=True)
class Change:
    id: int
    customer_id: int
    kind: str
    at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "customer_id": self.customer_id, "kind": self.kind,
                "at": self.at.isoformat()}


def changes(session: Session, segment_id: int, *, after_id: int = 0, kind: str | None = None,
            limit: int = 100) -> list[Change]:
    """Entries and exits of a segment with change id > ``after_id``, oldest first."""
    get_segment(session, segment_id)
    if kind is not None and kind not in ("entered", "left"):
        raise InvalidSegment("kind must be 'entered' or 'left'",
                             details={"field": "kind", "reason": "unknown kind"})
    query = (select(SegmentChange).where(SegmentChange.segment_id == segment_id,
                                         SegmentChange.id > after_id)
             .order_by(SegmentChange.id).limit(limit))
    if kind is not None:
        query = query.where(SegmentChange.kind == kind)
    return [Change(c.id, c.customer_id, c.kind, c.at) for c in session.scalars(query)]


def entered_since(session: Session, segment_id: int, after_id: int, *, limit: int = 1000
                  ) -> list[Change]:
    """Customers who entered the segment in changes with id > ``after_id``, oldest first.

    A consumer (a playbook trigger) keeps the largest id it has handled and passes it back;
    per segment, change ids grow in commit order because refreshes of a segment are
    serialised.
    """
    return changes(session, segment_id, after_id=after_id, kind="entered", limit=limit)


@dataclass
class MemberPage:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "total": self.total, "page": self.page,
                "per_page": self.per_page}


def members(session: Session, segment_id: int, *, page: int = 1, per_page: int = 50,
            show_pii: bool = False) -> MemberPage:
    """One page of the segment's members (by customer id) with a short card each."""
    segment = get_segment(session, segment_id)
    rows = session.execute(
        select(SegmentMember.customer_id, SegmentMember.since)
        .where(SegmentMember.segment_id == segment.id)
        .order_by(SegmentMember.customer_id)
        .offset((page - 1) * per_page).limit(per_page)).all()
    from siyu.customers import service as customers  # (heavy: phone numbers; CLI counts skip it)

    cards = customers.customer_cards(session, [r[0] for r in rows], show_pii=show_pii)
    items = []
    for customer_id, since in rows:
        card = cards.get(customer_id, {"id": customer_id})
        items.append({**card, "since": since.isoformat()})
    return MemberPage(items, segment.size, page, per_page)


EXPORT_FIELDS = ("customer_id", "external_id", "name", "phone")
# Exports are opened by people (in a spreadsheet): the header speaks their language.
EXPORT_HEADER = tuple(labels.label(field, "column") for field in EXPORT_FIELDS)


def export_rows(session: Session, segment_id: int, *, batch: int = 5000
                ) -> Iterator[list[tuple[Any, ...]]]:
    """The segment's members as CSV rows (customer id, external id, name, masked phone),
    in batches by customer id. Phones are always masked: exports leave the system."""
    from siyu.customers import service as customers

    segment = get_segment(session, segment_id)
    last = 0
    while True:
        ids = list(session.scalars(
            select(SegmentMember.customer_id)
            .where(SegmentMember.segment_id == segment.id, SegmentMember.customer_id > last)
            .order_by(SegmentMember.customer_id).limit(batch)))
        if not ids:
            return
        names: dict[int, str | None] = {
            cid: name for cid, name in session.execute(
                select(Customer.id, Customer.name).where(Customer.id.in_(ids)))}
        external: dict[int, str] = {}
        phones: dict[int, str] = {}
        for cid, kind, value in session.execute(
            select(Identity.customer_id, Identity.kind, Identity.value)
            .where(Identity.customer_id.in_(ids),
                   Identity.kind.in_(("external_id", "phone")))
            .order_by(Identity.id)
        ):
            target = external if kind == "external_id" else phones
            target.setdefault(cid, value)
        yield [(cid, external.get(cid, ""), names.get(cid) or "",
                customers.mask_value("phone", phones[cid]) if cid in phones else "")
               for cid in ids]
        last = ids[-1]


def customers_matching(session: Session, rule: Rule | str, customer_ids: list[int], *,
                       now: dt.datetime | None = None, timezone: str = DEFAULT_TIMEZONE,
                       active_only: bool = True) -> set[int]:
    """Which of ``customer_ids`` match ``rule`` at ``now``: one query per 500 ids (a
    playbook's audience and branch conditions for a whole batch)."""
    parsed = _as_rule(rule)
    conditions = rule_conditions(parsed, now=now or utcnow(), timezone=timezone)
    if not active_only:
        conditions = conditions[1:]
    out: set[int] = set()
    for start in range(0, len(customer_ids), 500):
        out.update(int(c) for c in session.scalars(
            select(Customer.id).where(*conditions,
                                      Customer.id.in_(customer_ids[start:start + 500]))))
    return out


def member_ids(session: Session, name: str, *, limit: int = 1000) -> list[int]:
    """The customer ids of saved segment ``name``'s members (at its last refresh)."""
    segment = get_segment_by_name(session, name)
    return [int(c) for c in session.scalars(
        select(SegmentMember.customer_id).where(SegmentMember.segment_id == segment.id)
        .order_by(SegmentMember.customer_id).limit(limit))]


def matching_ids(session: Session, rule: Rule | str, *, now: dt.datetime | None = None,
                 timezone: str = DEFAULT_TIMEZONE, limit: int = 1000) -> list[int]:
    """Up to ``limit`` ids of active customers matching ``rule``."""
    stmt = compile_rule(_as_rule(rule), now=now or utcnow(), timezone=timezone)
    return [int(c) for c in session.scalars(stmt.order_by(Customer.id).limit(limit))]
