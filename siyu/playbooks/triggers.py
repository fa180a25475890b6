"""What starts runs: records landing (an ingest batch, a timeline event written by another
domain) and the clock (schedules, inactivity, dates).

* ``{event: TYPE}``: an event of that type; ``{scenario: X}``: a ``scenario_entered`` event
  with ``properties.scenario == X`` (the journeys' contract; their recomputation passes the
  events it writes to the row hooks), ``{scenario_left: X}`` a ``scenario_exited`` one;
  ``{order_status: S}``: an ``order_status_changed`` event with ``properties.to == S`` (an
  order updated by a later version writes one), and for ``paid`` also a new order stored as
  paid.
* A record of a file import (source ``import``), or one whose time is older than
  ``SIYU_PLAYBOOK_MAX_EVENT_AGE_HOURS``, is history: it never fires a trigger.
* The same records also wake runs waiting for them (``wait_for``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.playbooks import clock, engine, group_sends, service
from siyu.playbooks.config import get_playbook_settings
from siyu.playbooks.models import Playbook, PlaybookRun, PlaybookVersion
from siyu.playbooks.spec import group_names

HISTORICAL_SOURCES = frozenset({"import", "backfill"})


def _keys_of(kind: str, row: dict[str, Any]) -> list[tuple[str, str]]:
    """The (trigger kind, value) pairs a stored record fires."""
    if kind == "orders":
        return [("order_status", "paid")] if row.get("status", "paid") == "paid" else []
    typ = str(row.get("type") or "")
    props = row.get("properties") or {}
    keys = [("event", typ)]
    if typ == "scenario_entered" and props.get("scenario"):
        keys.append(("scenario", str(props["scenario"])))
    if typ == "scenario_exited" and props.get("scenario"):
        keys.append(("scenario_left", str(props["scenario"])))
    if typ == "order_status_changed" and props.get("to"):
        keys.append(("order_status", str(props["to"])))
    return keys


def _aware(ts: Any) -> dt.datetime | None:
    if not isinstance(ts, dt.datetime):
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=dt.UTC)


def _active_playbooks(session: Session) -> list[tuple[int, str, str, int]]:
    """``(playbook id, trigger kind, trigger value, current version id)`` of every active
    playbook: one query (the version joined, not looked up per playbook)."""
    return [(int(p), str(k), str(v or ""), int(vid)) for p, k, v, vid in session.execute(
        select(Playbook.id, Playbook.trigger_kind, Playbook.trigger_value, PlaybookVersion.id)
        .join(PlaybookVersion, (PlaybookVersion.playbook_id == Playbook.id)
              & (PlaybookVersion.version == Playbook.version))
        .where(Playbook.status == "active").order_by(Playbook.id))]


def _firing_types(wanted: Iterable[tuple[str, str]]) -> set[str]:
    """The event types that can fire one of the ``wanted`` (kind, value) keys: rows of any
    other type are skipped before their time or properties are read."""
    types = {v for k, v in wanted if k == "event"}
    for kind, typ in (("scenario", "scenario_entered"), ("scenario_left", "scenario_exited"),
                      ("order_status", "order_status_changed")):
        if any(k == kind for k, _ in wanted):
            types.add(typ)
    return types


ENTER_JOB = "playbooks.enter"


def on_rows(session: Session, kind: str, rows: list[dict[str, Any]], source: str = "api",
            *, now: dt.datetime | None = None) -> int:
    """Fire the triggers of freshly stored records (the ingest hook); returns runs started
    here. A batch whose triggers hit more than ``SIYU_PLAYBOOK_INLINE_ENTRIES`` entries is
    recorded instead, in the same transaction, as one ``playbooks.enter`` job carrying the
    entries (playbook, version, customer, trigger) and this moment: the worker enters them
    (:func:`enter_recorded`, audience, reentry and holdout as here, at the recorded moment),
    so a large ingest batch does not pay for the entering and nothing is lost on a crash
    (the job commits with the records or not at all; entering twice starts nothing twice)."""
    if source in HISTORICAL_SOURCES or not rows:
        return 0
    now = now or clock.now()
    settings = get_playbook_settings()
    max_age = dt.timedelta(hours=settings.playbook_max_event_age_hours)

    def fresh(row: dict[str, Any]) -> bool:
        ts = _aware(row.get("ts"))
        return ts is not None and now - ts <= max_age

    _wake_waiting(session, kind, rows, fresh, now)
    active = _active_playbooks(session)
    if not active:
        return 0
    wanted: dict[tuple[str, str], list[int]] = defaultdict(list)
    versions: dict[int, int] = {}
    for pid, k, v, vid in active:
        wanted[(k, v)].append(pid)
        versions[pid] = vid
    types = _firing_types(wanted) if kind == "events" else None
    hits: dict[int, list[engine.Entry]] = defaultdict(list)
    for row in rows:
        if types is not None and row.get("type") not in types:
            continue
        keys = _keys_of(kind, row)
        if not any(key in wanted for key in keys) or not fresh(row):
            continue
        trigger = {"type": row.get("type") or "order", "id": str(row["id"]),
                   "ts": _aware(row.get("ts")).isoformat(),  # type: ignore[union-attr]
                   "properties": row.get("properties") or {
                       k: row.get(k) for k in ("amount", "status", "channel")}}
        for key in keys:
            for pid in wanted.get(key, ()):
                hits[pid].append(engine.Entry(int(row["customer_id"]),
                                              f"{kind}:{row['id']}", trigger))
    if not hits:
        return 0
    if sum(len(e) for e in hits.values()) > settings.playbook_inline_entries:
        from siyu.jobs import service as jobs

        jobs.enqueue(session, ENTER_JOB, {"at": now.isoformat(), "playbooks": [
            {"id": pid, "version_id": versions[pid],
             "entries": [[e.customer_id, e.trigger_id, e.trigger] for e in entries]}
            for pid, entries in sorted(hits.items())]})
        engine.wake(session)
        return 0
    started = 0
    for pid, entries in sorted(hits.items()):
        playbook = session.get(Playbook, pid)
        version = session.get(PlaybookVersion, versions[pid])
        if playbook is None or version is None:
            continue
        started += engine.enter(session, playbook, version, entries, now=now)
    return started


def enter_recorded(session: Session, payload: dict[str, Any]) -> int:
    """Enter the entries an ingest batch recorded (the ``playbooks.enter`` job) on the
    versions current when they fired, at that moment; returns runs started."""
    now = dt.datetime.fromisoformat(str(payload["at"]))
    started = 0
    for item in payload.get("playbooks") or []:
        playbook = session.get(Playbook, int(item["id"]))
        version = session.get(PlaybookVersion, int(item["version_id"]))
        if playbook is None or version is None:  # deleted since: nothing to enter
            continue
        entries = [engine.Entry(int(c), str(t), dict(trigger))
                   for c, t, trigger in item.get("entries") or []]
        started += engine.enter(session, playbook, version, entries, now=now)
    return started


def _wake_waiting(session: Session, kind: str, rows: list[dict[str, Any]],
                  fresh: Callable[[dict[str, Any]], bool], now: dt.datetime) -> None:
    """Runs waiting for one of these (fresh) events (``wait_for``) continue now."""
    if kind != "events":
        return
    waited = set(session.scalars(select(PlaybookRun.wait_event).where(
        PlaybookRun.status == "waiting").distinct()))
    if not waited:
        return
    by_type: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        if row.get("type") in waited and fresh(row):
            by_type[str(row.get("type"))].add(int(row["customer_id"]))
    for typ, customers in by_type.items():
        result = session.execute(
            update(PlaybookRun)
            .where(PlaybookRun.status == "waiting", PlaybookRun.wait_event == typ,
                   PlaybookRun.customer_id.in_(sorted(customers)))
            .values(status="active", pc=PlaybookRun.pc + 1, due_at=now, wait_event=None,
                    updated_at=now))
        if result.rowcount:  # type: ignore[attr-defined]
            engine.wake(session)


def on_reply(session: Session, customer_id: int, channel: str, *,
             now: dt.datetime | None = None) -> None:
    """A customer wrote on ``channel``: runs waiting for a reply there continue now."""
    now = now or clock.now()
    result = session.execute(
        update(PlaybookRun)
        .where(PlaybookRun.status == "waiting", PlaybookRun.wait_event == f"reply:{channel}",
               PlaybookRun.customer_id == customer_id)
        .values(status="active", pc=PlaybookRun.pc + 1, due_at=now, wait_event=None,
                updated_at=now))
    if result.rowcount:  # type: ignore[attr-defined]
        engine.wake(session)


def on_segment_changes(session: Session, segment_name: str, entered: list[int],
                       left: list[int], *, now: dt.datetime | None = None) -> int:
    """``segment_entered`` / ``segment_left`` triggers for a segment refresh's changes."""
    now = now or clock.now()
    started = 0
    for kind, ids in (("segment_entered", entered), ("segment_left", left)):
        if not ids:
            continue
        rows = session.execute(select(Playbook).where(
            Playbook.status == "active", Playbook.trigger_kind == kind,
            Playbook.trigger_value == segment_name)).scalars().all()
        for playbook in rows:
            version = service.current_version(session, playbook)
            stamp = now.strftime("%Y%m%d%H%M%S")
            entries = [engine.Entry(cid, f"{kind}:{segment_name}:{stamp}",
                                    {"type": kind, "segment": segment_name,
                                     "ts": now.isoformat()}) for cid in ids]
            started += engine.enter(session, playbook, version, entries, now=now)
    return started


