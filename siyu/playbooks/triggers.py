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
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.playbooks import clock, engine, service
from siyu.playbooks.config import get_playbook_settings
from siyu.playbooks.models import Playbook, PlaybookRun, PlaybookVersion

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


def on_rows(session: Session, kind: str, rows: list[dict[str, Any]], source: str = "api",
            *, now: dt.datetime | None = None) -> int:
    """Fire the triggers of freshly stored records (the ingest hook); returns runs started."""
    if source in HISTORICAL_SOURCES or not rows:
        return 0
    now = now or clock.now()
    max_age = dt.timedelta(hours=get_playbook_settings().playbook_max_event_age_hours)
    fresh = [r for r in rows if (ts := _aware(r.get("ts"))) is not None and now - ts <= max_age]
    if not fresh:
        return 0
    active = session.execute(select(Playbook.id, Playbook.trigger_kind, Playbook.trigger_value)
                             .where(Playbook.status == "active")).all()
    _wake_waiting(session, kind, fresh, now)
    if not active:
        return 0
    wanted: dict[tuple[str, str], list[int]] = defaultdict(list)
    for pid, k, v in active:
        wanted[(k, v or "")].append(pid)
    hits: dict[int, list[engine.Entry]] = defaultdict(list)
    for row in fresh:
        for key in _keys_of(kind, row):
            for pid in wanted.get(key, ()):
                trigger = {"type": row.get("type") or "order", "id": str(row["id"]),
                           "ts": _aware(row.get("ts")).isoformat(),  # type: ignore[union-attr]
                           "properties": row.get("properties") or {
                               k: row.get(k) for k in ("amount", "status", "channel")}}
                hits[pid].append(engine.Entry(int(row["customer_id"]),
                                              f"{kind}:{row['id']}", trigger))
    started = 0
    for pid, entries in hits.items():
        playbook = session.get(Playbook, pid)
        if playbook is None:
            continue
        started += engine.enter(session, playbook, service.current_version(session, playbook),
                                entries, now=now)
    return started


def _wake_waiting(session: Session, kind: str, rows: list[dict[str, Any]],
                  now: dt.datetime) -> None:
    """Runs waiting for one of these events (``wait_for``) continue now."""
    if kind != "events":
        return
    waited = set(session.scalars(select(PlaybookRun.wait_event).where(
        PlaybookRun.status == "waiting").distinct()))
    if not waited:
        return
    by_type: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        if row.get("type") in waited:
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
