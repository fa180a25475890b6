"""Durable execution of playbook runs.

**Entering.** Triggers (:mod:`siyu.playbooks.triggers`) call :func:`enter` in the
transaction that stored the triggering record (an ingest batch with more than
``SIYU_PLAYBOOK_INLINE_ENTRIES`` hits records them as a ``playbooks.enter`` job instead, and
the worker calls it with the batch's moment): the audience rule is checked for the whole
batch in one query, the reentry rule is the unique ``(playbook_id, entry_key)`` (a repeated
trigger inserts nothing), the holdout is a hash of (playbook, customer) -- fixed per customer
and playbook -- and runs start due now.

**Executing.** :func:`process_due` claims up to a batch of due runs *in the transaction that
executes them*: on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` (two workers never hold the
same run; a killed worker's transaction is rolled back by the server and its runs are free at
once), on SQLite by taking the write lock with the claiming UPDATE. The customers of the
batch are locked too (PostgreSQL ``FOR NO KEY UPDATE``, in id order) so the frequency caps
are counted and raised by one worker at a time: two workers never both send the message
that crosses a cap. Runs advance instruction by instruction in rounds; the instructions of
one kind in a round are handled together (a branch's rule is one query for all the runs at
it, the policy reads every customer's consents, tags, caps and windows once per batch).
Sends become outbox rows (key ``pb:<run>:<pc>``, so a step is sent at most once whatever
happens) in the same transaction as the run's new position: a crash before the commit loses
nothing (the runs are claimed again), a crash after it repeats nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from siyu.channels import optout
from siyu.playbooks import policy as pol
from siyu.playbooks.models import (
    OPEN_RUN_STATES,
    ContactPolicy,
    Playbook,
    PlaybookRun,
    PlaybookTask,
    PlaybookVersion,
    StepLog,
)
from siyu.playbooks.program import EXIT
from siyu.playbooks.templates import TemplateProblem, render

log = logging.getLogger("siyu.playbooks")
MAX_ROUNDS = 64
ADDRESS_KINDS = {"email": ("email",), "sms": ("phone",),
                 "wecom": ("wecom_userid", "wecom_external_userid"),
                 "wecom_welcome": ("wecom_external_userid",),
                 "wecom_mass": ("wecom_external_userid",), "oa": ("wechat_openid",),
                 "webchat": ()}
SESSION_CHANNELS = ("oa",)
COMPLAINT_TAG = "投诉中"
COMPLAINT_SCENARIO = "投诉"


def holdout_share(playbook_id: int, customer_id: int) -> float:
    """A customer's fixed position in [0, 1) for one playbook's holdout draw."""
    digest = hashlib.sha256(f"holdout:{playbook_id}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def load_policy(session: Session) -> pol.Policy:
    row = session.get(ContactPolicy, 1)
    if row is None:
        return pol.Policy()
    return pol.parse_policy(row.data or {}, paused_all=bool(row.paused_all))


# -- entering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    customer_id: int
    trigger_id: str
    trigger: dict[str, Any]


def enter(session: Session, playbook: Playbook, version: PlaybookVersion,
          entries: list[Entry], *, now: dt.datetime, timezone: str = "Asia/Shanghai") -> int:
    """Start runs of ``playbook`` for ``entries`` (audience, reentry, holdout applied);
    returns how many started."""
    from siyu.segments import service as segments

    spec = version.spec
    if not entries or isinstance(spec.get("audience"), dict):  # a group playbook: no runs
        return 0
    ids = sorted({e.customer_id for e in entries})
    if spec.get("audience"):
        allowed = segments.customers_matching(session, spec["audience"], ids, now=now,
                                              timezone=timezone)
        entries = [e for e in entries if e.customer_id in allowed]
    reentry = spec.get("reentry", "once")
    if isinstance(reentry, int):
        recent = set(session.scalars(select(PlaybookRun.customer_id).where(
            PlaybookRun.playbook_id == playbook.id,
            PlaybookRun.customer_id.in_(ids),
            PlaybookRun.entered_at >= now - dt.timedelta(days=reentry))))
        entries = [e for e in entries if e.customer_id not in recent]
    goal = spec.get("goal") or {}
    holdout_until = now + dt.timedelta(seconds=int(goal.get("within_seconds") or 0))
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for e in entries:
        key = f"c{e.customer_id}" if reentry == "once" else f"c{e.customer_id}:{e.trigger_id}"
        key = key[:200]
        if key in seen:
            continue
        seen.add(key)
        held = holdout_share(playbook.id, e.customer_id) < float(spec.get("holdout") or 0)
        rows.append({"playbook_id": playbook.id, "version_id": version.id,
                     "customer_id": e.customer_id, "entry_key": key,
                     "status": "holdout" if held else "active", "holdout": held, "pc": 0,
                     "due_at": holdout_until if held else now, "entered_at": now,
                     "trigger": e.trigger, "created_at": now, "updated_at": now})
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # One statement compiled once and executed for many rows (SQLAlchemy batches it into
    # multi-row INSERTs): compiling a 500-row VALUES clause per chunk cost more than the
    # database. Count what RETURNING gives back: psycopg reports no rowcount for INSERT ...
    # ON CONFLICT DO NOTHING, so PostgreSQL counted 0 (and woke nobody).
    stmt = (insert(PlaybookRun.__table__)  # type: ignore[arg-type]
            .on_conflict_do_nothing(index_elements=["playbook_id", "entry_key"])
            .returning(PlaybookRun.__table__.c.id))  # type: ignore[attr-defined]
    started = 0
    for start in range(0, len(rows), 5000):
        started += len(session.execute(stmt, rows[start:start + 5000]).all())
    if started:
        wake(session)
    return started


def wake(session: Session) -> None:
    """Wake the workers once the transaction commits: PostgreSQL ``NOTIFY`` (delivered at
    commit) and the in-process notification of the embedded worker."""
    from siyu.jobs import worker

    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify('siyu_work', '')"))
    worker.notify_after_commit(session)


# -- executing --------------------------------------------------------------------------------


@dataclass
class _Run:
    row: PlaybookRun
    program: list[dict[str, Any]]
    playbook: Playbook
    spec: dict[str, Any]
    stopped: bool = False


@dataclass
class _Batch:
    """What a batch knows about its customers, read once."""

    now: dt.datetime
    policy: pol.Policy
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    identities: dict[int, dict[str, str]] = field(default_factory=dict)
    consents: dict[tuple[int, str, str], tuple[bool, str | None]] = field(default_factory=dict)
    complaint: set[int] = field(default_factory=set)
    low_csat: set[int] = field(default_factory=set)
    recent: dict[int, list[tuple[str, dt.datetime, int, bool]]] = field(
        default_factory=dict)
    inbound: dict[int, dt.datetime] = field(default_factory=dict)
    last_orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    context_cache: dict[str, Any] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)


def _claim(session: Session, limit: int, now: dt.datetime,
           playbook_ids: list[int] | None = None) -> list[int]:
    due = (select(PlaybookRun.id)
           .join(Playbook, Playbook.id == PlaybookRun.playbook_id)
           .where(PlaybookRun.status.in_(OPEN_RUN_STATES), PlaybookRun.due_at <= now,
                  Playbook.status == "active")
           .order_by(PlaybookRun.due_at, PlaybookRun.id).limit(limit))
    if playbook_ids is not None:
        due = due.where(PlaybookRun.playbook_id.in_(playbook_ids))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(of=PlaybookRun, skip_locked=True)
        return [int(i) for i in session.scalars(due)]
    # SQLite: the UPDATE takes the database's write lock first, so nothing read below can
    # be changed by another worker before this transaction commits.
    result = session.execute(update(PlaybookRun).where(PlaybookRun.id.in_(due.scalar_subquery()))
                             .values(updated_at=now).returning(PlaybookRun.id))
    return sorted(int(i) for i in result.scalars())


_PROGRAMS: dict[tuple[int, str], tuple[list[dict[str, Any]], dict[str, Any]]] = {}


def _versions(session: Session, ids: set[int]) -> dict[int, tuple[list[dict[str, Any]],
                                                                  dict[str, Any]]]:
    """Programs by version id. A version never changes, so programs are cached per process
    by (id, checksum) -- the checksum guards against a database recreated under a process."""
    keys = dict(session.execute(select(PlaybookVersion.id, PlaybookVersion.checksum)
                                .where(PlaybookVersion.id.in_(ids))).all())
    missing = [i for i, c in keys.items() if (i, c) not in _PROGRAMS]
    if missing:
        for vid, checksum, program, spec in session.execute(
                select(PlaybookVersion.id, PlaybookVersion.checksum, PlaybookVersion.program,
                       PlaybookVersion.spec).where(PlaybookVersion.id.in_(missing))):
            _PROGRAMS[(int(vid), checksum)] = (list(program), dict(spec))
    return {int(i): _PROGRAMS[(i, c)] for i, c in keys.items()}


def process_due(session: Session, *, now: dt.datetime, limit: int = 500,
                timezone: str = "Asia/Shanghai", playbook_ids: list[int] | None = None
                ) -> int:
    """Claim and execute up to ``limit`` due runs in the caller's transaction (the caller
    commits). Returns how many runs were processed."""
    ids = _claim(session, limit, now, playbook_ids)
    if not ids:
        return 0
    rows = list(session.scalars(select(PlaybookRun).where(PlaybookRun.id.in_(ids))))
    playbooks = {p.id: p for p in session.scalars(
        select(Playbook).where(Playbook.id.in_({r.playbook_id for r in rows})))}
    programs = _versions(session, {r.version_id for r in rows})
    runs = [_Run(r, programs[r.version_id][0], playbooks[r.playbook_id],
                 programs[r.version_id][1]) for r in rows if r.version_id in programs]
    runs.sort(key=lambda r: (-r.playbook.priority, r.row.due_at or now, r.row.id))
    customer_ids = sorted({r.row.customer_id for r in runs})
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT id FROM customers WHERE id = ANY(:ids) ORDER BY id "
                             "FOR NO KEY UPDATE"), {"ids": customer_ids})
    batch = _load_batch(session, customer_ids, now, timezone)
    _goals(session, runs, batch)
    for run in runs:
        if run.stopped:
            continue
        row = run.row
        if row.status == "holdout":
            _finish(row, "done", now)
            run.stopped = True
        elif row.status == "waiting":  # the wait_for's bound passed without the event
            instr = run.program[row.pc]
            row.wait_event = None
            if instr.get("else") == "continue":
                row.status, row.pc = "active", row.pc + 1
            else:
                _log(batch, run, instr, "exited", "wait_timeout")
                _finish(row, "exited", now)
                run.stopped = True
    for _ in range(MAX_ROUNDS):
        live = [r for r in runs if not r.stopped]
        if not live:
            break
        by_kind: dict[str, list[_Run]] = defaultdict(list)
        for run in live:
            if run.row.pc == EXIT or run.row.pc >= len(run.program):
                _finish(run.row, "exited" if run.row.pc == EXIT else "done", now)
                run.stopped = True
                continue
            by_kind[run.program[run.row.pc]["kind"]].append(run)
        if by_kind.get("branch"):
            _branches(session, by_kind.pop("branch"), batch, timezone)
        if by_kind.get("tag"):
            _tags(session, by_kind.pop("tag"), batch)
        for kind, group in by_kind.items():
            for run in group:
                _step(session, run, kind, batch)
    else:
        for run in runs:
            if not run.stopped:  # a program cannot loop, but never spin on one
                _finish(run.row, "failed", now)
    _flush(session, batch, rows)
    return len(runs)


def _load_batch(session: Session, ids: list[int], now: dt.datetime, timezone: str) -> _Batch:
    from siyu.channels import outbox
    from siyu.customers import service as customers
    from siyu.events import service as events
    from siyu.service import service as desk

    policy = load_policy(session)
    batch = _Batch(now=now, policy=policy)
    batch.customers = customers.profiles_for(session, ids)
    batch.identities = customers.identities_for(session, ids)
    batch.consents = customers.latest_consents_for(session, ids)
    batch.complaint = (customers.customers_with_tag(session, ids, COMPLAINT_TAG)
                       | events.customers_in_scenario(session, ids, COMPLAINT_SCENARIO))
    if policy.low_csat_score is not None:
        batch.low_csat = desk.low_csat_customers(
            session, ids, max_score=policy.low_csat_score,
            since=now - dt.timedelta(days=policy.low_csat_days))
    window = max([c.per_seconds for c in policy.caps] + [32 * 86400])
    batch.recent = outbox.recent_marketing(session, ids, since=now - dt.timedelta(
        seconds=window))
    batch.inbound = desk.last_inbound_at(session, ids, channels=list(SESSION_CHANNELS))
    batch.last_orders = events.last_orders(session, ids)
    return batch


def _goals(session: Session, runs: list[_Run], batch: _Batch) -> None:
    """Runs whose goal was reached since they entered: the goal ends them (a conversion)."""
    from siyu.events import service as events

    by_goal: dict[tuple[str, str], list[_Run]] = defaultdict(list)
    for run in runs:
        goal = run.spec.get("goal")
        if goal:
            by_goal[(goal["kind"], goal["value"])].append(run)
    for (kind, value), group in by_goal.items():
        since = min(r.row.entered_at for r in group)
        ids = sorted({r.row.customer_id for r in group})
        hits: dict[int, list[dt.datetime]] = defaultdict(list)
        if kind == "order_status":
            for cid, ts, _ in events.orders_since(session, ids, since, status=value):
                hits[cid].append(ts)
        else:
            for cid, ts, _, _ in events.events_since(session, ids, since, [value]):
                hits[cid].append(ts)
        for run in group:
            within = dt.timedelta(seconds=int(run.spec["goal"].get("within_seconds") or 0))
            start = run.row.entered_at
            reached = [t for t in hits.get(run.row.customer_id, [])
                       if start <= t <= start + within]
            if reached:
                run.row.goal_at = min(reached)
                _finish(run.row, "goal", batch.now)
                run.stopped = True


def _finish(row: PlaybookRun, status: str, now: dt.datetime) -> None:
    row.status = status
    row.finished_at = now
    row.due_at = None
    row.wait_event = None
    row.updated_at = now


def _log(batch: _Batch, run: _Run, instr: dict[str, Any], outcome: str,
         reason: str | None = None, *, delivery_key: str | None = None,
         detail: str | None = None, channel: str | None = None) -> None:
    batch.logs.append({"run_id": run.row.id, "playbook_id": run.row.playbook_id,
                       "customer_id": run.row.customer_id, "pc": run.row.pc,
                       "path": instr.get("path", ""), "kind": instr["kind"],
                       "channel": channel or instr.get("channel"), "outcome": outcome,
                       "reason": reason,
                       "delivery_key": delivery_key, "detail": detail, "at": batch.now})


def _branches(session: Session, group: list[_Run], batch: _Batch, timezone: str) -> None:
    from siyu.segments import service as segments

    by_rule: dict[str, list[_Run]] = defaultdict(list)
    for run in group:
        by_rule[run.program[run.row.pc]["if"]].append(run)
    for rule, runs in by_rule.items():
        ids = sorted({r.row.customer_id for r in runs})
        yes = segments.customers_matching(session, rule, ids, now=batch.now,
                                          timezone=timezone, active_only=False)
        for run in runs:
            instr = run.program[run.row.pc]
            taken = run.row.customer_id in yes
            _log(batch, run, instr, "done", None, detail="then" if taken else "else")
            run.row.pc = instr["then_pc"] if taken else instr["else_pc"]


def _tags(session: Session, group: list[_Run], batch: _Batch) -> None:
    """The tag steps of a round, set-based: one statement per (add/remove, tag) for the
    customers of consecutive runs, in the runs' order (so two runs adding and removing one
    tag for one customer end as they would one by one)."""
    from siyu.customers import service as customers

    ops: list[tuple[bool, str, list[int]]] = []
    for run in group:
        instr = run.program[run.row.pc]
        for present, name in ((True, instr.get("add")), (False, instr.get("remove"))):
            if not name:
                continue
            if ops and ops[-1][0] == present and ops[-1][1] == name:
                ops[-1][2].append(run.row.customer_id)
            else:
                ops.append((present, name, [run.row.customer_id]))
    for present, name, ids in ops:
        customers.set_tag_for(session, ids, name, present=present, source="playbook")
    for run in group:
        _log(batch, run, run.program[run.row.pc], "done")
        run.row.pc += 1


def _step(session: Session, run: _Run, kind: str, batch: _Batch) -> None:
    row, instr, now = run.row, run.program[run.row.pc], batch.now
    if kind == "goto":
        row.pc = instr["to"]
    elif kind == "wait":
        if instr.get("until"):
            due = _next_local(now, instr["until"], _zone(batch, row.customer_id,
                                                        batch.policy.timezone))
        else:
            due = now + dt.timedelta(seconds=int(instr.get("seconds") or 0))
        _log(batch, run, instr, "done")
        row.pc += 1
        if due > now:
            row.due_at = due
            row.updated_at = now
            run.stopped = True
    elif kind == "wait_for":
        _log(batch, run, instr, "waiting")
        row.status = "waiting"
        row.wait_event = instr.get("event") or f"reply:{instr.get('reply')}"
        row.due_at = now + dt.timedelta(seconds=int(instr.get("within_seconds") or 0))
        row.updated_at = now
        run.stopped = True
    elif kind in ("send", "webhook"):
        _send(session, run, instr, batch)
    elif kind == "tag":
        _tags(session, [run], batch)
    elif kind == "points":
        from siyu.points import service as points

        points.add_entry(session, row.customer_id, int(instr["award"]), source="playbook",
                         key=f"pb:{row.id}:{row.pc}",
                         reason=instr.get("reason") or run.playbook.name, at=now)
        _log(batch, run, instr, "done", detail=str(instr["award"]))
        row.pc += 1
    elif kind == "task":
        _task(session, run, instr, batch)
        row.pc += 1
    else:  # pragma: no cover - the validator knows every kind
        _log(batch, run, instr, "failed", detail=f"unknown step {kind}")
        _finish(row, "failed", now)
        run.stopped = True


def _zone(batch: _Batch, customer_id: int, default: str) -> str:
    attrs = (batch.customers.get(customer_id) or {}).get("attributes") or {}
    zone = attrs.get("timezone")
    return zone if isinstance(zone, str) and zone else default


def _today(batch: _Batch, customer_id: int) -> dt.date:
    """The customer's local date at the batch's moment: what ``years_since`` and
    ``days_since`` count to (the engine's clock, never the machine's date)."""
    zone = _zone(batch, customer_id, batch.policy.timezone)
    try:
        return batch.now.astimezone(ZoneInfo(zone)).date()
    except Exception:  # an unknown zone in a customer's attributes: the policy's zone
        return batch.now.astimezone(ZoneInfo(batch.policy.timezone)).date()


def _next_local(now: dt.datetime, clock: str, zone: str) -> dt.datetime:
    try:
        tz = ZoneInfo(zone)
    except Exception:  # an unknown zone in a customer's attributes: the policy's zone
        tz = ZoneInfo("Asia/Shanghai")
    local = now.astimezone(tz)
    h, m = (int(x) for x in clock.split(":"))
    target = local.replace(hour=h, minute=m, second=0, microsecond=0)
    if target <= local:
        target += dt.timedelta(days=1)
    return target.astimezone(dt.UTC)


def template_values(batch: _Batch, run: PlaybookRun, *, context: Any = None
                    ) -> dict[str, Any]:
    """What a template sees for this run (see :mod:`siyu.playbooks.templates`)."""
    cid = run.customer_id
    profile = dict(batch.customers.get(cid) or {"id": cid})
    last = batch.last_orders.get(cid)
    computed: dict[str, Any] = {"orders": last["count"] if last else 0,
                                "days_since_last_order": None, "last_product": None}
    if last:
        computed["days_since_last_order"] = (batch.now - last["ts"]).days
        items = last.get("items") or []
        if items and isinstance(items[0], dict):
            computed["last_product"] = items[0].get("name") or items[0].get("sku")
    trigger = dict(run.trigger or {})
    return {"customer": profile, "event": trigger, "computed": computed,
            "context": context if context is not None else {}, "now": batch.now,
            "content": _content_link(run)}


def _content_link(run: PlaybookRun) -> Any:
    """``content("名称")`` in a template: the recipient's tracked link to that item, one per
    item and step (a retried step reuses it)."""
    from sqlalchemy.orm import object_session

    def link(name: Any) -> str:
        from siyu.channels.config import get_channel_settings
        from siyu.content.service import link_for
        from siyu.errors import NotFound

        session = object_session(run)
        if session is None or not isinstance(name, str):
            raise ValueError("content() takes the name of a content item")
        try:
            return link_for(session, name, customer_id=run.customer_id,
                            delivery_key=f"pb:{run.id}:{run.pc}",
                            base_url=get_channel_settings().public_url)
        except NotFound:
            raise ValueError(f"unknown content item {name!r}") from None

    return link


def _fetch_context(batch: _Batch, run: PlaybookRun) -> Any:
    import httpx

    from siyu.playbooks.config import get_playbook_settings

    settings = get_playbook_settings()
    if not settings.playbook_context_url:
        return {}
    city = (batch.customers.get(run.customer_id) or {}).get("city") or ""
    if city in batch.context_cache:
        return batch.context_cache[city]
    try:
        response = httpx.get(settings.playbook_context_url,
                             params={"city": city, "customer_id": run.customer_id},
                             timeout=settings.playbook_context_timeout_seconds)
        value = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        value = {}
    batch.context_cache[city] = value if isinstance(value, dict) else {}
    return batch.context_cache[city]


def welcome_code(batch: _Batch, run: Any) -> tuple[str, dt.datetime] | None:
    """The WeCom welcome code of the run's trigger (an add-contact event's
    ``properties.welcome_code``) and the moment it stops being valid
    (``platform.welcome_code_seconds`` after the event), while it still is; else ``None``."""
    trigger = getattr(run, "trigger", None) or {}
    code = (trigger.get("properties") or {}).get("welcome_code")
    try:
        at = dt.datetime.fromisoformat(str(trigger.get("ts")))
    except ValueError:
        return None
    if not isinstance(code, str) or not code:
        return None
    at = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    until = at + dt.timedelta(seconds=batch.policy.welcome_code_seconds)
    return (code, until) if batch.now <= until else None


def send_channel(batch: _Batch, run: _Run, instr: dict[str, Any]) -> tuple[str, str | None]:
    """The channel a send goes out on and, when it is not the step's own, why: a
    ``wecom_welcome`` step without a usable welcome code and with ``fallback: wecom`` goes as
    an app message (reason ``welcome_code_expired``)."""
    channel = instr.get("channel") or "webhook"
    if (channel == "wecom_welcome" and instr.get("fallback") == "wecom"
            and welcome_code(batch, run.row) is None):
        return "wecom", "welcome_code_expired"
    return channel, None


def check_send(batch: _Batch, run: _Run, instr: dict[str, Any]
               ) -> tuple[str, str | None, dt.datetime | None]:
    """The policy's verdict on one send: ``("send", None, None)``, ``("deferred", reason,
    until)`` or ``("suppressed", reason, None)``."""
    policy, now, cid = batch.policy, batch.now, run.row.customer_id
    channel, _ = send_channel(batch, run, instr)
    purpose = instr.get("purpose") or "marketing"
    if channel == "webhook":
        return "send", None, None
    marketing = purpose == "marketing"
    kinds = ADDRESS_KINDS.get(channel, ())
    ids = batch.identities.get(cid, {})
    if kinds and not any(k in ids for k in kinds):
        return "suppressed", "no_address", None
    # The welcome message is a WeCom message: the customer's WeCom consent applies.
    consent_channel = "wecom" if channel == "wecom_welcome" else channel
    consent = batch.consents.get((cid, consent_channel, purpose)) or batch.consents.get(
        (cid, "all", purpose))
    if consent is not None and not consent[0]:
        reason = "opted_out" if optout.is_opt_out_source(consent[1] or "") else "no_consent"
        return "suppressed", reason, None
    if marketing and consent is None and policy.marketing_consent == "opt_in":
        return "suppressed", "no_consent", None
    if marketing and cid in batch.complaint:
        return "suppressed", "complaint_open", None
    if marketing and cid in batch.low_csat:
        return "suppressed", "low_csat", None
    if marketing and policy.paused_all:
        return "deferred", "global_pause", now + dt.timedelta(minutes=10)
    zone = _zone(batch, cid, policy.timezone)
    until = policy.quiet_until(now, zone, purpose)
    if until is not None:
        return "deferred", "quiet_hours", until
    if channel == "wecom_welcome" and welcome_code(batch, run.row) is None:
        return "suppressed", "welcome_code_expired", None
    if channel in SESSION_CHANNELS:
        last_in = batch.inbound.get(cid)
        window = dt.timedelta(hours=policy.session_window_hours)
        if last_in is None or now - last_in > window:
            return "suppressed", "platform_limit", None
        in_window = [r for r in batch.recent.get(cid, []) if r[0] == channel and r[1] >= last_in]
        if len(in_window) >= policy.session_window_messages:
            return "suppressed", "platform_limit", None
    if channel == "wecom_mass":
        local = policy.local(now, zone)
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        this_month = [r for r in batch.recent.get(cid, [])
                      if r[0] == "wecom_mass" and r[1] >= month_start]
        if len(this_month) >= policy.mass_limit(local):
            return "suppressed", "platform_limit", None
    if marketing:
        recent = [r for r in batch.recent.get(cid, []) if r[3]]
        local = policy.local(now, zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        today = [r for r in recent if r[1] >= midnight]
        if policy.daily_marketing and len(today) >= policy.daily_marketing:
            higher = any(r[2] > run.playbook.priority for r in today)
            return "suppressed", "priority" if higher else "daily_limit", None
        for cap in policy.caps:
            since = now - dt.timedelta(seconds=cap.per_seconds)
            counted = [r for r in recent if r[1] >= since
                       and (cap.channel == "all" or r[0] == cap.channel)]
            if len(counted) >= cap.max:
                higher = any(r[2] > run.playbook.priority for r in counted)
                return "suppressed", "priority" if higher else "frequency_cap", None
    return "send", None, None


def _send(session: Session, run: _Run, instr: dict[str, Any], batch: _Batch) -> None:
    row, now = run.row, batch.now
    verdict, reason, until = check_send(batch, run, instr)
    if verdict == "deferred":
        _log(batch, run, instr, "deferred", reason)
        row.due_at = until
        row.updated_at = now
        run.stopped = True
        return
    if verdict == "suppressed":
        _log(batch, run, instr, "suppressed", reason)
        row.pc += 1
        return
    key = f"pb:{row.id}:{row.pc}"
    content: dict[str, Any] = {"playbook": run.playbook.name, "step": instr.get("path"),
                               "priority": run.playbook.priority}
    if instr["kind"] == "webhook":
        channel, purpose, body = "webhook", "service", ""
        fallback_reason: str | None = None
        content.update({"url": instr["url"], "body": {
            **(instr.get("body") or {}), "customer_id": row.customer_id,
            "playbook": run.playbook.name, "run_id": row.id}})
    else:
        channel, fallback_reason = send_channel(batch, run, instr)
        purpose = instr.get("purpose") or "marketing"
        if channel == "wecom_welcome":
            code = welcome_code(batch, row)
            if code is not None:  # check_send made sure; the adapter checks the moment again
                content["welcome_code"], content["welcome_until"] = code[0], code[1].isoformat()
        context = _fetch_context(batch, row) if instr.get("context") else None
        values = template_values(batch, row, context=context)
        today = _today(batch, row.customer_id)
        try:
            body = render(instr.get("template") or "", values, today=today)
            if instr.get("subject"):
                content["subject"] = render(instr["subject"], values, today=today)
        except TemplateProblem as exc:
            _log(batch, run, instr, "suppressed", "template_error", detail=str(exc)[:500])
            row.pc += 1
            return
        if channel == "wecom_mass":
            content["sender"] = (batch.customers.get(row.customer_id) or {}).get(
                "advisor_username")
    batch.outbox.append({"key": key, "customer_id": row.customer_id, "channel": channel,
                         "purpose": purpose, "source": f"playbook:{run.playbook.id}",
                         "text": body, "content": content})
    batch.recent.setdefault(row.customer_id, []).append(
        (channel, now, run.playbook.priority, purpose == "marketing"))
    _log(batch, run, instr, "queued", fallback_reason, delivery_key=key,
         channel=channel if fallback_reason else None)
    row.pc += 1


def _task(session: Session, run: _Run, instr: dict[str, Any], batch: _Batch) -> None:
    row, now = run.row, batch.now
    profile = batch.customers.get(row.customer_id) or {}
    assignee = instr.get("assignee") or "advisor"
    note = instr.get("note") or ""
    if note:
        try:
            note = render(note, template_values(batch, row),
                          today=_today(batch, row.customer_id))
        except TemplateProblem as exc:
            note = f"{note}（模板错误：{exc}）"
    values = {"run_id": row.id, "pc": row.pc, "customer_id": row.customer_id,
              "playbook_id": row.playbook_id, "kind": instr.get("task_kind") or "call",
              "assignee_id": profile.get("advisor_id") if assignee == "advisor" else None,
              "skill_group": None if assignee == "advisor" else assignee, "note": note,
              "due_at": now + dt.timedelta(seconds=int(instr.get("due_seconds") or 0)),
              "status": "open", "created_at": now}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(PlaybookTask).values(values)
                    .on_conflict_do_nothing(index_elements=["run_id", "pc"]))
    _log(batch, run, instr, "done", detail=str(values["kind"]))


RUN_STATE = ("status", "pc", "due_at", "wait_event", "goal_at", "finished_at", "updated_at")


def _flush(session: Session, batch: _Batch, rows: list[PlaybookRun]) -> None:
    """Write the batch: the outbox rows and their jobs, the step log, the runs' new state.
    Set-based: the step log by ``COPY`` (PostgreSQL) or one executemany (SQLite); on
    PostgreSQL the runs in one ``UPDATE ... FROM unnest(...)`` (the unit of work's
    executemany was a statement per run), then detached so the session does not write
    them again."""
    from siyu.channels import outbox
    from siyu.kit.bulk import bulk_insert, pg_update_rows

    if batch.outbox:
        outbox.enqueue_many(session, batch.outbox, now=batch.now)
        wake(session)
    ids = outbox.delivery_ids(session, [r["delivery_key"] for r in batch.logs
                                        if r.get("delivery_key")])
    for log_row in batch.logs:
        key = log_row.pop("delivery_key", None)
        log_row["delivery_id"] = ids.get(key) if key else None
        log_row["created_at"] = batch.now
    bulk_insert(session, StepLog.__table__, batch.logs)  # type: ignore[arg-type]
    if session.get_bind().dialect.name == "postgresql":
        pg_update_rows(session, PlaybookRun.__table__, [  # type: ignore[arg-type]
            {"id": r.id, **{c: getattr(r, c) for c in RUN_STATE}} for r in rows])
        for r in rows:
            if r in session:
                session.expunge(r)
    session.flush()