# -- the clock: schedules, inactivity, dates --------------------------------------------------

CLOCK_KINDS = ("schedule", "inactive_days", "date")
# Whom a clock trigger may start at once; larger audiences are started in these chunks.
_CHUNK = 5000


def _active_versions(session: Session, kinds: tuple[str, ...]
                     ) -> list[tuple[Playbook, PlaybookVersion]]:
    out = []
    for playbook in session.scalars(select(Playbook).where(
            Playbook.status == "active", Playbook.trigger_kind.in_(kinds))
            .order_by(Playbook.id)):
        out.append((playbook, service.current_version(session, playbook)))
    return out


def cron_matches(expr: str, local_minute: dt.datetime) -> bool:
    """Whether the cron expression fires at this (brand-time, whole) minute."""
    from cronsim import CronSim

    minute = local_minute.replace(second=0, microsecond=0)
    return next(CronSim(expr, minute - dt.timedelta(seconds=1))) == minute


def next_schedule_run(session: Session, after: dt.datetime, *, timezone: str
                      ) -> dt.datetime | None:
    """The first minute after ``after`` (UTC) at which an active schedule trigger fires."""
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    local = after.astimezone(ZoneInfo(timezone)).replace(second=0, microsecond=0)
    moments = [next(CronSim(str(v.spec["trigger"]["value"]), local))
               for _p, v in _active_versions(session, ("schedule",))]
    return min(moments).astimezone(dt.UTC) if moments else None


def _start_all(session: Session, playbook: Playbook, version: PlaybookVersion,
               ids: list[int], trigger_id: str, trigger: dict[str, Any], *,
               now: dt.datetime, timezone: str) -> int:
    started = 0
    for start in range(0, len(ids), _CHUNK):
        entries = [engine.Entry(cid, trigger_id, trigger) for cid in ids[start:start + _CHUNK]]
        started += engine.enter(session, playbook, version, entries, now=now,
                                timezone=timezone)
    return started


def _everyone(session: Session) -> list[int]:
    from siyu.customers.models import Customer

    return [int(c) for c in session.scalars(
        select(Customer.id).where(Customer.status == "active").order_by(Customer.id))]


def _selected(session: Session, rule: str, *, now: dt.datetime, timezone: str) -> list[int]:
    from siyu.segments import service as segments

    return segments.matching_ids(session, rule, now=now, timezone=timezone, limit=10**9)


def on_minute(session: Session, minute: dt.datetime, *, timezone: str = "Asia/Shanghai"
              ) -> int:
    """Start the runs of every active ``schedule`` trigger whose cron expression fires at
    ``minute`` (UTC) in brand time: the audience (everyone active without one) enters,
    subject to the reentry rule (the occurrence is the trigger's id, so running the same
    minute twice starts nothing twice)."""
    from zoneinfo import ZoneInfo

    local = minute.astimezone(ZoneInfo(timezone)).replace(second=0, microsecond=0)
    started = 0
    for playbook, version in _active_versions(session, ("schedule",)):
        if not cron_matches(str(version.spec["trigger"]["value"]), local):
            continue
        if group_names(version.spec) is not None:  # sent to customer groups
            started += group_sends.send(session, playbook, version,
                                        f"schedule:{local:%Y%m%d%H%M}", now=minute)
            continue
        rule = version.spec.get("audience")
        ids = (_selected(session, rule, now=minute, timezone=timezone) if rule
               else _everyone(session))
        started += _start_all(session, playbook, version, ids,
                              f"schedule:{local:%Y%m%d%H%M}",
                              {"type": "schedule", "ts": minute.isoformat()},
                              now=minute, timezone=timezone)
    return started


def _dated_ids(session: Session, field: str, day: dt.date) -> list[int]:
    """Active customers whose ``field`` (``birthday`` or a date attribute, read as the rule
    language's ``attr_days`` reads it: a real ``YYYY-MM-DD...`` date, else nothing) falls on
    ``day``'s month and day; 29 February counts as the 28th in a year without it."""
    import calendar

    from sqlalchemy import String, cast, func

    from siyu.customers.models import Customer
    from siyu.segments.compiler import date_attribute

    column = cast(Customer.birthday if field == "birthday" else date_attribute(field), String)
    days = [f"{day:%m-%d}"]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        days.append("02-29")
    return [int(c) for c in session.scalars(
        select(Customer.id).where(Customer.status == "active", column.is_not(None),
                                  func.substr(column, 6, 5).in_(days))
        .order_by(Customer.id))]


def on_day(session: Session, now: dt.datetime, *, timezone: str = "Asia/Shanghai") -> int:
    """The daily triggers, for the brand-time day of ``now``: ``inactive_days: N`` starts
    the customers whose latest activity was exactly N days ago; ``date: FIELD`` (with
    ``offset_days``, negative for before) those whose FIELD comes round ``-offset_days``
    days from today. Each once per day (the day is the trigger's id)."""
    from zoneinfo import ZoneInfo

    today = now.astimezone(ZoneInfo(timezone)).date()
    started = 0
    for playbook, version in _active_versions(session, ("inactive_days", "date")):
        trigger = version.spec["trigger"]
        if trigger["kind"] == "inactive_days":
            days = int(trigger["value"])
            ids = _selected(session, f"last_active_days = {days}", now=now, timezone=timezone)
            payload: dict[str, Any] = {"type": "inactive_days", "days": days}
        else:
            target = today - dt.timedelta(days=int(trigger.get("offset_days") or 0))
            ids = _dated_ids(session, str(trigger["value"]), target)
            payload = {"type": "date", "field": trigger["value"], "date": target.isoformat()}
        payload["ts"] = now.isoformat()
        started += _start_all(session, playbook, version, ids,
                              f"{trigger['kind']}:{today.isoformat()}", payload, now=now,
                              timezone=timezone)
    return started
